/** `xenpv bench --only TEXT`: which figures run (each with the baseline it is compared with). */
import { describe, expect, test } from 'vitest';
import type { BenchCase } from '../../bench/harness.js';
import { selectCases } from '../../bench/main.js';

const run = async () => 1;
const CASES: BenchCase[] = [
  { name: 'transport limit', unit: 'ops/s', run },
  { name: 'grant map + unmap', unit: 'ops/s', run, baseline: 'transport limit' },
  { name: 'sim lifecycles', unit: 'runs/s', run },
  { name: 'sim lifecycles on 2 worker threads', unit: 'runs/s', run },
];
const names = (cs: BenchCase[]) => cs.map((c) => c.name);

describe('bench --only', () => {
  test.each([
    [undefined, names(CASES)],
    ['LIFECYCLES', ['sim lifecycles', 'sim lifecycles on 2 worker threads']],
    ['grant', ['transport limit', 'grant map + unmap']],
  ])('%j selects %j, in the table order', (only, expected) => {
    expect(names(selectCases(CASES, only))).toEqual(expected);
  });

  test('a text no figure contains is refused with the list of figures', () => {
    expect(() => selectCases(CASES, 'iops')).toThrow(
      '--only "iops" matches no figure; the figures are:\n  transport limit\n  grant map + unmap',
    );
  });
});
