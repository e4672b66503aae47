/**
 * The shell's input loop. On a TTY: node:readline with a prompt, line editing and history; Ctrl-C
 * clears the line, Ctrl-D or quit ends. Piped: no prompt, each line run in order, errors on stderr as
 * `line N: ...`. The exit status is 1 when any command failed, unless keepGoing.
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { ALIASES, COMMANDS } from './help.js';
import type { ShellSession } from './session.js';

export interface ReplIo {
  input: Readable;
  output: Writable;
  error: Writable;
  /** Interactive: prompt, readline terminal mode. */
  tty: boolean;
}

export interface ReplOptions {
  /** Exit 0 even when commands failed. */
  keepGoing?: boolean;
  prompt?: string;
}

export async function runRepl(session: ShellSession, io: ReplIo, options: ReplOptions = {}): Promise<number> {
  const rl = createInterface({
    input: io.input,
    output: io.tty ? io.output : undefined,
    terminal: io.tty,
    prompt: options.prompt ?? 'xenpv> ',
    historySize: 1000,
    ...(io.tty ? { completer: completeCommand } : {}),
  });
  const print = (stream: Writable, lines: readonly string[]) => {
    for (const l of lines) stream.write(`${l}\n`);
  };
  if (io.tty) {
    print(io.output, [
      `xenpv shell: ${session.scenarioName} on the ${session.engine} engine. Type help for the commands.`,
    ]);
    rl.on('SIGINT', () => {
      io.output.write('^C\n');
      rl.prompt();
    });
    rl.prompt();
  }
  let lineNo = 0;
  let failed = 0;
  try {
    for await (const line of rl) {
      lineNo++;
      const r = await session.execute(line);
      print(io.output, r.out);
      if (r.err.length > 0)
        print(
          io.error,
          r.err.map((e) => `line ${lineNo}: ${e}`),
        );
      if (!r.ok) failed++;
      if (r.quit) break;
      if (io.tty) rl.prompt();
    }
  } finally {
    rl.close();
  }
  if (io.tty) io.output.write('\n');
  return failed > 0 && !options.keepGoing ? 1 : 0;
}

/** Tab completion of the command word. */
export function completeCommand(line: string): [string[], string] {
  if (/\s/.test(line.trimStart())) return [[], line];
  const word = line.trimStart();
  const names = [...Object.keys(COMMANDS), ...Object.keys(ALIASES)].sort();
  const hits = names.filter((n) => n.startsWith(word));
  return [hits.length > 0 ? hits : names, word];
}
