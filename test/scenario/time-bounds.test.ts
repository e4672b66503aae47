/**
 * Virtual-time bounds per engine: exact in sim; in threads, where virtual time includes host time, a
 * lower bound is still asserted (timers never fire early) and an upper bound is only reported.
 */
import { describe, expect, test } from 'vitest';
import { scenario } from '../../emulator/scenario/load.js';
import { runScenario } from '../../emulator/scenario/run.js';
import { checkTimeBounds, type TimeBoundsCheck } from '../../emulator/scenario/time-bounds.js';
import { THREADS_TIME_SCALE } from '../threads-time.js';

const NOT_IN_THREADS = (b: string) =>
  `at most ${b}: not asserted in threads, where virtual time includes host time (it holds exactly in sim)`;

describe('checkTimeBounds', () => {
  const cases: Array<
    [string, number, { atLeast?: number; atMost?: number }, 'sim' | 'threads', TimeBoundsCheck]
  > = [
    ['within both, sim', 1500, { atLeast: 1000, atMost: 2000 }, 'sim', { ok: true }],
    ['at the bounds exactly, sim', 1000, { atLeast: 1000, atMost: 1000 }, 'sim', { ok: true }],
    ['over at-most, sim', 2001, { atMost: 2000 }, 'sim', { ok: false, broken: 'expected at most 2s' }],
    ['under at-least, sim', 999, { atLeast: 1000 }, 'sim', { ok: false, broken: 'expected at least 1s' }],
    [
      'under at-least with both given, sim',
      0,
      { atLeast: 5000, atMost: 6000 },
      'sim',
      { ok: false, broken: 'expected at least 5s and at most 6s' },
    ],
    [
      'over at-most, threads: reported, not asserted',
      5313,
      { atMost: 4000 },
      'threads',
      { ok: true, unasserted: NOT_IN_THREADS('4s') },
    ],
    [
      'under at-least, threads: asserted',
      10,
      { atLeast: 5000, atMost: 6000 },
      'threads',
      { ok: false, broken: 'expected at least 5s', unasserted: NOT_IN_THREADS('6s') },
    ],
    ['at-least only, threads', 5000, { atLeast: 5000 }, 'threads', { ok: true }],
  ];
  test.each(cases)('%s', (_name, took, bounds, engine, want) => {
    expect(checkTimeBounds(took, bounds, engine)).toEqual(want);
  });
});

describe('time bounds in a run', () => {
  const s = scenario({
    name: 'time-bounds',
    description: 'a 2 s wait held to bounds it breaks',
    steps: [
      { wait: { time: '2s' }, 'expect-elapsed': { 'at-most': '1s' } },
      { wait: { time: '2s' }, 'expect-elapsed': { 'at-least': '5s' } },
    ],
    expect: { elapsed: { 'at-most': '1s' } },
  });

  test('sim asserts both kinds of bound', async () => {
    const r = await runScenario(s, { engine: 'sim', seed: 1 });
    expect(r.failures).toEqual([
      'step steps[0] (wait 2s) failed: took 2s, expected at most 1s',
      'step steps[1] (wait 2s) failed: took 2s, expected at least 5s',
      'expect.elapsed: 4s (wanted <= 1s)',
    ]);
    expect(r.steps.map((x) => x.unasserted)).toEqual([undefined, undefined]);
  });

  test('threads asserts the lower bound and reports the upper ones', async () => {
    const r = await runScenario(s, { engine: 'threads', timeScale: THREADS_TIME_SCALE });
    expect(r.failures).toEqual([
      expect.stringMatching(/^step steps\[1\] \(wait 2s\) failed: took .*, expected at least 5s$/),
    ]);
    expect(r.steps.map((x) => x.status)).toEqual(['ok', 'failed']);
    expect(r.steps[0].unasserted).toBe(`expect-elapsed ${NOT_IN_THREADS('1s')}`);
    const elapsed = r.checks.find((c) => c.name === 'expect.elapsed');
    expect(elapsed?.ok).toBe(true);
    expect(elapsed?.detail).toMatch(
      new RegExp(`\\(wanted <= 1s\\); ${NOT_IN_THREADS('1s').replace(/[()]/g, '\\$&')}$`),
    );
  }, 30_000);
});
