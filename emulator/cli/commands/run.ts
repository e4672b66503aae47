/**
 * `xenpv run FILE [--engine sim|threads] [--seed N] [--time-scale X] [--replay CHOICES] [--trace OUT.json]
 * [--mermaid OUT.md] [--keep-work-dir] [--quiet|--verbose]`:
 * run a scenario and print the timeline of what every component did, the stalls, then the verdict with
 * each expectation and what was left behind. `--quiet` prints only the verdict line and, on FAIL, one
 * line per problem (for scripts, which read the exit status). Exit 0 when the expectations hold, 1 when
 * they do not, 2 when the input is invalid (the loader's file:line:column errors are printed).
 * `--serve SOCKET` keeps the machine running after the steps and answers `xenpv tap-ctl|xl|xenstore
 * --attach SOCKET ...` until `{"stop": true}` arrives or the process gets SIGINT/SIGTERM (serve.ts).
 * `--xenstore-socket PATH` (sim) keeps the machine running after the steps too, with dom0's xenstored on
 * a Unix socket for Xen's xenstore-* tools (XENSTORED_PATH=PATH) until SIGINT/SIGTERM
 * (xenstore-socket-relay.ts); with --serve as well, `{"stop": true}` ends both.
 * `--keep-work-dir` keeps the run's work dir (image files, generated xl configs) and prints its path;
 * by default it is removed after the checks.
 */
import { writeFileSync } from 'node:fs';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { Machine } from '../../machine/machine.js';
import type { Controller } from '../../runtime/engine.js';
import { ExternalInbox } from '../../runtime/external-inbox.js';
import { type RunScenarioResult, runScenario } from '../../scenario/run.js';
import { formatDuration } from '../../scenario/units.js';
import { makeChalk, renderStall, renderTimeline, type Verbosity } from '../../trace/timeline.js';
import { type CommandIo, consoleIo } from './console-io.js';
import { type EngineArgs, engineOptions } from './engine-options.js';
import { loadScenarioOrReport } from './load-scenario.js';
import { closeServeSocket, listenServeSocket, type ServeRequest, serveLoop } from './serve.js';
import { writeTraceFiles } from './trace.js';
import { checkXenstoreSocketPath, XenstoreSocketRelay } from './xenstore-socket-relay.js';

interface RunArgs extends EngineArgs {
  file: string;
  replay?: string;
  serve?: string;
  xenstoreSocket?: string;
  trace?: string;
  mermaid?: string;
  keepWorkDir?: boolean;
  quiet: boolean;
  verbose: boolean;
}

/** Output and exit code, so tests can run the command without a process. */
export interface RunCommandIo extends CommandIo {
  /** Write a file (tests capture it); defaults to the file system. */
  writeFile?: (path: string, text: string) => void;
}

function writeTextFile(path: string, text: string): void {
  writeFileSync(path, text);
}

export function parseReplay(text: string): number[] {
  const parts = text.split(/[\s,]+/).filter((p) => p !== '');
  return parts.map((p, i) => {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 0) {
      throw new Error(
        `--replay: item ${i + 1} is ${JSON.stringify(p)}; give non-negative integers separated by commas`,
      );
    }
    return n;
  });
}

