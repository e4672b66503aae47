import { describe, expect, test } from 'vitest';
import type { Holder, WaitFor } from '../../emulator/runtime/engine.js';
import {
  chainFromHolder,
  chainVerdict,
  followChain,
  labelWithoutIds,
  type WaitNode,
} from '../../emulator/runtime/waitgraph.js';

function table(entries: Record<string, WaitNode | null>) {
  return (label: string) => {
    if (!(label in entries)) return undefined;
    const w = entries[label];
    return { label, wait: w ?? undefined };
  };
}

describe('followChain', () => {
  test.each([
    {
      name: 'a chain ending at a holder that is not blocked',
      graph: { a: { what: 'x', holders: ['b'] }, b: { what: 'y', holders: ['c'] }, c: null },
      links: [
        { holder: 'a', waitsFor: 'x', heldBy: 'b' },
        { holder: 'b', waitsFor: 'y', heldBy: 'c' },
      ],
      cycle: false,
    },
    {
      name: 'a two-party cycle',
      graph: { a: { what: 'x', holders: ['b'] }, b: { what: 'y', holders: ['a'] } },
      links: [
        { holder: 'a', waitsFor: 'x', heldBy: 'b' },
        { holder: 'b', waitsFor: 'y', heldBy: 'a' },
      ],
      cycle: true,
    },
    {
      name: 'a cycle entered part way',
      graph: {
        s: { what: 'w', holders: ['a'] },
        a: { what: 'x', holders: ['b'] },
        b: { what: 'y', holders: ['a'] },
      },
      links: [
        { holder: 's', waitsFor: 'w', heldBy: 'a' },
        { holder: 'a', waitsFor: 'x', heldBy: 'b' },
        { holder: 'b', waitsFor: 'y', heldBy: 'a' },
      ],
      cycle: true,
    },
    {
      name: 'a wait without holders',
      graph: { a: { what: 'x', holders: [] } },
      links: [{ holder: 'a', waitsFor: 'x' }],
      cycle: false,
    },
    {
      name: 'the first holder is followed, the others are not',
      graph: { a: { what: 'x', holders: ['free', 'b'] }, b: { what: 'y', holders: ['a'] }, free: null },
      links: [{ holder: 'a', waitsFor: 'x', heldBy: 'free' }],
      cycle: false,
    },
    {
      name: 'an unknown holder label ends the chain',
      graph: { a: { what: 'x', holders: ['ghost'] } },
      links: [{ holder: 'a', waitsFor: 'x', heldBy: 'ghost' }],
      cycle: false,
    },
    {
      name: 'a self-wait (recursive lock) is a cycle',
      graph: { a: { what: 'mutex m', holders: ['a'] } },
      links: [{ holder: 'a', waitsFor: 'mutex m', heldBy: 'a' }],
      cycle: true,
    },
  ])('$name', ({ graph, links, cycle }) => {
    expect(
      followChain(Object.keys(graph)[0], table(graph as unknown as Record<string, WaitNode | null>)),
    ).toEqual({
      chain: links,
      cycle,
    });
  });

  test('deadlines are carried into the links', () => {
    const c = followChain('a', table({ a: { what: 'x', holders: [], deadline: 5000, timeoutName: 't' } }));
    expect(c.chain).toEqual([{ holder: 'a', waitsFor: 'x', deadline: 5000 }]);
  });

  test('references resolve to the canonical label so cycles are found across names', () => {
    const resolve = (label: string) => {
      const canon = label === 'dom2/run' ? 'dom2/run#7' : label === 'dom1/run' ? 'dom1/run#3' : label;
      const waits: Record<string, WaitNode> = {
        'dom1/run#3': { what: 'flag of dom2', holders: ['dom2/run'] },
        'dom2/run#7': { what: 'flag of dom1', holders: ['dom1/run'] },
      };
      return { label: canon, wait: waits[canon] };
    };
    expect(followChain('dom1/run#3', resolve)).toEqual({
      chain: [
        { holder: 'dom1/run#3', waitsFor: 'flag of dom2', heldBy: 'dom2/run#7' },
        { holder: 'dom2/run#7', waitsFor: 'flag of dom1', heldBy: 'dom1/run#3' },
      ],
      cycle: true,
    });
  });
});

describe('chainFromHolder', () => {
  test('walks live holders lazily, including holders that are not tasks', () => {
    let calls = 0;
    const mk = (label: string, wait: () => WaitFor | undefined): Holder => ({ label, blockedOn: wait });
    const libxl: Holder = mk('dom0/xl#4', () => ({
      what: 'DETACH reply from tapdisk 201',
      holders: () => [tapdisk],
      deadline: 5000,
      timeoutName: 'tap-ctl select() timeout',
    }));
    const blkback: Holder = mk('blkback vbd-1-51712', () => ({
      what: 'its xenbus device to be removed',
      holders: () => {
        calls++;
        return [libxl];
      },
    }));
    const tapdisk: Holder = mk('dom0/tapdisk#9', () => ({
      what: 'tapdev0 to have no openers',
      holders: () => [blkback],
    }));
    const c = chainFromHolder(libxl);
    expect(c.cycle).toBe(true);
    expect(c.chain.map((l) => [l.holder, l.waitsFor])).toEqual([
      ['dom0/xl#4', 'DETACH reply from tapdisk 201'],
      ['dom0/tapdisk#9', 'tapdev0 to have no openers'],
      ['blkback vbd-1-51712', 'its xenbus device to be removed'],
    ]);
    expect(c.chain[0].deadline).toBe(5000);
    expect(calls).toBe(1);
  });

  test('a start that is not blocked gives an empty chain', () => {
    expect(chainFromHolder({ label: 'x', blockedOn: () => undefined })).toEqual({ chain: [], cycle: false });
  });
});

test.each([
  ['dom1/run#12', 'dom1/run'],
  ['host/controller#1', 'host/controller'],
  ['dom0/mutex bd_mutex', 'dom0/mutex bd_mutex'],
  ['blkback vbd-1-51712', 'blkback vbd-1-51712'],
  ['dom0/tapdisk[201]#3', 'dom0/tapdisk[201]'],
])('labelWithoutIds(%s) = %s', (label, expected) => {
  expect(labelWithoutIds(label)).toBe(expected);
});

test('chainVerdict drops ids and deadlines', () => {
  expect(
    chainVerdict({
      chain: [{ holder: 'dom1/a#4', waitsFor: 'w', deadline: 9, heldBy: 'dom2/b#1' }],
      cycle: false,
    }),
  ).toEqual({ links: [{ holder: 'dom1/a', waitsFor: 'w' }], cycle: false });
});
