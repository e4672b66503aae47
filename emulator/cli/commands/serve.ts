/**
 * `xenpv run FILE --serve SOCKET`: after the steps the machine keeps running and a Unix socket takes
 * commands, one JSON line each: `{"argv": ["tap-ctl", "list"]}` -> `{"exitCode", "stdout", "stderr"}`.
 * `{"stop": true}` ends the serving (so does closing the inbox, e.g. on SIGINT); the run then ends and
 * its report is printed. Commands run as the controller, through the programs that do them in the real
 * system: tap-ctl and xl in dom0's user space, xenstore-ls/read/write/rm through dom0's client. In sim
 * virtual time stands still between commands; each command runs to its end in virtual time.
 */
import { existsSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Machine } from '../../machine/machine.js';
import type { Controller } from '../../runtime/engine.js';
import type { ExternalInbox } from '../../runtime/external-inbox.js';
import { type EngineCommand, executeEngineCommand } from '../shell/engine-command.js';

export interface ServeResponse {
  exitCode: number;
  stdout: string[];
  stderr: string[];
}

export interface ServeRequest {
  argv: string[];
  reply: (r: ServeResponse) => void;
}

/** The tools a served run answers, as `argv[0]`. */
export const SERVED_TOOLS = [
  'tap-ctl',
  'xl',
  'xenstore-ls',
  'xenstore-read',
  'xenstore-write',
  'xenstore-rm',
];

function xenstoreCommand(tool: string, args: string[]): EngineCommand | string {
  switch (tool) {
    case 'xenstore-ls':
      if (args.length > 1) return 'Usage: xenstore-ls [PATH]';
      return { kind: 'xenstore-ls', path: args[0] ?? '/' };
    case 'xenstore-read':
      if (args.length === 0) return 'Usage: xenstore-read PATH...';
      return { kind: 'xenstore-read', paths: args };
    case 'xenstore-rm':
      if (args.length === 0) return 'Usage: xenstore-rm PATH...';
      return { kind: 'xenstore-rm', paths: args };
    case 'xenstore-write': {
      if (args.length === 0 || args.length % 2 !== 0)
        return 'Usage: xenstore-write PATH VALUE [PATH VALUE]...';
      const pairs: [string, string][] = [];
      for (let i = 0; i < args.length; i += 2) pairs.push([args[i]!, args[i + 1]!]);
      return { kind: 'xenstore-write', pairs };
    }
    default:
      return `unknown tool ${tool}`;
  }
}

/** Runs one served command as the controller. */
export async function runServedCommand(
  ctl: Controller,
  machine: Machine,
  argv: string[],
): Promise<ServeResponse> {
  const [tool, ...args] = argv;
  try {
    if (tool === 'tap-ctl' || tool === 'xl') {
      const r = (await ctl.call(0, tool === 'xl' ? 'xl' : 'tapCtl', args)) as ServeResponse;
      return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
    }
    if (tool?.startsWith('xenstore-') && SERVED_TOOLS.includes(tool)) {
      const cmd = xenstoreCommand(tool, args);
      if (typeof cmd === 'string') return { exitCode: 1, stdout: [], stderr: [cmd] };
      const r = await executeEngineCommand(ctl, machine, undefined, cmd);
      return { exitCode: r.ok ? 0 : 1, stdout: r.out, stderr: r.err };
    }
    return {
      exitCode: 127,
      stdout: [],
      stderr: [
        `xenpv: unknown command ${JSON.stringify(tool ?? '')}; a served run answers ${SERVED_TOOLS.join(', ')}`,
      ],
    };
  } catch (e) {
    return { exitCode: 1, stdout: [], stderr: [`${tool}: ${(e as Error).message}`] };
  }
}

/** The controller's loop: answer requests until the inbox closes. */
export function serveLoop(inbox: ExternalInbox<ServeRequest>) {
  return async (ctl: Controller, machine: Machine): Promise<void> => {
    if (ctl.receive === undefined)
      throw new Error('not implemented: serving with an engine that has no receive');
    for (;;) {
      const req = await ctl.receive(inbox, 'the next command on the serve socket');
      if (req === undefined) return;
      req.reply(await runServedCommand(ctl, machine, req.argv));
    }
  };
}

/** Parses one request line; a string is the error to answer with. */
export function parseServeLine(line: string): { argv: string[] } | { stop: true } | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return `bad request: not JSON: ${line.slice(0, 80)}`;
  }
  if (v !== null && typeof v === 'object' && (v as { stop?: unknown }).stop === true) return { stop: true };
  const argv = (v as { argv?: unknown } | null)?.argv;
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string')) {
    return 'bad request: expected {"argv": ["tap-ctl", "list"]} (a non-empty array of strings)';
  }
  return { argv: argv as string[] };
}

/** Listens on `path` and feeds `inbox`; answers each request line with one JSON line. */
export function listenServeSocket(path: string, inbox: ExternalInbox<ServeRequest>): Promise<Server> {
  if (existsSync(path)) throw new Error(`--serve ${path}: the path exists; remove it or pick another`);
  const server = createServer((sock: Socket) => {
    let buf = '';
    const send = (r: unknown) => {
      if (!sock.destroyed) sock.write(`${JSON.stringify(r)}\n`);
    };
    sock.setEncoding('utf8');
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === '') continue;
        const req = parseServeLine(line);
        if (typeof req === 'string') send({ exitCode: 2, stdout: [], stderr: [req] });
        else if ('stop' in req) {
          send({ exitCode: 0, stdout: [], stderr: [] });
          inbox.close();
        } else if (inbox.closed)
          send({ exitCode: 1, stdout: [], stderr: ['xenpv: the run is no longer serving'] });
        else inbox.push({ argv: req.argv, reply: send });
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** Stops listening and removes the socket file. */
export async function closeServeSocket(server: Server, path: string): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (existsSync(path)) unlinkSync(path);
}
