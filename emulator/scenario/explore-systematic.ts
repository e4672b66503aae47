/**
 * Systematic schedule search for `xenpv explore --systematic`: a depth-first walk of the sim engine's
 * choice tree with preemption bounding (CHESS, Musuvathi et al., OSDI'08; peers-and-models.md §1.12).
 *
 * The sim engine records a choice at every scheduling decision that had two or more runnable tasks;
 * its run queue is ordered by task id, so index 0 is the oldest runnable task. Here the *default*
 * schedule takes index 0 at every decision (a deterministic, non-preemptive-by-age scheduler) and a
 * *preemption* is any decision that takes another index. (Simplification: CHESS counts only switches
 * away from a still-runnable task; the engine's choice lists do not name tasks, so every non-default
 * pick counts, which makes this closer to delay bounding — Emmi, Qadeer, Rakamarić, POPL'11.)
 *
 * Every schedule with at most `bound` preemptions is visited exactly once: a schedule is named by its
 * choice prefix up to its last non-default pick, and runs replay that prefix followed by zeros (the
 * seed never picks: the replay list is padded past the run's length). Decision widths come from the
 * run when the runner knows them; otherwise an alternative past the last valid one is found by
 * trying it (the engine refuses an out-of-range replay at once and names the width): such a try is a
 * *probe*, not a schedule.
 */

export interface ScheduleRun<T> {
  /** The index taken at each decision, replayed prefix included. */
  choices: readonly number[];
  /** How many tasks were runnable at each decision, when the runner can tell. */
  widths?: readonly number[];
  /** Set when the replay asked for an index past the decision's candidates. */
  outOfRange?: { pos: number; width: number };
  payload: T;
}

export type RunSchedule<T> = (replay: number[]) => Promise<ScheduleRun<T>>;

export interface SystematicOptions<T> {
  /** Most preemptions (non-default picks) in one schedule. */
  bound: number;
  /** Most engine runs (schedules and probes). */
  maxRuns: number;
  /** Called for each schedule run (not for probes). */
  visit(run: ScheduleRun<T>, preemptions: number): void;
}

export interface SystematicResult {
  /** Schedules run. */
  runs: number;
  /** Runs that only found a decision's width. */
  probes: number;
  /** True when every schedule within the bound was run (the cap did not cut the search short). */
  exhausted: boolean;
  /** Schedules known but not run when the cap was reached (a lower bound of what is left). */
  pending: number;
}

/** A schedule still to run: `base[0..pos)` then `alt` at `pos` (base shared, not copied). */
interface Pending {
  base: readonly number[];
  pos: number;
  alt: number;
  preemptions: number;
}

const REPLAY_OUT_OF_RANGE = /replay\[(\d+)\] = \d+, but only (\d+) tasks were runnable/;

/** Reads the sim engine's refusal of an out-of-range replay (sim.ts `pick`) from an error message. */
export function parseOutOfRange(message: string | undefined): { pos: number; width: number } | undefined {
  const m = message === undefined ? null : REPLAY_OUT_OF_RANGE.exec(message);
  return m === null ? undefined : { pos: Number(m[1]), width: Number(m[2]) };
}

export function countPreemptions(choices: readonly number[]): number {
  let n = 0;
  for (const c of choices) if (c !== 0) n++;
  return n;
}

export async function systematicSearch<T>(
  run: RunSchedule<T>,
  options: SystematicOptions<T>,
): Promise<SystematicResult> {
  const { bound, maxRuns } = options;
  if (!(Number.isInteger(bound) && bound >= 0))
    throw new Error(`preemption bound must be >= 0, got ${bound}`);
  if (!(Number.isInteger(maxRuns) && maxRuns >= 1)) throw new Error(`max runs must be >= 1, got ${maxRuns}`);
  let pad = 256;
  let runs = 0;
  let probes = 0;
  // The root: no prefix, all defaults.
  const stack: (Pending | undefined)[] = [undefined];
  while (stack.length > 0 && runs + probes < maxRuns) {
    const node = stack.pop();
    const prefix = node === undefined ? [] : [...node.base.slice(0, node.pos), node.alt];
    const preemptions = node?.preemptions ?? 0;
    const replay = prefix.concat(new Array<number>(pad).fill(0));
    const r = await run(replay);
    if (r.outOfRange !== undefined) {
      if (node === undefined || r.outOfRange.pos !== node.pos) {
        throw new Error(
          `systematic search: the replay went out of range at decision ${r.outOfRange.pos}, not at the ` +
            `explored one (${node?.pos ?? 'none'}); the run is not deterministic for a fixed seed`,
        );
      }
      probes++;
      continue;
    }
    if (r.choices.length >= replay.length) {
      // Ran past the padding, so later picks came from the seed: pad more and run it again.
      pad = Math.max(pad * 2, r.choices.length * 2);
      stack.push(node);
      continue;
    }
    pad = Math.max(pad, r.choices.length + 64);
    runs++;
    options.visit(r, preemptions);
    const widthAt = (pos: number): number | undefined => r.widths?.[pos];
    // Children: one more preemption at any later decision (pushed last-first: earliest runs first).
    if (preemptions < bound) {
      for (let pos = r.choices.length - 1; pos >= prefix.length; pos--) {
        stack.push({ base: r.choices, pos, alt: 1, preemptions: preemptions + 1 });
      }
    }
    // The next alternative at this schedule's own last pick (same number of preemptions).
    if (node !== undefined) {
      const w = widthAt(node.pos);
      if (w === undefined || node.alt + 1 < w) stack.push({ ...node, alt: node.alt + 1 });
    }
  }
  return { runs, probes, exhausted: stack.length === 0, pending: stack.length };
}
