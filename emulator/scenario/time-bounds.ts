/**
 * Checking a virtual-time bound (`expect-elapsed` on a step, `expect.elapsed` on the run) in the engine
 * that ran it. In sim, virtual time moves only when a timer fires: running code costs nothing, so both
 * bounds are exact. In threads, virtual time is host time divided by the time scale: a lower bound still
 * holds (a timer fires at its deadline or later), but an upper bound measures how loaded the host was,
 * so it is reported and not asserted there.
 */
import type { EngineKind, Millis } from '../runtime/engine.js';
import type { TimeBounds } from './model.js';
import { formatDuration } from './units.js';

export interface TimeBoundsCheck {
  ok: boolean;
  /** Which bounds were broken, e.g. "expected at least 5s" (only when not ok). */
  broken?: string;
  /** A bound that was not asserted in this engine, and why (e.g. "at most 4s: not asserted in threads ..."). */
  unasserted?: string;
}

/** Whether this engine's virtual time can be held to an upper bound. */
export function upperBoundAsserted(engine: EngineKind): boolean {
  return engine === 'sim';
}

export function checkTimeBounds(took: Millis, bounds: TimeBounds, engine: EngineKind): TimeBoundsCheck {
  const { atLeast, atMost } = bounds;
  const assertMost = atMost !== undefined && upperBoundAsserted(engine);
  const low = atLeast !== undefined && took < atLeast;
  const high = assertMost && took > atMost;
  const out: TimeBoundsCheck = { ok: !low && !high };
  if (!out.ok) {
    const wanted: string[] = [];
    if (atLeast !== undefined) wanted.push(`at least ${formatDuration(atLeast)}`);
    if (assertMost) wanted.push(`at most ${formatDuration(atMost)}`);
    out.broken = `expected ${wanted.join(' and ')}`;
  }
  if (atMost !== undefined && !assertMost) {
    out.unasserted =
      `at most ${formatDuration(atMost)}: not asserted in ${engine}, where virtual time includes host ` +
      'time (it holds exactly in sim)';
  }
  return out;
}