export async function runCommand(
  args: Omit<RunArgs, 'quiet' | 'verbose'> & { verbosity: Verbosity },
  io: RunCommandIo,
): Promise<number> {
  let replay: number[] | undefined;
  try {
    if (args.replay !== undefined) replay = parseReplay(args.replay);
    if (args.engine !== 'sim' && replay !== undefined)
      throw new Error('--replay works with --engine sim only');
    if (!(Number.isFinite(args.timeScale) && args.timeScale > 0)) {
      throw new Error(`--time-scale must be a positive number, got ${args.timeScale}`);
    }
    if (args.seed !== undefined && !Number.isSafeInteger(args.seed))
      throw new Error(`--seed must be an integer, got ${args.seed}`);
    if (args.trace !== undefined && args.trace === args.mermaid) {
      throw new Error(`--trace and --mermaid name the same file ${args.trace}; give two paths`);
    }
    if (args.xenstoreSocket !== undefined) {
      if (args.engine !== 'sim') {
        throw new Error(
          "--xenstore-socket works with --engine sim only: under threads xenstored lives in dom0's worker thread (use --serve and xenpv xenstore --attach there)",
        );
      }
      if (args.xenstoreSocket === args.serve)
        throw new Error(`--serve and --xenstore-socket name the same path ${args.serve}; give two paths`);
      checkXenstoreSocketPath(args.xenstoreSocket);
    }
  } catch (e) {
    io.err(`xenpv run: ${(e as Error).message}`);
    return 2;
  }
  const loaded = loadScenarioOrReport(args.file, io.err);
  if (loaded === undefined) return 2;
  let serving: { inbox: ExternalInbox<ServeRequest>; close: () => Promise<void> } | undefined;
  if (args.serve !== undefined) {
    const path = args.serve;
    const inbox = new ExternalInbox<ServeRequest>();
    try {
      const server = await listenServeSocket(path, inbox);
      const stop = () => inbox.close();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      serving = {
        inbox,
        close: async () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          await closeServeSocket(server, path);
        },
      };
    } catch (e) {
      io.err(`xenpv run: ${(e as Error).message}`);
      return 2;
    }
    io.err(`xenpv run: serving ${args.file} on ${path} after its steps (stop: SIGINT, or {"stop": true})`);
  }
  let relay: XenstoreSocketRelay | undefined;
  if (args.xenstoreSocket !== undefined) {
    const path = args.xenstoreSocket;
    relay = new XenstoreSocketRelay(path, {
      listening: () =>
        io.err(
          `xenpv run: xenstore of ${args.file} on ${path} after its steps (XENSTORED_PATH=${path} xenstore-ls; stop: SIGINT)`,
        ),
    });
  }
  const serve = combineServe(serving?.inbox, relay);
  let r: RunScenarioResult;
  try {
    r = await runScenario(loaded.scenario, {
      ...(serve !== undefined ? { serve } : {}),
      engine: args.engine,
      ...(args.seed !== undefined ? { seed: args.seed } : {}),
      timeScale: args.timeScale,
      ...(replay !== undefined ? { replay } : {}),
      ...(loaded.demo !== undefined ? { demo: loaded.demo } : {}),
      ...(args.keepWorkDir === true ? { keepWorkDir: true } : {}),
    });
  } catch (e) {
    io.err(`xenpv run: ${args.file}: ${(e as Error).message}`);
    return 2;
  } finally {
    await serving?.close();
    await relay?.close();
  }
  if (relay !== undefined && !relay.listened)
    io.err(
      `xenpv run: the run ended before its steps did (${r.outcome}); nothing was served on ${relay.path}`,
    );
  for (const line of report(r, args.verbosity, io.colorLevel)) io.out(line);
  if (r.workDirKept) io.out(`work dir: ${r.workDir}`);
  if (args.trace !== undefined || args.mermaid !== undefined) {
    try {
      writeTraceFiles(r, { perfetto: args.trace, mermaid: args.mermaid }, io.writeFile ?? writeTextFile);
    } catch (e) {
      io.err(`xenpv run: cannot write: ${(e as Error).message}`);
      return 2;
    }
    if (args.trace !== undefined) io.out(`trace: ${args.trace} (open it at https://ui.perfetto.dev)`);
    if (args.mermaid !== undefined) io.out(`sequence diagram: ${args.mermaid}`);
  }
  return r.verdict === 'pass' ? 0 : 1;
}

/** What the controller does after the steps: answer --serve, relay --xenstore-socket, or both at once. */
function combineServe(
  inbox: ExternalInbox<ServeRequest> | undefined,
  relay: XenstoreSocketRelay | undefined,
): ((ctl: Controller, machine: Machine) => Promise<void>) | undefined {
  if (relay === undefined) return inbox === undefined ? undefined : serveLoop(inbox);
  if (inbox === undefined) return (ctl, machine) => relay.serve(ctl, machine);
  return async (ctl, machine) => {
    // The relay runs in a task of its own; the serve loop's end ({"stop": true}, SIGINT) ends the run.
    ctl.env.spawn('xenstore-socket', () => relay.serve(ctl, machine), { daemon: true });
    await serveLoop(inbox)(ctl, machine);
    relay.stop();
  };
}

/**
 * The printed report: header, timeline, stalls, steps, verdict with each expectation; quiet: the verdict
 * line alone and, on FAIL, the problems.
 */
export function report(r: RunScenarioResult, verbosity: Verbosity, colorLevel: 0 | 1 | 2 | 3): string[] {
  const c = makeChalk(colorLevel);
  const s = r.scenario;
  if (verbosity === 'quiet') return verdictLines(r, c);
  const lines: string[] = [];
  const how = r.engine === 'sim' ? `engine sim, seed ${r.seed}` : 'engine threads';
  lines.push(c.bold(`${s.name}: ${s.description}`) + c.dim(`  (${how})`));
  const names = new Map(Object.entries(r.domainNames).map(([k, v]) => [Number(k), v]));
  const timeline = renderTimeline(r.trace, { colorLevel, verbosity, domainNames: names });
  if (timeline.length > 0) {
    lines.push('', c.bold('timeline'));
    lines.push(...timeline);
  }
  if (r.stalls.length > 0) {
    lines.push('', c.bold('stalls'));
    for (const st of r.stalls) lines.push(...renderStall(st, { colorLevel }));
  }
  lines.push('', c.bold('steps'));
  for (const st of r.steps) {
    const mark =
      st.status === 'ok'
        ? c.green('✓')
        : st.status === 'tolerated'
          ? c.yellow('~')
          : st.status === 'unfinished'
            ? c.yellow('…')
            : c.red('✗');
    const when = `${formatDuration(st.start)} -> ${formatDuration(st.end)}`;
    lines.push(
      `  ${mark} ${st.label ?? st.path}  ${st.description}  ${c.dim(when)}${st.error ? `  ${c.red(st.error)}` : ''}`,
    );
    for (const o of st.stdout ?? []) lines.push(c.dim(`      ${o}`));
  }
  lines.push('', c.bold('expectations'));
  if (r.checks.length === 0) lines.push(c.dim('  (none stated)'));
  for (const ch of r.checks)
    lines.push(`  ${ch.ok ? c.green('✓') : c.red('✗')} ${ch.name}  ${c.dim(ch.detail)}`);
  // An oops `expect.oops` matched is the run's expected ending: its ✓ line above already shows it.
  if (r.outcome === 'error' && !r.expectedOops) lines.push(c.red(`  ✗ run error: ${r.error}`));
  const left = Object.entries(r.end.guestStates).filter(([, st]) => st !== undefined && st !== 'dead');
  if (left.length > 0)
    lines.push(c.dim(`  left behind: ${left.map(([n, st]) => `${n} (${st})`).join(', ')}`));
  if (r.tapCtlList !== undefined && r.tapCtlList.length > 0)
    lines.push(c.dim(`  tap-ctl list: ${r.tapCtlList.join(' | ')}`));
  lines.push('', ...verdictLines(r, c));
  return lines;
}

