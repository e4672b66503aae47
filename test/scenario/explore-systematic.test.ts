/**
 * The preemption-bounded search on a small racy program in the sim engine: task A reads a counter,
 * yields, and writes it back plus one, after 30 harmless yields; task B increments it in one slice.
 * The update is lost only when B runs exactly between A's read and write, i.e. never before that
 * point: one preemption at decision 31 finds it; a random scheduler needs 31 fair coin flips to go
 * A's way (about 2^-31 per run).
 */
import { describe, expect, test } from 'vitest';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import {
  countPreemptions,
  parseOutOfRange,
  type ScheduleRun,
  systematicSearch,
} from '../../emulator/scenario/explore-systematic.js';

const HARMLESS_YIELDS = 30;

async function racy(
  seed: number,
  replay?: number[],
): Promise<ScheduleRun<number | undefined> & { error?: string }> {
  const engine = createSimEngine({ seed, ...(replay !== undefined ? { replay } : {}) });
  const r = await engine.run(async (ctl) => {
    const env = ctl.env;
    let x = 0;
    let done = 0;
    const q = env.waitQueue('workers');
    env.spawn('A', async () => {
      for (let i = 0; i < HARMLESS_YIELDS; i++) await env.yield();
      const v = x;
      await env.yield();
      x = v + 1;
      done++;
      q.wakeAll();
    });
    env.spawn('B', async () => {
      x += 1;
      done++;
      q.wakeAll();
    });
    await env.wait(q, () => done === 2, { what: 'A and B to finish' });
    return x;
  });
  await engine.close();
  const oor = r.outcome === 'error' ? parseOutOfRange(r.error?.message) : undefined;
  return {
    choices: r.choices ?? [],
    widths: r.choiceWidths ?? [],
    ...(oor !== undefined ? { outOfRange: oor } : {}),
    payload: r.value,
    ...(r.error ? { error: r.error.message } : {}),
  };
}

describe('systematic search', () => {
  test('random seeds never lose the update in 300 runs', async () => {
    const results = new Set<number | undefined>();
    for (let seed = 1; seed <= 300; seed++) results.add((await racy(seed)).payload);
    expect([...results]).toEqual([2]);
  });

  test('bound 0 runs exactly one schedule (all defaults)', async () => {
    const seen: number[][] = [];
    const res = await systematicSearch((replay) => racy(1, replay), {
      bound: 0,
      maxRuns: 100,
      visit: (r) => seen.push([...r.choices]),
    });
    expect(res).toEqual({ runs: 1, probes: 0, exhausted: true, pending: 0 });
    expect(seen[0].every((c) => c === 0)).toBe(true);
    // Decisions: A or B first, 30 harmless yields, the yield after the read, then B or the controller.
    expect(seen[0]).toHaveLength(HARMLESS_YIELDS + 3);
  });

  test('bound 1 finds the lost update with one preemption, and exhausts the space', async () => {
    const lost: { choices: number[]; preemptions: number }[] = [];
    const all = new Set<string>();
    const res = await systematicSearch((replay) => racy(1, replay), {
      bound: 1,
      maxRuns: 1000,
      visit: (r, preemptions) => {
        all.add(r.choices.join(','));
        expect(countPreemptions(r.choices)).toBe(preemptions);
        if (r.payload === 1) lost.push({ choices: [...r.choices], preemptions });
      },
    });
    // Root + one schedule per decision of the root (each decision had two candidates).
    expect(res).toEqual({ runs: HARMLESS_YIELDS + 4, probes: 0, exhausted: true, pending: 0 });
    expect(all.size).toBe(res.runs);
    expect(lost).toHaveLength(1);
    expect(lost[0].preemptions).toBe(1);
    // B goes at the decision right after A's read (after the first pick and 30 yields).
    expect(lost[0].choices.indexOf(1)).toBe(HARMLESS_YIELDS + 1);
    // The schedule replays to the same lost update.
    expect((await racy(1, lost[0].choices)).payload).toBe(1);
  });

  test('without decision widths, alternatives are found by probing; the same schedules run', async () => {
    const withWidths = new Set<string>();
    const probed = new Set<string>();
    await systematicSearch((replay) => racy(1, replay), {
      bound: 2,
      maxRuns: 5000,
      visit: (r) => withWidths.add(r.choices.join(',')),
    });
    const res = await systematicSearch(
      async (replay) => {
        const { widths: _dropped, ...r } = await racy(1, replay);
        return r;
      },
      { bound: 2, maxRuns: 5000, visit: (r) => probed.add(r.choices.join(',')) },
    );
    expect(res.exhausted).toBe(true);
    expect(res.probes).toBeGreaterThan(0);
    expect([...probed].sort()).toEqual([...withWidths].sort());
  });

  test('the cap stops the search and says what is left', async () => {
    const res = await systematicSearch((replay) => racy(1, replay), {
      bound: 1,
      maxRuns: 5,
      visit: () => {},
    });
    expect(res.runs).toBe(5);
    expect(res.exhausted).toBe(false);
    expect(res.pending).toBeGreaterThan(0);
  });

  test.each([
    [{ bound: -1, maxRuns: 1 }, /preemption bound must be >= 0, got -1/],
    [{ bound: 1.5, maxRuns: 1 }, /preemption bound must be >= 0, got 1.5/],
    [{ bound: 0, maxRuns: 0 }, /max runs must be >= 1, got 0/],
  ])('bad options %j are refused', async (opts, message) => {
    await expect(systematicSearch((replay) => racy(1, replay), { ...opts, visit: () => {} })).rejects.toThrow(
      message,
    );
  });

  test.each([
    ['replay[7] = 3, but only 2 tasks were runnable there (valid: 0..1)', { pos: 7, width: 2 }],
    ['task dom0/x#1 failed: boom', undefined],
    [undefined, undefined],
  ])('parseOutOfRange(%j)', (message, expected) => {
    expect(parseOutOfRange(message)).toEqual(expected);
  });
});
