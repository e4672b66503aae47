/**
 * `xenpv shell [FILE] [--engine sim|threads] [--seed N] [--time-scale X] [--keep-going]`: an interactive
 * session on a machine built from a scenario's host, domains and versions (its steps run only when
 * asked: step, continue), or on a default host with guest1 and a 16 MiB raw image on a tap disk.
 * Reads commands from a TTY (prompt, line editing, history) or from a pipe (a script).
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { ScenarioError } from '../../scenario/errors.js';
import { runRepl } from '../shell/repl.js';
import { ShellSession } from '../shell/session.js';
import { terminalColorLevel } from './console-io.js';
import { type EngineArgs, engineOptions } from './engine-options.js';

interface ShellArgs extends EngineArgs {
  file?: string;
  keepGoing: boolean;
}

export const shellCommandModule: CommandModule<object, ShellArgs> = {
  command: 'shell [file]',
  describe: 'an interactive session on an emulated host (xl, tap-ctl, xenstore, dd, rings, grants ...)',
  builder: (y: Argv) =>
    engineOptions(
      y.positional('file', {
        type: 'string',
        describe: 'scenario whose host to build (its steps wait for step/continue)',
      }),
    ).option('keep-going', {
      type: 'boolean',
      default: false,
      describe: 'exit 0 even when commands failed',
    }) as unknown as Argv<ShellArgs>,
  handler: async (argv: ArgumentsCamelCase<ShellArgs>) => {
    process.exitCode = await shellCommand(argv, {
      input: process.stdin,
      output: process.stdout,
      error: process.stderr,
      tty: process.stdin.isTTY === true && process.stdout.isTTY === true,
    });
  },
};

export async function shellCommand(
  args: Omit<ShellArgs, 'file'> & { file?: string | undefined },
  io: Parameters<typeof runRepl>[1],
): Promise<number> {
  if (args.seed !== undefined && !Number.isSafeInteger(args.seed)) {
    io.error.write(`xenpv shell: --seed must be an integer, got ${args.seed}\n`);
    return 2;
  }
  if (!(Number.isFinite(args.timeScale) && args.timeScale > 0)) {
    io.error.write(`xenpv shell: --time-scale must be a positive number, got ${args.timeScale}\n`);
    return 2;
  }
  let session: ShellSession;
  try {
    session = await ShellSession.open(args.file, {
      engine: args.engine,
      ...(args.seed !== undefined ? { seed: args.seed } : {}),
      timeScale: args.timeScale,
      colorLevel: io.tty ? terminalColorLevel() : 0,
    });
  } catch (e) {
    const text = e instanceof ScenarioError ? e.format() : (e as Error).message;
    io.error.write(`xenpv shell: ${text}\n`);
    return 2;
  }
  try {
    return await runRepl(session, io, { keepGoing: args.keepGoing });
  } finally {
    await session.close();
  }
}
