/**
 * The attach clients of a served run (`xenpv run FILE --serve SOCKET`):
 *   xenpv tap-ctl  --attach SOCKET list
 *   xenpv xl       --attach SOCKET list
 *   xenpv xenstore --attach SOCKET ls|read|write|rm ARGS...
 * Each sends one request line and prints what the tool printed in the running scenario, with its exit
 * code. Exit 2 when the socket cannot be reached or the arguments are unusable.
 */
import { createConnection } from 'node:net';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { ServeResponse } from './serve.js';

export interface AttachIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** Sends one request (argv, or stop) to a served run and returns its answer. */
export function attachRequest(
  socket: string,
  request: { argv: string[] } | { stop: true },
): Promise<ServeResponse> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(`${JSON.stringify(request)}\n`));
    conn.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      conn.end();
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as ServeResponse);
      } catch (e) {
        reject(new Error(`${socket}: bad answer: ${(e as Error).message}`));
      }
    });
    conn.on('error', (e) => reject(new Error(`cannot reach ${socket}: ${e.message}`)));
    conn.on('close', () => {
      if (!buf.includes('\n'))
        reject(new Error(`${socket}: the run closed the connection without answering`));
    });
  });
}

/** Runs one tool in the served run; prints its output, returns its exit code. */
export async function attachCommand(socket: string, argv: string[], io: AttachIo): Promise<number> {
  let r: ServeResponse;
  try {
    r = await attachRequest(socket, { argv });
  } catch (e) {
    io.err(`xenpv ${argv[0]}: ${(e as Error).message}`);
    return 2;
  }
  for (const l of r.stdout) io.out(l);
  for (const l of r.stderr) io.err(l);
  return r.exitCode;
}

const XENSTORE_OPS = ['ls', 'read', 'write', 'rm'] as const;

/** argv of the served tool for `xenpv <tool> --attach S <args>`; a string is a usage error. */
export function servedArgv(tool: 'tap-ctl' | 'xl' | 'xenstore', args: string[]): string[] | string {
  if (tool !== 'xenstore') return [tool, ...args];
  const [op, ...rest] = args;
  if (op === undefined || !(XENSTORE_OPS as readonly string[]).includes(op)) {
    return `xenpv xenstore: name an operation: ${XENSTORE_OPS.join(', ')} (got ${JSON.stringify(op ?? '')})`;
  }
  return [`xenstore-${op}`, ...rest];
}

interface AttachArgs {
  attach?: string;
  stop: boolean;
  args: string[];
}

function attachModule(
  tool: 'tap-ctl' | 'xl' | 'xenstore',
  describe: string,
): CommandModule<object, AttachArgs> {
  return {
    command: `${tool} [args..]`,
    describe,
    builder: (y: Argv) =>
      y
        .parserConfiguration({ 'unknown-options-as-args': true })
        .option('attach', { type: 'string', describe: 'Socket of a run started with --serve' })
        .option('stop', {
          type: 'boolean',
          default: false,
          describe: 'Stop the served run (its report follows)',
        })
        .positional('args', { type: 'string', array: true, default: [] }) as unknown as Argv<AttachArgs>,
    handler: async (argv: ArgumentsCamelCase<AttachArgs>) => {
      const io = { out: (l: string) => console.log(l), err: (l: string) => console.error(l) };
      if (argv.attach === undefined) {
        io.err(
          `xenpv ${tool}: --attach SOCKET is required (a run started with xenpv run FILE --serve SOCKET)`,
        );
        process.exitCode = 2;
        return;
      }
      if (argv.stop) {
        try {
          await attachRequest(argv.attach, { stop: true });
          process.exitCode = 0;
        } catch (e) {
          io.err(`xenpv ${tool}: ${(e as Error).message}`);
          process.exitCode = 2;
        }
        return;
      }
      const served = servedArgv(tool, (argv.args ?? []).map(String));
      if (typeof served === 'string') {
        io.err(served);
        process.exitCode = 2;
        return;
      }
      process.exitCode = await attachCommand(argv.attach, served, io);
    },
  };
}

export const tapCtlAttachModule = attachModule(
  'tap-ctl',
  'Run tap-ctl in a served scenario (--attach SOCKET)',
);
export const xlAttachModule = attachModule('xl', 'Run xl in a served scenario (--attach SOCKET)');
export const xenstoreAttachModule = attachModule(
  'xenstore',
  'Run xenstore-ls|read|write|rm in a served scenario (--attach SOCKET ls PATH)',
);
