/**
 * Verdict classes for `xenpv explore`: runs that failed the same way fall in one class, so a thousand
 * runs print as a handful of lines. Two runs are in the same class when they agree on
 * - the verdict (pass / fail) and the engine outcome (completed / deadlock / error);
 * - the set of failed expectations (by name, e.g. `expect.stall`, `expect.xenstore /x`), of failed
 *   steps (by label, else field path) and the run error (task ids stripped);
 * - the shape of every stall: its chain of holders with task ids stripped (`labelWithoutIds`), what each
 *   waits for, whether it is a cycle, and the timer that broke it.
 * Times, deadlines and task ids are left out: they differ between schedules that fail the same way.
 */
import type { StallReport } from '../runtime/engine.js';
import { labelWithoutIds } from '../runtime/waitgraph.js';
import type { RunScenarioResult } from './run.js';

export type VerdictKind = 'pass' | 'fail';

export interface VerdictClass {
  /** Canonical text of everything below; equal keys mean the same class. */
  key: string;
  verdict: VerdictKind;
  outcome: RunScenarioResult['outcome'];
  /** Failed expectations, failed steps and the run error, sorted. */
  failed: string[];
  /** One line per stall, in the order they happened. */
  stalls: string[];
}

/** Task ids in labels and messages ("dom0/tapdisk#12") differ between schedules. */
function stripIds(text: string): string {
  return text.replace(/#\d+\b/g, '');
}

export function stallShape(s: StallReport): string {
  const links = s.chain.map((l) => `${labelWithoutIds(l.holder)} waits for ${l.waitsFor}`);
  const chain = links.length > 0 ? links.join(' -> ') : '(empty chain)';
  const end = s.brokenBy === undefined ? ' [deadlock]' : ` [broken by ${s.brokenBy.timer}]`;
  return `${s.cycle ? 'cycle: ' : ''}${chain}${end}`;
}

/** What a run's verdict class is; only the fields named in the file comment are looked at. */
export function classifyRun(
  r: Pick<RunScenarioResult, 'verdict' | 'outcome' | 'checks' | 'steps' | 'stalls' | 'error'> &
    Partial<Pick<RunScenarioResult, 'expectedOops'>>,
): VerdictClass {
  const failed = new Set<string>();
  for (const c of r.checks) if (!c.ok) failed.add(c.name);
  for (const st of r.steps) if (st.status === 'failed') failed.add(`step ${st.label ?? stripIds(st.path)}`);
  if (r.outcome === 'error' && !r.expectedOops) failed.add(`run error: ${stripIds(r.error ?? 'unknown')}`);
  const failedList = [...failed].sort();
  const stalls = r.stalls.map(stallShape);
  const key = JSON.stringify([r.verdict, r.outcome, failedList, stalls]);
  return { key, verdict: r.verdict, outcome: r.outcome, failed: failedList, stalls };
}

/** A one-line name for a class, for the printed report. */
export function describeClass(c: VerdictClass): string {
  if (c.verdict === 'pass') {
    return c.stalls.length === 0 ? 'pass' : `pass (with ${c.stalls.length} expected stall(s))`;
  }
  if (c.outcome === 'deadlock') return 'deadlock';
  if (c.stalls.length > 0 && c.failed.length === 0) return 'fail (stall)';
  return `fail: ${c.failed.join(', ')}`;
}
