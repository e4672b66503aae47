import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../../hypervisor/layout.js';
import { MachineMemory } from '../../hypervisor/memory.js';
import { SharedState } from '../../hypervisor/shared-state.js';

const make = (frames: number) => {
  const s = SharedState.allocate({ frames, maxDomains: 2, maxGrantFrames: 4, maxMaptrackFrames: 4 });
  return { s, mem: new MachineMemory(s) };
};

const isZero = (s: SharedState, mfn: number) =>
  s.memory.subarray(mfn * PAGE_SIZE, (mfn + 1) * PAGE_SIZE).every((b) => b === 0);

describe('machine memory: scrubbing', () => {
  it('hands out zeroed frames; a frame used before is scrubbed, a pristine one is not touched', () => {
    const { s, mem } = make(8);
    const [a, b] = mem.allocXen(2);
    expect([a, b]).toEqual([0, 1]);
    expect(mem.isPristine(a)).toBe(false);
    expect(mem.isPristine(2)).toBe(true);
    s.memory.fill(0xaa, a * PAGE_SIZE, (a + 1) * PAGE_SIZE);
    mem.release(a, -1);
    // The free stack is last-in first-out: the dirty frame comes straight back, scrubbed.
    const [again] = mem.allocXen(1);
    expect(again).toBe(a);
    expect(isZero(s, a)).toBe(true);
  });

  it('a frame freed through its last foreign reference is scrubbed when handed out again', () => {
    const { s, mem } = make(4);
    const [f] = mem.allocXen(1);
    s.memory[f * PAGE_SIZE + 17] = 1;
    mem.getRef(f);
    mem.release(f, -1);
    expect(mem.isPendingFree(f)).toBe(true);
    mem.putRef(f, -1);
    expect(mem.isPendingFree(f)).toBe(false);
    expect(mem.isPristine(f)).toBe(false);
    expect(mem.allocXen(1)).toEqual([f]);
    expect(isZero(s, f)).toBe(true);
  });

  it('every allocation is zeroed, whatever was written and freed before (property)', () => {
    const FRAMES = 16;
    const op = fc.oneof(
      fc.record({ kind: fc.constant('alloc' as const), n: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }),
      fc.record({
        kind: fc.constant('scribble' as const),
        pick: fc.nat(),
        byte: fc.integer({ min: 1, max: 255 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const { s, mem } = make(FRAMES);
        const held: number[] = [];
        const everHeld = new Set<number>();
        for (const o of ops) {
          if (o.kind === 'alloc') {
            const got = mem.alloc(0x7ff2, -1, o.n);
            if (got === null) continue;
            for (const mfn of got) {
              expect(isZero(s, mfn)).toBe(true);
              held.push(mfn);
              everHeld.add(mfn);
            }
          } else if (held.length > 0) {
            const i = o.pick % held.length;
            if (o.kind === 'free') mem.release(held.splice(i, 1)[0], -1);
            else s.memory.fill(o.byte, held[i] * PAGE_SIZE + (o.pick % 100), held[i] * PAGE_SIZE + 200);
          }
        }
        for (let mfn = 0; mfn < FRAMES; mfn++) expect(mem.isPristine(mfn)).toBe(!everHeld.has(mfn));
      }),
    );
  });
});
