/**
 * `xenpv explore`: run one scenario many times in the sim engine and group the runs by verdict class.
 *
 * Three searches:
 * - seeds: seeds base .. base+N-1, each a different random schedule;
 * - systematic: every schedule within a preemption bound, depth first (explore-systematic.ts);
 * - orderings: every order of the scenario's reorderable steps (explore-orderings.ts), base seed.
 *
 * Seeds and orderings run `jobs` at a time in worker processes (run-pool.ts), each worker with its own
 * work dir; results are recorded in run order, so the report is the same whatever `jobs` is. Systematic
 * search stays in this thread: which schedule runs next depends on the choices of the run before it.
 * Each run builds its own machine (that is the run itself); what runs share is the parsed scenario and
 * the imported machine modules. Traces are built only when `keepTraces` asks for them.
 *
 *   const report = await exploreScenario(scenario, { mode: 'seeds', seeds: 100 });
 *   report.classes.filter((c) => c.cls.verdict === 'fail');
 */
import type { TraceEvent } from '../runtime/engine.js';
import { classifyRun, describeClass, type VerdictClass } from './explore-classes.js';
import {
  applyOrdering,
  countOrderings,
  describeOrdering,
  isWrittenOrder,
  type Ordering,
  orderings,
  type ReorderGroup,
  reorderableGroups,
} from './explore-orderings.js';
import { countPreemptions, parseOutOfRange, systematicSearch } from './explore-systematic.js';
import { formatScenario } from './format.js';
import { makeWorkDir, removeWorkDir } from './images.js';
import type { Scenario } from './model.js';
import { runScenario } from './run.js';
import { type DemoSpec, parseRunnableScenario } from './run-demo.js';
import { type PooledRun, pooledRun, ScenarioRunPool } from './run-pool.js';

export type ExploreMode = 'seeds' | 'systematic' | 'orderings';

export const EXPLORE_DEFAULTS = { seeds: 100, bound: 2, maxRuns: 10_000 } as const;

export interface ExploreOptions {
  mode: ExploreMode;
  /** seeds: how many runs. */
  seeds?: number;
  /** The first seed (seeds) or the one seed (systematic, orderings); default the scenario's, else 1. */
  seed?: number;
  /** systematic: most preemptions per schedule. */
  bound?: number;
  /** systematic and orderings: most runs. */
  maxRuns?: number;
  /** seeds and orderings: runs at once, in worker processes when more than 1 (default 1). */
  jobs?: number;
  demo?: DemoSpec;
  /** Work dir for the images (kept); default a fresh one on a RAM-backed filesystem, removed at the end. */
  workDir?: string;
  /** Keep each class representative's trace (tests compare it with a replay). */
  keepTraces?: boolean;
  /** After every run. */
  progress?: (p: ExploreProgress) => void;
}

export interface ExploreProgress {
  done: number;
  /** Known for seeds and orderings; undefined for systematic (the tree is discovered as it runs). */
  total?: number;
  classes: number;
  failingRuns: number;
}

/** What reproduces one run. */
export interface RunRef {
  seed: number;
  /** Every choice the run took (systematic: replay these). */
  choices: number[];
  preemptions: number;
  /** orderings: the order run, and the scenario file text that runs it (demo block included). */
  ordering?: string;
  scenarioText?: string;
  trace?: TraceEvent[];
}

export interface ExploreClass {
  cls: VerdictClass;
  description: string;
  count: number;
  /** The shortest run of the class: fewest preemptions, then fewest choices (orderings: the first). */
  representative: RunRef;
  /** The representative's failure lines, as `xenpv run` prints them. */
  failures: string[];
  /** orderings: every ordering in the class, in the order run. */
  orderings?: string[];
}

export interface ExploreReport {
  scenario: string;
  mode: ExploreMode;
  seed: number;
  runs: number;
  elapsedMs: number;
  runsPerSecond: number;
  /** Failing classes first (most runs first), then passing ones. */
  classes: ExploreClass[];
  systematic?: { bound: number; maxRuns: number; probes: number; exhausted: boolean; pending: number };
  orderings?: { groups: ReorderGroup[]; total: number; explored: number; exhausted: boolean };
  seeds?: { first: number; count: number };
}

/** Bad options or a scenario that cannot be explored that way (the CLI exits 2). */
export class ExploreInputError extends Error {}

function positiveInt(name: string, v: number | undefined, min: number): void {
  if (v !== undefined && !(Number.isSafeInteger(v) && v >= min)) {
    throw new ExploreInputError(`${name} must be a whole number >= ${min}, got ${v}`);
  }
}

