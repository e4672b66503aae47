/**
 * `xenpv explore FILE [--seeds N | --systematic [--preemptions K] | --orderings] [--seed S] [--max-runs M]
 * [--jobs J] [--json] [--out DIR]`: run a scenario many times in the sim engine, group the runs by
 * verdict class, and print for each failing class how many runs, the shortest schedule (or the
 * ordering) and the exact `xenpv run` command that replays it. Exit 0 when every run's expectations
 * held, 1 when a class failed, 2 on invalid input. Seeds and orderings run J at a time on worker
 * processes (default: one per two cores); the report is the same whatever J is.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import {
  EXPLORE_DEFAULTS,
  ExploreInputError,
  type ExploreMode,
  type ExploreProgress,
  type ExploreReport,
  exploreScenario,
} from '../../scenario/explore.js';
import { replayCommand } from '../../scenario/explore-replay.js';
import { defaultJobs } from '../../scenario/run-pool.js';
import { makeChalk } from '../../trace/timeline.js';
import { type CommandIo, consoleIo } from './console-io.js';
import { loadScenarioOrReport } from './load-scenario.js';

interface ExploreArgs {
  file: string;
  seeds?: number;
  seed?: number;
  systematic: boolean;
  preemptions?: number;
  orderings: boolean;
  maxRuns?: number;
  jobs?: number;
  json: boolean;
  out?: string;
}

/** Where progress goes: stderr; a bar on a TTY, plain periodic lines otherwise. */
export interface ProgressStream {
  isTTY: boolean;
  write(text: string): void;
}

export interface ExploreCommandIo extends CommandIo {
  progress?: ProgressStream;
  /** Clock for throttling progress (ms). */
  now?: () => number;
}

const BAR_WIDTH = 24;
const TTY_EVERY_MS = 100;
const PLAIN_EVERY_MS = 2000;

/** Throttled progress: a `\r`-rewritten bar on a TTY, a line every couple of seconds otherwise. */
export class ProgressReporter {
  private last = Number.NEGATIVE_INFINITY;
  private drawn = false;

  constructor(
    private readonly stream: ProgressStream,
    private readonly now: () => number,
    private readonly label: string,
  ) {}

  update(p: ExploreProgress): void {
    const t = this.now();
    if (t - this.last < (this.stream.isTTY ? TTY_EVERY_MS : PLAIN_EVERY_MS)) return;
    this.last = t;
    const of = p.total === undefined ? `${p.done} runs` : `${p.done}/${p.total} runs`;
    const tail = `${of}, ${p.classes} class(es), ${p.failingRuns} failing`;
    if (this.stream.isTTY) {
      const frac = p.total ? Math.min(1, p.done / p.total) : (p.done % (BAR_WIDTH + 1)) / BAR_WIDTH;
      const fill = Math.round(frac * BAR_WIDTH);
      this.stream.write(
        `\r\x1b[2K${this.label} [${'#'.repeat(fill)}${'.'.repeat(BAR_WIDTH - fill)}] ${tail}`,
      );
      this.drawn = true;
    } else {
      this.stream.write(`${this.label}: ${tail}\n`);
    }
  }

  done(): void {
    if (this.drawn) this.stream.write('\r\x1b[2K');
  }
}

function modeOf(args: ExploreArgs): ExploreMode {
  const picked = [args.seeds !== undefined, args.systematic, args.orderings].filter(Boolean).length;
  if (picked > 1)
    throw new ExploreInputError('--seeds, --systematic and --orderings exclude each other; pick one');
  if (args.preemptions !== undefined && !args.systematic) {
    throw new ExploreInputError('--preemptions bounds --systematic; add --systematic or drop it');
  }
  if (args.maxRuns !== undefined && !args.systematic && !args.orderings) {
    throw new ExploreInputError('--max-runs caps --systematic or --orderings; --seeds N says how many runs');
  }
  return args.systematic ? 'systematic' : args.orderings ? 'orderings' : 'seeds';
}

function checkNumber(name: string, v: number | undefined, min: number): void {
  if (v !== undefined && !(Number.isSafeInteger(v) && v >= min)) {
    throw new ExploreInputError(`${name} must be a whole number >= ${min}, got ${v}`);
  }
}

