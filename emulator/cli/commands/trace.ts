/**
 * `xenpv trace FILE -o OUT.json [--engine sim|threads] [--seed N] [--time-scale X] [--mermaid OUT.mmd]
 * [--rings]`: run a scenario and write its trace as Chrome trace-event JSON for ui.perfetto.dev (pid =
 * domain, tid = task, async slices per request, flows for notifications, ring counters), optionally a
 * Mermaid sequence diagram of the control path, and print xen-ringwatch lines. Exit 0 when the files are
 * written (the scenario's verdict is in the summary), 2 when the input is invalid or nothing could be run.
 */
import { writeFileSync } from 'node:fs';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { type RunScenarioResult, runScenario } from '../../scenario/run.js';
import { toMermaid } from '../../trace/mermaid.js';
import { checkChromeTrace, toChromeTrace } from '../../trace/perfetto.js';
import { ringwatchLines } from '../../trace/ringwatch.js';
import { type EngineArgs, engineOptions } from './engine-options.js';
import { loadScenarioOrReport } from './load-scenario.js';

export interface TraceArgs extends EngineArgs {
  file: string;
  output: string;
  mermaid?: string;
  rings: boolean;
}

export interface TraceCommandIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Write a file (tests capture it). */
  writeFile: (path: string, text: string) => void;
}

function validate(args: TraceArgs): void {
  if (!(Number.isFinite(args.timeScale) && args.timeScale > 0)) {
    throw new Error(`--time-scale must be a positive number, got ${args.timeScale}`);
  }
  if (args.seed !== undefined && !Number.isSafeInteger(args.seed)) {
    throw new Error(`--seed must be an integer, got ${args.seed}`);
  }
  if (args.output === '') throw new Error('-o/--output: give the path of the JSON file to write');
  if (args.mermaid !== undefined && args.mermaid === args.output) {
    throw new Error(`--mermaid ${args.mermaid}: the same path as -o; give another file`);
  }
}

/** Run the scenario, write the files, print the summary; returns the exit code. */
export async function traceCommand(args: TraceArgs, io: TraceCommandIo): Promise<number> {
  try {
    validate(args);
  } catch (e) {
    io.err(`xenpv trace: ${(e as Error).message}`);
    return 2;
  }
  const loaded = loadScenarioOrReport(args.file, io.err);
  if (loaded === undefined) return 2;
  let r: RunScenarioResult;
  try {
    r = await runScenario(loaded.scenario, {
      engine: args.engine,
      ...(args.seed !== undefined ? { seed: args.seed } : {}),
      timeScale: args.timeScale,
      ...(loaded.demo !== undefined ? { demo: loaded.demo } : {}),
    });
  } catch (e) {
    io.err(`xenpv trace: ${args.file}: ${(e as Error).message}`);
    return 2;
  }
  let trace: ChromeTrace;
  try {
    trace = writeTraceFiles(r, { perfetto: args.output, mermaid: args.mermaid }, io.writeFile) as ChromeTrace;
  } catch (e) {
    io.err(`xenpv trace: cannot write: ${(e as Error).message}`);
    return 2;
  }
  if (args.rings) for (const line of ringwatchLines(r.trace, { domainNames: domainNamesOf(r) })) io.out(line);
  io.out(summary(r, trace.traceEvents, args));
  io.out(`open it: https://ui.perfetto.dev -> "Open trace file" -> ${args.output}`);
  return 0;
}

type ChromeTrace = ReturnType<typeof toChromeTrace>;

function domainNamesOf(r: RunScenarioResult): Map<number, string> {
  return new Map(Object.entries(r.domainNames).map(([k, v]) => [Number(k), v]));
}

/**
 * Write a run's Perfetto JSON and/or Mermaid diagram; returns the Chrome trace when one was written.
 * Shared by `xenpv trace` and `xenpv run --trace/--mermaid`.
 */
export function writeTraceFiles(
  r: RunScenarioResult,
  files: { perfetto?: string; mermaid?: string },
  writeFile: (path: string, text: string) => void,
): ChromeTrace | undefined {
  const domainNames = domainNamesOf(r);
  let trace: ChromeTrace | undefined;
  if (files.perfetto !== undefined) {
    trace = toChromeTrace(r.trace, { domainNames, endTime: r.endTime });
    // The writer's own contract: a broken trace is a bug here, not something to hand to Perfetto silently.
    const problems = checkChromeTrace(trace);
    if (problems.length > 0) {
      throw new Error(`trace writer produced an invalid trace: ${problems.slice(0, 5).join('; ')}`);
    }
    writeFile(files.perfetto, `${JSON.stringify(trace)}\n`);
  }
  if (files.mermaid !== undefined) writeFile(files.mermaid, toMermaid(r.trace, { domainNames }));
  return trace;
}

function summary(
  r: RunScenarioResult,
  events: ReturnType<typeof toChromeTrace>['traceEvents'],
  args: TraceArgs,
) {
  const count = (ph: string) => events.filter((e) => e.ph === ph).length;
  const how = r.engine === 'sim' ? `sim seed ${r.seed}` : 'threads';
  const verdict = r.verdict === 'pass' ? 'PASS' : `FAIL (${r.failures.length} problem(s))`;
  const mermaid = args.mermaid === undefined ? '' : `, diagram in ${args.mermaid}`;
  return (
    `${args.output}: ${r.trace.length} events from ${Object.keys(r.domainNames).length} domain(s) ` +
    `-> ${count('b')} request slices, ${count('s')} flows, ${count('C')} counter samples, ` +
    `${r.stalls.length} stall(s); ${(r.endTime / 1000).toFixed(3)} s virtual (${how}); ${verdict}${mermaid}`
  );
}

export const traceCommandModule: CommandModule<object, TraceArgs> = {
  command: 'trace <file>',
  describe: 'Run a scenario and write a Perfetto/Chrome trace (and optionally a Mermaid diagram)',
  builder: (y: Argv) =>
    engineOptions(
      y
        .positional('file', { type: 'string', demandOption: true, describe: 'Scenario YAML file' })
        .option('output', {
          alias: 'o',
          type: 'string',
          demandOption: true,
          describe: 'Trace JSON file to write (open it in ui.perfetto.dev)',
        }),
    )
      .option('mermaid', {
        type: 'string',
        describe: 'Also write a Mermaid sequence diagram of the control path',
      })
      .option('rings', {
        type: 'boolean',
        default: false,
        describe: 'Print xen-ringwatch lines for each ring',
      })
      .example('$0 trace scenarios/hello-grant.yaml -o hello.json', 'then open hello.json in ui.perfetto.dev')
      .example(
        '$0 trace FILE -o t.json --mermaid t.mmd --rings',
        'also the control path and ring lines',
      ) as unknown as Argv<TraceArgs>,
  handler: async (argv: ArgumentsCamelCase<TraceArgs>) => {
    process.exitCode = await traceCommand(
      {
        file: argv.file,
        output: argv.output,
        engine: argv.engine,
        seed: argv.seed,
        timeScale: argv.timeScale,
        mermaid: argv.mermaid,
        rings: argv.rings,
      },
      {
        out: (l) => console.log(l),
        err: (l) => console.error(l),
        writeFile: (path, text) => writeFileSync(path, text),
      },
    );
  },
};

export default traceCommandModule;
