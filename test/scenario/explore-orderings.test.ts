import { describe, expect, test } from 'vitest';
import { classifyRun, describeClass } from '../../emulator/scenario/explore-classes.js';
import {
  applyOrdering,
  countOrderings,
  describeOrdering,
  orderings,
  reorderableGroups,
} from '../../emulator/scenario/explore-orderings.js';
import { scenario } from '../../emulator/scenario/load.js';
import type { Step } from '../../emulator/scenario/model.js';

const w = (label: string, reorderable = true) => ({
  'xenstore-write': { path: `/t/${label}`, value: 1 },
  label,
  ...(reorderable ? { reorderable: true } : {}),
});

function names(steps: Step[]): string[] {
  return steps.map((s) => s.label ?? s.kind);
}

describe('reorderable groups', () => {
  test.each([
    ['no reorderable steps', [w('a', false), w('b', false)], []],
    ['a lone reorderable step is no group', [w('a'), w('b', false), w('c')], []],
    ['one run', [w('x', false), w('a'), w('b'), w('c'), w('y', false)], [['a', 'b', 'c']]],
    [
      'two runs split by a fixed step',
      [w('a'), w('b'), w('x', false), w('c'), w('d')],
      [
        ['a', 'b'],
        ['c', 'd'],
      ],
    ],
  ])('%s', (_name, steps, expected) => {
    const s = scenario({ name: 't', description: 'd', steps });
    expect(reorderableGroups(s).map((g) => g.names)).toEqual(expected);
  });

  test('nested lists are groups of their own, numbered depth first in document order', () => {
    const s = scenario({
      name: 't',
      description: 'd',
      steps: [w('a'), w('b'), { repeat: 2, steps: [w('r1'), w('r2'), w('r3')] }, w('c'), w('d')],
    });
    expect(reorderableGroups(s)).toEqual([
      { list: 'steps', start: 0, names: ['a', 'b'] },
      { list: 'steps', start: 3, names: ['c', 'd'] },
      { list: 'steps[2].steps', start: 0, names: ['r1', 'r2', 'r3'] },
    ]);
    expect(countOrderings(reorderableGroups(s))).toBe(2 * 2 * 6);
    const o = [
      [1, 0],
      [0, 1],
      [2, 0, 1],
    ];
    const t = applyOrdering(s, o);
    expect(names(t.steps)).toEqual(['b', 'a', 'repeat', 'c', 'd']);
    expect(names((t.steps[2] as Extract<Step, { kind: 'repeat' }>).steps)).toEqual(['r3', 'r1', 'r2']);
    expect(names(s.steps)).toEqual(['a', 'b', 'repeat', 'c', 'd']); // the original is untouched
    expect(describeOrdering(reorderableGroups(s), o)).toBe('b > a; c > d; r3 > r1 > r2');
  });

  test('orderings: the written order first, every combination once', () => {
    const s = scenario({
      name: 't',
      description: 'd',
      steps: [w('a'), w('b'), w('c'), w('x', false), w('d'), w('e')],
    });
    const groups = reorderableGroups(s);
    const all = [...orderings(groups)].map((o) => describeOrdering(groups, o));
    expect(all[0]).toBe('a > b > c; d > e');
    expect(all).toHaveLength(12);
    expect(new Set(all).size).toBe(12);
    expect(all.slice(0, 4)).toEqual([
      'a > b > c; d > e',
      'a > b > c; e > d',
      'a > c > b; d > e',
      'a > c > b; e > d',
    ]);
  });

  test.each([
    [[[0, 0]], /permutation of 0..1/],
    [[[0, 1, 2]], /permutation of 0..1/],
    [[], /0 permutation\(s\) for 1 group\(s\)/],
  ])('applyOrdering refuses %j', (o, message) => {
    const s = scenario({ name: 't', description: 'd', steps: [w('a'), w('b')] });
    expect(() => applyOrdering(s, o)).toThrow(message);
  });
});

describe('verdict classes', () => {
  const stall = (holder: string, id: number) => ({
    at: 100 + id,
    chain: [{ holder: `${holder}#${id}`, waitsFor: 'DETACH_RSP', deadline: 5000 + id }],
    cycle: true,
    brokenBy: { timer: 'tap-ctl select() timeout', task: `${holder}#${id}`, at: 5000 + id },
  });
  const base = { verdict: 'fail' as const, outcome: 'completed' as const, checks: [], steps: [], stalls: [] };

  test.each([
    [
      'task ids and times do not split a class',
      { ...base, stalls: [stall('dom0/xl', 3)] },
      { ...base, stalls: [stall('dom0/xl', 9)] },
      true,
    ],
    [
      'another holder is another class',
      { ...base, stalls: [stall('dom0/xl', 3)] },
      { ...base, stalls: [stall('dom0/tap-ctl', 3)] },
      false,
    ],
    [
      'the same failed expectations are one class, whatever the detail',
      { ...base, checks: [{ name: 'expect.stall: none', ok: false, detail: 'x' }] },
      { ...base, checks: [{ name: 'expect.stall: none', ok: false, detail: 'y' }] },
      true,
    ],
    [
      'different failed expectations are different classes',
      { ...base, checks: [{ name: 'expect.stall: none', ok: false, detail: '' }] },
      { ...base, checks: [{ name: 'expect.tap-ctl-list', ok: false, detail: '' }] },
      false,
    ],
    ['deadlock differs from a completed run', { ...base, outcome: 'deadlock' as const }, { ...base }, false],
  ])('%s', (_name, a, b, same) => {
    expect(classifyRun(a).key === classifyRun(b).key).toBe(same);
  });

  test('descriptions', () => {
    expect(describeClass(classifyRun({ ...base, verdict: 'pass' }))).toBe('pass');
    expect(describeClass(classifyRun({ ...base, outcome: 'deadlock' }))).toBe('deadlock');
    expect(
      describeClass(
        classifyRun({ ...base, checks: [{ name: 'expect.data d 4096@0', ok: false, detail: '' }] }),
      ),
    ).toBe('fail: expect.data d 4096@0');
    expect(classifyRun({ ...base, stalls: [stall('dom0/xl', 3)] }).stalls).toEqual([
      'cycle: dom0/xl waits for DETACH_RSP [broken by tap-ctl select() timeout]',
    ]);
  });
});