export async function exploreCommand(args: ExploreArgs, io: ExploreCommandIo): Promise<number> {
  let mode: ExploreMode;
  try {
    mode = modeOf(args);
    checkNumber('--seeds', args.seeds, 1);
    checkNumber('--seed', args.seed, 0);
    checkNumber('--preemptions', args.preemptions, 0);
    checkNumber('--max-runs', args.maxRuns, 1);
    checkNumber('--jobs', args.jobs, 1);
    if (args.jobs !== undefined && args.systematic) {
      throw new ExploreInputError(
        '--jobs does not apply to --systematic (each schedule follows from the run before it); drop it',
      );
    }
  } catch (e) {
    io.err(`xenpv explore: ${(e as Error).message}`);
    return 2;
  }
  const loaded = loadScenarioOrReport(args.file, io.err);
  if (loaded === undefined) return 2;
  const s = loaded.scenario;
  const progress =
    io.progress === undefined
      ? undefined
      : new ProgressReporter(io.progress, io.now ?? (() => performance.now()), `explore ${s.name}`);
  let report: ExploreReport;
  try {
    report = await exploreScenario(s, {
      mode,
      ...(args.seeds !== undefined ? { seeds: args.seeds } : {}),
      ...(args.seed !== undefined ? { seed: args.seed } : {}),
      ...(args.preemptions !== undefined ? { bound: args.preemptions } : {}),
      ...(args.maxRuns !== undefined ? { maxRuns: args.maxRuns } : {}),
      jobs: args.jobs ?? (mode === 'systematic' ? 1 : defaultJobs()),
      ...(loaded.demo !== undefined ? { demo: loaded.demo } : {}),
      ...(progress !== undefined ? { progress: (p: ExploreProgress) => progress.update(p) } : {}),
    });
  } catch (e) {
    progress?.done();
    if (e instanceof ExploreInputError) {
      io.err(`xenpv explore: ${e.message}`);
      return 2;
    }
    io.err(`xenpv explore: ${args.file}: ${(e as Error).message}`);
    return 2;
  }
  progress?.done();
  let outDir = args.out;
  const target = {
    file: args.file,
    scenarioName: s.name,
    mode,
    get outDir(): string {
      outDir ??= mkdtempSync(join(tmpdir(), `xenpv-explore-${s.name}-out-`));
      return outDir;
    },
  };
  const commands = report.classes.map((c, i) =>
    c.cls.verdict === 'fail' ? replayCommand(target, c, i).command : undefined,
  );
  const lines = args.json
    ? [JSON.stringify(toJson(report, commands), null, 2)]
    : render(report, commands, io.colorLevel, args.file);
  for (const l of lines) io.out(l);
  return report.classes.some((c) => c.cls.verdict === 'fail') ? 1 : 0;
}

/** The machine-readable report: no traces, one replay command per class. */
export function toJson(report: ExploreReport, commands: (string | undefined)[]): unknown {
  return {
    scenario: report.scenario,
    mode: report.mode,
    seed: report.seed,
    runs: report.runs,
    elapsedMs: Math.round(report.elapsedMs),
    runsPerSecond: Math.round(report.runsPerSecond * 10) / 10,
    ...(report.seeds ? { seeds: report.seeds } : {}),
    ...(report.systematic ? { systematic: report.systematic } : {}),
    ...(report.orderings
      ? {
          orderings: {
            groups: report.orderings.groups,
            total: report.orderings.total,
            explored: report.orderings.explored,
            exhausted: report.orderings.exhausted,
          },
        }
      : {}),
    classes: report.classes.map((c, i) => ({
      description: c.description,
      verdict: c.cls.verdict,
      outcome: c.cls.outcome,
      failed: c.cls.failed,
      stalls: c.cls.stalls,
      count: c.count,
      representative: {
        seed: c.representative.seed,
        preemptions: c.representative.preemptions,
        choices: c.representative.choices.length,
        ...(c.representative.ordering !== undefined ? { ordering: c.representative.ordering } : {}),
      },
      failures: c.failures,
      ...(c.orderings !== undefined ? { orderings: c.orderings } : {}),
      ...(commands[i] !== undefined ? { replay: commands[i] } : {}),
    })),
  };
}