/** Text of a scenario file that runs `s` with `demo` (formatScenario has no place for the demo block). */
export function scenarioFileText(s: Scenario, demo: DemoSpec | undefined): string {
  const demoBlock = demo === undefined ? '' : `demo:\n  kind: ${demo.kind}\n  messages: ${demo.messages}\n`;
  return formatScenario(s) + demoBlock;
}

export async function exploreScenario(s: Scenario, options: ExploreOptions): Promise<ExploreReport> {
  positiveInt('--seeds', options.seeds, 1);
  positiveInt('--seed', options.seed, 0);
  positiveInt('--preemptions', options.bound, 0);
  positiveInt('--max-runs', options.maxRuns, 1);
  positiveInt('--jobs', options.jobs, 1);
  const jobs = options.jobs ?? 1;
  const seed = options.seed ?? s.seed ?? 1;
  const maxRuns = options.maxRuns ?? EXPLORE_DEFAULTS.maxRuns;
  // The images are rewritten by every run: a RAM-backed work dir spares the disk I/O.
  const workDir = options.workDir ?? makeWorkDir(`explore-${s.name}`, 'memory');
  const classes = new Map<string, ExploreClass>();
  let runs = 0;
  let failingRuns = 0;
  let total: number | undefined;
  const started = performance.now();

  const record = (r: PooledRun, ref: RunRef): void => {
    runs++;
    const cls = classifyRun(r);
    if (cls.verdict === 'fail') failingRuns++;
    const have = classes.get(cls.key);
    if (options.keepTraces) ref.trace = r.trace;
    if (have === undefined) {
      classes.set(cls.key, {
        cls,
        description: describeClass(cls),
        count: 1,
        representative: ref,
        failures: r.failures,
        ...(ref.ordering !== undefined ? { orderings: [ref.ordering] } : {}),
      });
    } else {
      have.count++;
      if (ref.ordering !== undefined) have.orderings?.push(ref.ordering);
      const cur = have.representative;
      const shorter =
        ref.ordering === undefined &&
        (ref.preemptions < cur.preemptions ||
          (ref.preemptions === cur.preemptions && ref.choices.length < cur.choices.length));
      if (shorter) {
        have.representative = ref;
        have.failures = r.failures;
      }
    }
    options.progress?.({ done: runs, total, classes: classes.size, failingRuns });
  };

  const keepTrace = options.keepTraces === true;
  /** A run in this thread (systematic search, and everything when jobs is 1). */
  const runHere = async (scenario: Scenario, runSeed: number, replay?: number[]): Promise<PooledRun> =>
    pooledRun(
      await runScenario(scenario, {
        engine: 'sim',
        seed: runSeed,
        workDir,
        ...(replay !== undefined ? { replay } : {}),
        ...(options.demo !== undefined ? { demo: options.demo } : {}),
        ...(keepTrace ? {} : { traceFilter: NO_TRACE }),
      }),
      keepTrace,
    );
  const pool = jobs > 1 && options.mode !== 'systematic' ? await ScenarioRunPool.open(jobs) : undefined;
  // Runs in this thread go one at a time (they share the work dir); a pool keeps each worker fed.
  const window = pool === undefined ? 1 : 2 * jobs;
  /** A run of scenario `scenario` (whose file text is `text`) wherever there is room. */
  const runAnywhere = (scenario: Scenario, text: string, runSeed: number): Promise<PooledRun> =>
    pool === undefined
      ? runHere(scenario, runSeed)
      : pool.run({ text, fileName: `${s.name}.yaml`, seed: runSeed, keepTrace });

  const report: Omit<ExploreReport, 'classes' | 'runs' | 'elapsedMs' | 'runsPerSecond'> = {
    scenario: s.name,
    mode: options.mode,
    seed,
  };
  try {
    if (options.mode === 'seeds') {
      const count = options.seeds ?? EXPLORE_DEFAULTS.seeds;
      total = count;
      report.seeds = { first: seed, count };
      const text = pool === undefined ? '' : scenarioFileText(s, options.demo);
      const runSeeds = Array.from({ length: count }, (_, i) => seed + i);
      await runInOrder(
        runSeeds,
        window,
        (runSeed) => runAnywhere(s, text, runSeed),
        (runSeed, r) => {
          const choices = r.choices ?? [];
          record(r, { seed: runSeed, choices, preemptions: countPreemptions(choices) });
        },
      );
    } else if (options.mode === 'systematic') {
      const bound = options.bound ?? EXPLORE_DEFAULTS.bound;
      const res = await systematicSearch<PooledRun>(
        async (replay) => {
          const r = await runHere(s, seed, replay);
          const oor = r.outcome === 'error' ? parseOutOfRange(r.error) : undefined;
          const widths = r.choiceWidths;
          return {
            choices: r.choices ?? [],
            ...(widths !== undefined ? { widths } : {}),
            ...(oor !== undefined ? { outOfRange: oor } : {}),
            payload: r,
          };
        },
        {
          bound,
          maxRuns,
          visit: (run, preemptions) => record(run.payload, { seed, choices: [...run.choices], preemptions }),
        },
      );
      report.systematic = { bound, maxRuns, ...res };
    } else {
      const groups = reorderableGroups(s);
      if (groups.length === 0) {
        throw new ExploreInputError(
          `${s.name}: no reorderable steps to permute; mark two or more adjacent steps "reorderable: true"`,
        );
      }
      const all = countOrderings(groups);
      total = Math.min(all, maxRuns);
      let explored = 0;
      await runInOrder(
        firstOf(orderings(groups), maxRuns),
        window,
        (o) => {
          const { scenario, text } = orderedScenario(s, o, options.demo);
          return runAnywhere(scenario, text, seed).then((r) => ({ r, text }));
        },
        (o, { r, text }) => {
          explored++;
          const choices = r.choices ?? [];
          record(r, {
            seed,
            choices,
            preemptions: countPreemptions(choices),
            ordering: isWrittenOrder(o)
              ? `${describeOrdering(groups, o)} (as written)`
              : describeOrdering(groups, o),
            scenarioText: text,
          });
        },
      );
      report.orderings = { groups, total: all, explored, exhausted: explored === all };
    }
  } finally {
    await pool?.close();
    if (options.workDir === undefined) removeWorkDir(workDir);
  }
  const elapsedMs = performance.now() - started;
  const sorted = [...classes.values()].sort((a, b) => {
    const fa = a.cls.verdict === 'fail' ? 0 : 1;
    const fb = b.cls.verdict === 'fail' ? 0 : 1;
    return fa - fb || b.count - a.count || (a.cls.key < b.cls.key ? -1 : 1);
  });
  return {
    ...report,
    runs,
    elapsedMs,
    runsPerSecond: elapsedMs > 0 ? (runs * 1000) / elapsedMs : 0,
    classes: sorted,
  };
}

