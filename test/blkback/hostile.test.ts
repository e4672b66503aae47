import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runHost } from './harness.js';

interface Batch {
  slots: number[][];
  overflow: boolean;
  rewrite: boolean;
}

// One slot's bytes (x86_64 layout): biased operation, nr_segments, grefs from `refs`, any sector bits.
const slotArb = (refs: number[]) =>
  fc
    .record({
      op: fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 5, 6), fc.integer({ min: 0, max: 255 })),
      nseg: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 255 })),
      inner: fc.constantFrom(0, 1, 2, 9),
      sector: fc.oneof(fc.integer({ min: 0, max: 2100 }), fc.constant(-1)),
      segs: fc.array(
        fc.record({
          ref: fc.oneof(fc.constantFrom(...refs), fc.constantFrom(0, 1, 4000, 0xffffffff)),
          first: fc.integer({ min: 0, max: 9 }),
          last: fc.integer({ min: 0, max: 9 }),
        }),
        { maxLength: 11 },
      ),
      id: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    })
    .map((s) => {
      const b = new Uint8Array(112);
      const v = new DataView(b.buffer);
      b[0] = s.op;
      b[1] = s.op === 6 ? s.inner : s.nseg;
      if (s.op === 6) v.setUint16(2, s.nseg, true);
      v.setBigUint64(8, s.id, true);
      v.setBigUint64(16, s.sector < 0 ? (1n << 64n) - 1n : BigInt(s.sector), true);
      if (s.op === 6) {
        v.setUint32(28, s.segs[0]?.ref ?? refs[0]!, true);
      } else {
        s.segs.forEach((g, i) => {
          v.setUint32(24 + i * 8, g.ref, true);
          b[28 + i * 8] = g.first;
          b[29 + i * 8] = g.last;
        });
      }
      return Array.from(b);
    });

describe('blkback against a hostile frontend (fast-check)', () => {
  it('never throws, never touches ungranted or read-only frames, answers at most what it consumed, and stops at a producer overflow', async () => {
    // Refs the frontend grants, in order, after the ring page (ref 8): 9..12 data pages, 13 indirect page.
    const refs = [9, 10, 11, 12, 13];
    const batchArb = fc.record({
      slots: fc.array(slotArb(refs), { minLength: 1, maxLength: 6 }),
      overflow: fc.boolean(),
      rewrite: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(batchArb, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 1000 }),
        async (batches: Batch[], seed) => {
          const r = await runHost(
            async (ctl) => {
              await ctl.call(0, 'start');
              await ctl.call(0, 'addVbd', 1, 51712);
              await ctl.call(0, 'hotplug', 1, 51712, 0);
              await ctl.call(1, 'connect', {});
              const rw1 = (await ctl.call(1, 'grant', 0x11)) as { ref: number; mfn: number };
              const rw2 = (await ctl.call(1, 'grant', 0x22)) as { ref: number; mfn: number };
              const ro1 = (await ctl.call(1, 'grant', 0x33, true)) as { ref: number; mfn: number };
              const ro2 = (await ctl.call(1, 'grant', 0x44, true)) as { ref: number; mfn: number };
              const ind = (await ctl.call(1, 'grant', 0x01)) as { ref: number; mfn: number };
              if ([rw1, rw2, ro1, ro2, ind].map((g) => g.ref).join() !== refs.join())
                throw new Error('unexpected refs');
              const ro1Before = await ctl.call(1, 'pageBytes', ro1.mfn);
              const ro2Before = await ctl.call(1, 'pageBytes', ro2.mfn);
              await ctl.call(1, 'makeCanaries', 3);
              const consumedAfter: number[] = [];
              const halted: boolean[] = [];
              for (const b of batches) {
                const idx = (await ctl.call(1, 'ringIndices')) as { reqProd: number; size: number };
                const opts = b.overflow ? { reqProd: idx.reqProd + b.slots.length + 33 } : {};
                await ctl.call(
                  1,
                  'raw',
                  b.slots,
                  b.rewrite ? { ...opts, rewrite: b.slots.map((s) => s.map((x) => x ^ 0xff)) } : opts,
                );
                await ctl.call(1, 'settle', 50);
                const snap = (await ctl.call(0, 'snapshot')) as Array<{
                  rings: Array<{ consumed: number; answered: number; halted: boolean }>;
                }>;
                consumedAfter.push(snap[0]!.rings[0]!.consumed);
                halted.push(snap[0]!.rings[0]!.halted);
              }
              const ring = (
                (await ctl.call(0, 'snapshot')) as Array<{
                  rings: Array<{ consumed: number; answered: number }>;
                }>
              )[0]!.rings[0]!;
              return {
                ring,
                consumedAfter,
                halted,
                responses: ((await ctl.call(1, 'responses')) as unknown[]).length,
                canaries: await ctl.call(1, 'canariesIntact'),
                ro:
                  (await ctl.call(1, 'pageBytes', ro1.mfn)) === ro1Before &&
                  (await ctl.call(1, 'pageBytes', ro2.mfn)) === ro2Before,
              };
            },
            { seed },
          );
          expect(r.outcome, `${r.error?.stack}\n${(r.dmesg[0] ?? []).slice(-5).join('\n')}`).toBe(
            'completed',
          );
          const v = r.value!;
          expect(v.canaries).toBe(true);
          expect(v.ro).toBe(true);
          // Exactly one response per consumed request (B6 rule 8), never more.
          expect(v.ring.answered).toBe(v.ring.consumed);
          expect(v.responses).toBeLessThanOrEqual(v.ring.consumed);
          const firstHalt = v.halted.indexOf(true);
          if (firstHalt >= 0) {
            for (let i = firstHalt; i < v.consumedAfter.length; i++)
              expect(v.consumedAfter[i]).toBe(v.consumedAfter[firstHalt]);
            expect(batches[firstHalt]!.overflow).toBe(true);
          }
          if (batches.some((b) => b.overflow)) expect(firstHalt).toBeGreaterThanOrEqual(0);
        },
      ),
      { numRuns: 25, seed: 42 },
    );
  }, 120_000);
});
