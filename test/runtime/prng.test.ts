import fc from 'fast-check';
import { expect, test } from 'vitest';
import { type Timer, TimerHeap } from '../../emulator/runtime/clock.js';
import { Sfc32 } from '../../emulator/runtime/prng.js';

test('the same seed gives the same stream; different seeds differ', () => {
  const draw = (seed: number) =>
    Array.from(
      { length: 8 },
      (
        (r) => () =>
          r.nextU32()
      )(new Sfc32(seed)),
    );
  expect(draw(42)).toEqual(draw(42));
  expect(draw(42)).not.toEqual(draw(43));
});

test('below(n) stays in range and next() in [0, 1)', () => {
  fc.assert(
    fc.property(fc.integer(), fc.integer({ min: 1, max: 10_000 }), (seed, n) => {
      const r = new Sfc32(seed);
      for (let i = 0; i < 20; i++) {
        const k = r.below(n);
        const x = r.next();
        if (!(Number.isInteger(k) && k >= 0 && k < n && x >= 0 && x < 1)) return false;
      }
      return true;
    }),
  );
});

test('below(n) is roughly uniform', () => {
  const r = new Sfc32(1);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 40_000; i++) counts[r.below(4)]++;
  for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
});

test('a non-finite seed is refused', () => {
  expect(() => new Sfc32(Number.NaN)).toThrow('prng: seed must be a finite number, got NaN');
});

test('the timer heap pops in (time, arming order), skipping cancelled timers', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ at: fc.integer({ min: 0, max: 20 }), cancel: fc.boolean() }), { maxLength: 300 }),
      (specs) => {
        const heap = new TimerHeap();
        const timers: Timer[] = specs.map((s, seq) => ({
          at: s.at,
          seq,
          kind: 'sleep',
          owner: undefined,
          cancelled: false,
          fire: () => {},
        }));
        for (const t of timers) heap.push(t);
        specs.forEach((s, i) => {
          if (s.cancel) heap.cancel(timers[i]);
        });
        const expected = timers
          .filter((_, i) => !specs[i].cancel)
          .sort((a, b) => a.at - b.at || a.seq - b.seq)
          .map((t) => t.seq);
        const got: number[] = [];
        for (let t = heap.pop(); t !== undefined; t = heap.pop()) got.push(t.seq);
        expect(got).toEqual(expected);
      },
    ),
  );
});