/** Trace events are not even built unless a class representative's trace is wanted. */
const NO_TRACE = (): boolean => false;

/** At most the first `n` items. */
function* firstOf<T>(items: Iterable<T>, n: number): Generator<T> {
  if (n <= 0) return;
  let i = 0;
  for (const item of items) {
    yield item;
    if (++i >= n) return;
  }
}

/**
 * `start(item)` for every item, with at most `window` started and not yet handed on, and
 * `done(item, result)` in the items' order: the report does not depend on which run finished first.
 */
async function runInOrder<I, R>(
  items: Iterable<I>,
  window: number,
  start: (item: I) => Promise<R>,
  done: (item: I, result: R) => void,
): Promise<void> {
  const it = items[Symbol.iterator]();
  const started: { item: I; result: Promise<R> }[] = [];
  let more = true;
  const fill = (): void => {
    while (more && started.length < window) {
      const next = it.next();
      if (next.done === true) {
        more = false;
        return;
      }
      const result = start(next.value);
      // Awaited in order below; a run that fails after an earlier one did must not go unhandled.
      result.catch(() => undefined);
      started.push({ item: next.value, result });
    }
  };
  fill();
  for (let head = started.shift(); head !== undefined; head = started.shift()) {
    done(head.item, await head.result);
    fill();
  }
}

/**
 * The scenario in ordering `o`, as the file text a replay runs and the model parsed back from that
 * text (so the explored run and `xenpv run` of the written file are the same run).
 */
export function orderedScenario(
  s: Scenario,
  o: Ordering,
  demo: DemoSpec | undefined,
): { scenario: Scenario; text: string } {
  const text = scenarioFileText(applyOrdering(s, o), demo);
  const parsed = parseRunnableScenario(text, `${s.name}.ordering.yaml`);
  return { scenario: parsed.scenario, text };
}

export function failingClasses(report: ExploreReport): ExploreClass[] {
  return report.classes.filter((c) => c.cls.verdict === 'fail');
}
