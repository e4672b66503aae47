import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GuestMemory, type MemoryHypercalls } from '../../drivers/busdma/guest-memory.js';
import { guestValue } from './sim.js';

/** The hypercalls with a count of page() views asked for (each zeroing or poisoning takes one). */
function counting(hc: MemoryHypercalls): { hc: MemoryHypercalls; pages: () => number } {
  let n = 0;
  return {
    hc: {
      allocPages: (k) => hc.allocPages(k),
      freePage: (f) => hc.freePage(f),
      page: (f) => {
        n++;
        return hc.page(f);
      },
    },
    pages: () => n,
  };
}

function allZero(mem: GuestMemory, frames: readonly number[]): boolean {
  return frames.every((f) => mem.page(f).every((b) => b === 0));
}

describe('guest page allocator: zeroed frames', () => {
  it('frames fresh from Xen are handed out zero without being zeroed again; freed ones are zeroed', async () => {
    const { value } = await guestValue(async (g) => {
      const c = counting(g.hc);
      const mem = new GuestMemory(c.hc);
      const fresh = mem.allocRun(3);
      const freshViews = c.pages();
      const freshZero = allZero(mem, fresh);
      mem.page(fresh[1]!).fill(0x5a);
      mem.freeRun(fresh);
      const before = c.pages();
      const again = mem.allocRun(3);
      return {
        freshViews,
        freshZero,
        same: again[1] === fresh[1],
        zeroViews: c.pages() - before,
        againZero: allZero(mem, again),
      };
    });
    expect(value).toEqual({ freshViews: 0, freshZero: true, same: true, zeroViews: 1, againZero: true });
  });

  it('a run mixing fresh and reused frames comes back all zero', async () => {
    const { value } = await guestValue(async (g) => {
      const mem = new GuestMemory(g.hc);
      const [a] = mem.allocRun(1);
      mem.page(a!).fill(0xff);
      mem.freeRun([a!]);
      // The lowest run of 4 starts at the reused frame, the rest never handed out.
      const run = mem.allocRun(4);
      return { startsAtReused: run[0] === a, zero: allZero(mem, run) };
    });
    expect(value).toEqual({ startsAtReused: true, zero: true });
  });

  it('zero: false leaves a reused frame as it was and a fresh one zero', async () => {
    const { value } = await guestValue(async (g) => {
      const mem = new GuestMemory(g.hc);
      const [a] = mem.allocRun(1);
      mem.page(a!).fill(7);
      mem.freeRun([a!]);
      const [b, c] = mem.allocRun(2, { zero: false });
      return { reused: b === a, old: mem.page(b!)[9], fresh: mem.page(c!)[9] };
    });
    expect(value).toEqual({ reused: true, old: 7, fresh: 0 });
  });

  // Any sequence of allocations, writes and frees: a zeroing allocation always hands out zeros; with
  // poisoning, only frames written while free are reported, and each once.
  const op = fc.oneof(
    fc.record({ kind: fc.constant('alloc' as const), n: fc.integer({ min: 1, max: 5 }), zero: fc.boolean() }),
    fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }),
    fc.record({
      kind: fc.constant('scribble' as const),
      pick: fc.nat(),
      byte: fc.integer({ min: 1, max: 255 }),
    }),
    fc.record({ kind: fc.constant('free-write' as const), pick: fc.nat() }),
  );
  it.each([false, true])('property: zeroing allocations hand out zeros (poisoning %s)', async (poison) => {
    await guestValue(async (g) => {
      // One allocator for every run (a fresh one per run would exhaust the host's frames); what is
      // learnt about frames (freed, written while free, reported) carries over from run to run.
      const reports: number[] = [];
      const mem = new GuestMemory(g.hc, poison ? { onPoisonCorruption: (c) => reports.push(c.mfn) } : {});
      const freed = new Set<number>();
      const written = new Set<number>();
      /** Written while free and not handed out since: the next hand-out must report it. */
      const pending = new Set<number>();
      fc.assert(
        fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
          const held: number[][] = [];
          for (const o of ops) {
            if (o.kind === 'alloc') {
              const before = reports.length;
              const run = mem.allocRun(o.n, { zero: o.zero });
              for (const f of run) freed.delete(f);
              const now = reports.slice(before);
              for (const f of run) {
                if (!pending.delete(f)) continue;
                if (poison && !now.includes(f)) return false;
              }
              if (o.zero && !allZero(mem, run)) return false;
              held.push(run);
            } else if (o.kind === 'free' && held.length > 0) {
              const run = held.splice(o.pick % held.length, 1)[0]!;
              mem.freeRun(run);
              for (const f of run) freed.add(f);
            } else if (o.kind === 'scribble' && held.length > 0) {
              const run = held[o.pick % held.length]!;
              mem.page(run[0]!).fill(o.byte, 0, 64);
            } else if (o.kind === 'free-write' && freed.size > 0) {
              // A writer that kept a mapping of a frame this allocator has since freed.
              const f = [...freed][o.pick % freed.size]!;
              mem.page(f)[123] = 0x42;
              written.add(f);
              pending.add(f);
            }
          }
          for (const run of held) {
            mem.freeRun(run);
            for (const f of run) freed.add(f);
          }
          // Reports (at hand-out) only ever name frames written while free.
          return reports.every((f) => written.has(f));
        }),
        { numRuns: 80 },
      );
      if (!poison) expect(reports).toEqual([]);
    });
  });
});