/** PASS with the virtual time taken, or FAIL with one line per problem. */
function verdictLines(r: RunScenarioResult, c: ReturnType<typeof makeChalk>): string[] {
  const name = r.scenario.name;
  if (r.verdict === 'pass')
    return [c.green.bold(`PASS  ${name} (${formatDuration(Math.round(r.endTime))} virtual)`)];
  return [
    c.red.bold(`FAIL  ${name}: ${r.failures.length} problem(s)`),
    ...r.failures.map((f) => c.red(`  - ${f}`)),
  ];
}

export const runCommandModule: CommandModule<object, RunArgs> = {
  command: 'run <file>',
  describe: 'Run a scenario file and print what every component did, the stalls, and the verdict',
  builder: (y: Argv) =>
    engineOptions(
      y.positional('file', { type: 'string', demandOption: true, describe: 'Scenario YAML file' }),
    )
      .option('replay', { type: 'string', describe: 'sim: scheduling choices to replay, e.g. 0,1,0,2' })
      .option('serve', {
        type: 'string',
        describe:
          'After the steps keep the machine up and answer xenpv tap-ctl|xl|xenstore --attach on this Unix socket',
      })
      .option('xenstore-socket', {
        type: 'string',
        describe:
          "sim: after the steps keep the machine up with its xenstore on this Unix socket for Xen's xenstore-* tools (XENSTORED_PATH)",
      })
      .option('trace', {
        type: 'string',
        describe: 'Also write the run as Perfetto/Chrome trace JSON to this file',
      })
      .option('mermaid', {
        type: 'string',
        describe: 'Also write a Mermaid sequence diagram of the control path',
      })
      .option('keep-work-dir', {
        type: 'boolean',
        default: false,
        describe: 'Keep the work dir (images, generated xl configs) after the run and print its path',
      })
      .option('quiet', {
        type: 'boolean',
        default: false,
        describe: 'Only the PASS/FAIL line and, on FAIL, what failed (the exit status says the same)',
      })
      .option('verbose', {
        type: 'boolean',
        default: false,
        describe: 'Every event, per request and notification',
      })
      .example('$0 run scenarios/hello-grant.yaml', 'two domains share a page through a grant')
      .example('$0 run scenarios/hello-grant.yaml --engine threads', 'the same on worker threads')
      .example(
        '$0 run scenarios/blktap2-teardown-deadlock.yaml --serve /tmp/x.sock',
        'then: xenpv tap-ctl --attach /tmp/x.sock list',
      )
      .example(
        '$0 run scenarios/blktap2-teardown-deadlock.yaml --xenstore-socket /tmp/xs.sock',
        'then: XENSTORED_PATH=/tmp/xs.sock xenstore-ls /local/domain',
      )
      .example('$0 run FILE --keep-work-dir', 'look at the images afterwards (the path is printed)')
      .example(
        '$0 run FILE --seed 7 --verbose',
        'another schedule, every event shown',
      ) as unknown as Argv<RunArgs>,
  handler: async (argv: ArgumentsCamelCase<RunArgs>) => {
    if (argv.quiet && argv.verbose) {
      console.error('xenpv run: --quiet and --verbose exclude each other; pick one');
      process.exitCode = 2;
      return;
    }
    const verbosity: Verbosity = argv.quiet ? 'quiet' : argv.verbose ? 'verbose' : 'normal';
    process.exitCode = await runCommand(
      {
        file: argv.file,
        engine: argv.engine,
        seed: argv.seed,
        timeScale: argv.timeScale,
        replay: argv.replay,
        ...(argv.serve !== undefined ? { serve: argv.serve } : {}),
        ...(argv.xenstoreSocket !== undefined ? { xenstoreSocket: argv.xenstoreSocket } : {}),
        ...(argv.trace !== undefined ? { trace: argv.trace } : {}),
        ...(argv.mermaid !== undefined ? { mermaid: argv.mermaid } : {}),
        ...(argv.keepWorkDir ? { keepWorkDir: true } : {}),
        verbosity,
      },
      consoleIo(),
    );
  },
};

export default runCommandModule;