function render(
  report: ExploreReport,
  commands: (string | undefined)[],
  colorLevel: 0 | 1 | 2 | 3,
  file: string,
): string[] {
  const c = makeChalk(colorLevel);
  const lines: string[] = [];
  const how =
    report.mode === 'seeds'
      ? `seeds ${report.seed}..${report.seed + report.runs - 1}`
      : report.mode === 'systematic'
        ? `systematic, seed ${report.seed}, at most ${report.systematic?.bound} preemption(s)`
        : `orderings, seed ${report.seed}`;
  const secs = (report.elapsedMs / 1000).toFixed(2);
  lines.push(
    c.bold(`explore ${report.scenario}`) +
      `: ${report.runs} run(s) (${how}) in ${secs} s, ${report.runsPerSecond.toFixed(1)} runs/s`,
  );
  const failing = report.classes.filter((k) => k.cls.verdict === 'fail');
  lines.push(`${report.classes.length} verdict class(es), ${failing.length} failing`);
  for (const [i, k] of report.classes.entries()) {
    const fail = k.cls.verdict === 'fail';
    lines.push('');
    lines.push(`${fail ? c.red('✗') : c.green('✓')} ${c.bold(k.description)}  ${c.dim(`${k.count} run(s)`)}`);
    for (const st of k.cls.stalls) lines.push(`    stall: ${st}`);
    if (fail) for (const f of k.failures.slice(0, 5)) lines.push(c.red(`    - ${f}`));
    const ref = k.representative;
    if (ref.ordering !== undefined) {
      lines.push(`    ordering: ${ref.ordering}`);
      for (const o of (k.orderings ?? []).slice(1, 24)) lines.push(c.dim(`    also:     ${o}`));
      if ((k.orderings?.length ?? 0) > 24) lines.push(c.dim(`    ... and ${k.orderings!.length - 24} more`));
    } else if (report.mode !== 'seeds')
      lines.push(`    shortest: ${ref.preemptions} preemption(s), ${ref.choices.length} choice(s)`);
    else lines.push(`    shortest: seed ${ref.seed} (${ref.choices.length} choice(s))`);
    if (commands[i] !== undefined) lines.push(`    replay: ${commands[i]}`);
  }
  lines.push('');
  if (report.systematic) {
    const sy = report.systematic;
    lines.push(
      `coverage: ${report.runs} schedule(s) with at most ${sy.bound} preemption(s)` +
        (sy.probes > 0 ? ` (+${sy.probes} width probe(s))` : '') +
        (sy.exhausted
          ? '; the bound exhausted the space'
          : `; stopped at --max-runs ${sy.maxRuns} with ${sy.pending}+ schedule(s) left`),
    );
  }
  if (report.orderings) {
    const o = report.orderings;
    lines.push(
      `coverage: ${o.explored} of ${o.total} ordering(s) of ${o.groups.length} group(s)` +
        (o.exhausted ? '' : ` (stopped at --max-runs)`),
    );
    for (const g of o.groups) lines.push(c.dim(`  group in ${g.list}: ${g.names.join(', ')}`));
  }
  lines.push(
    failing.length === 0
      ? c.green.bold(`PASS  every run of ${file} held its expectations`)
      : c.red.bold(`FAIL  ${failing.reduce((n, k) => n + k.count, 0)} of ${report.runs} run(s) failed`),
  );
  return lines;
}

export const exploreCommandModule: CommandModule<object, ExploreArgs> = {
  command: 'explore <file>',
  describe: 'Run a scenario over many schedules or step orderings and group the runs by verdict',
  builder: (y: Argv) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'Scenario YAML file' })
      .option('seeds', {
        type: 'number',
        describe: `Random schedules: seeds S..S+N-1 (the default search, N=${EXPLORE_DEFAULTS.seeds})`,
      })
      .option('seed', {
        type: 'number',
        describe: 'First seed (seeds) or the seed (default: the scenario seed, else 1)',
      })
      .option('systematic', {
        type: 'boolean',
        default: false,
        describe: 'Every schedule within a preemption bound, depth first (sim choice tree)',
      })
      .option('preemptions', {
        type: 'number',
        describe: `--systematic: most non-default scheduling picks per schedule (default ${EXPLORE_DEFAULTS.bound})`,
      })
      .option('orderings', {
        type: 'boolean',
        default: false,
        describe: 'Every order of each run of adjacent "reorderable: true" steps',
      })
      .option('max-runs', {
        type: 'number',
        describe: `--systematic/--orderings: stop after this many runs (default ${EXPLORE_DEFAULTS.maxRuns})`,
      })
      .option('jobs', {
        type: 'number',
        describe: `--seeds/--orderings: runs at once, in worker processes (default: one per two cores, ${defaultJobs()} here)`,
      })
      .option('json', { type: 'boolean', default: false, describe: 'Machine-readable report on stdout' })
      .option('out', { type: 'string', describe: 'Directory for replay files (default: a new temp dir)' })
      .example('$0 explore scenarios/hello-grant.yaml --seeds 500', 'random schedules')
      .example('$0 explore FILE --systematic --preemptions 1', 'every schedule with at most one preemption')
      .example(
        '$0 explore FILE --orderings --json',
        'every order of the reorderable steps',
      ) as unknown as Argv<ExploreArgs>,
  handler: async (argv: ArgumentsCamelCase<ExploreArgs>) => {
    process.exitCode = await exploreCommand(
      {
        file: argv.file,
        seeds: argv.seeds,
        seed: argv.seed,
        systematic: argv.systematic,
        preemptions: argv.preemptions,
        orderings: argv.orderings,
        maxRuns: argv.maxRuns,
        jobs: argv.jobs,
        json: argv.json,
        out: argv.out,
      },
      {
        ...consoleIo(),
        progress: { isTTY: process.stderr.isTTY === true, write: (t) => process.stderr.write(t) },
      },
    );
  },
};

export default exploreCommandModule;
