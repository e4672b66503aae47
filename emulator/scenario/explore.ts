/**
 * `xenpv explore`: run one scenario many times in the sim engine and group the runs by verdict class.
 *
 * Three searches:
 * - seeds: seeds base .. base+N-1, each a different random schedule;
 * - systematic: every schedule within a preemption bound, depth first (explore-systematic.ts);
 * - orderings: every order of the scenario's reorderable steps (explore-orderings.ts), base seed.
 *
 * Runs are sequential (the sim engine is one thread; there is no --jobs). What is shared between runs:
 * the parsed scenario, one work dir (images are rewritten by each run), the imported machine modules
 * (Node caches them). Each run builds its own machine: that is the run itself.
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
import { type RunScenarioResult, runScenario } from './run.js';
import { type DemoSpec, parseRunnableScenario } from './run-demo.js';

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
  const seed = options.seed ?? s.seed ?? 1;
  const maxRuns = options.maxRuns ?? EXPLORE_DEFAULTS.maxRuns;
  // The images are rewritten by every run: a RAM-backed work dir spares the disk I/O.
  const workDir = options.workDir ?? makeWorkDir(`explore-${s.name}`, 'memory');
  const classes = new Map<string, ExploreClass>();
  let runs = 0;
  let failingRuns = 0;
  let total: number | undefined;
  const started = performance.now();

  const record = (r: RunScenarioResult, ref: RunRef): void => {
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

  const runOnce = (scenario: Scenario, runSeed: number, replay?: number[]) =>
    runScenario(scenario, {
      engine: 'sim',
      seed: runSeed,
      workDir,
      ...(replay !== undefined ? { replay } : {}),
      ...(options.demo !== undefined ? { demo: options.demo } : {}),
    });

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
      for (let i = 0; i < count; i++) {
        const r = await runOnce(s, seed + i);
        const choices = r.choices ?? [];
        record(r, { seed: seed + i, choices, preemptions: countPreemptions(choices) });
      }
    } else if (options.mode === 'systematic') {
      const bound = options.bound ?? EXPLORE_DEFAULTS.bound;
      const res = await systematicSearch<RunScenarioResult>(
        async (replay) => {
          const r = await runOnce(s, seed, replay);
          const oor = r.outcome === 'error' ? parseOutOfRange(r.error) : undefined;
          // choiceWidths is read when the runner passes the engine's through (RunResult has it).
          const widths = (r as { choiceWidths?: number[] }).choiceWidths;
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
      for (const o of orderings(groups)) {
        if (explored >= maxRuns) break;
        explored++;
        const { scenario, text } = orderedScenario(s, o, options.demo);
        const r = await runOnce(scenario, seed);
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
      }
      report.orderings = { groups, total: all, explored, exhausted: explored === all };
    }
  } finally {
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
