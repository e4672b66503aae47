// C11 (teardown.md §4, XSA-396 abf1fd5919d6) at the busdma layer: how unload revokes a grant the
// backend still maps, before the fix ('query-then-end') and after it ('try-end'), and the guest page
// allocator's page poisoning that makes a write into a freed frame visible.
import { describe, expect, it } from 'vitest';
import { BusDmaError } from '../../drivers/busdma/constants.js';
import { GuestMemory, PAGE_POISON, type PoisonCorruption } from '../../drivers/busdma/guest-memory.js';
import { DmaTag, type GrantRevokeMode } from '../../drivers/busdma/tag.js';
import { GTF_permit_access } from '../../hypervisor/index.js';
import { type GuestSide, guestValue } from './sim.js';

function tagOf(g: GuestSide, revoke: GrantRevokeMode, memory = g.memory): DmaTag {
  return DmaTag.create(g.env, g.gnttab, memory, { name: 'test io', domid: 0, maxSegments: 11, revoke });
}

describe('busdma unload: grant revocation before and after XSA-396', () => {
  const cases: Array<{
    revoke: GrantRevokeMode;
    surrendered: boolean;
    deferred: number;
    liveFlags: boolean;
    reused: boolean;
  }> = [
    // The fix: the mapped grant (still valid: Xen will not let it be revoked while mapped) is deferred
    // with its frame, which never returns to the allocator.
    { revoke: 'try-end', surrendered: true, deferred: 1, liveFlags: true, reused: false },
    // Before it: the query saw the mapping and left the grant alone; the frame goes back for reuse
    // with the backend still able to write it.
    { revoke: 'query-then-end', surrendered: false, deferred: 0, liveFlags: true, reused: true },
  ];
  it.each(cases)(
    '$revoke: frame surrendered=$surrendered, deferred=$deferred, grant live=$liveFlags, frame reused=$reused',
    async ({ revoke, surrendered, deferred, liveFlags, reused }) => {
      const { value } = await guestValue(async (g) => {
        const map = tagOf(g, revoke).createMap();
        const buf = g.memory.allocBuffer(2 * 4096);
        map.load(buf, 0, () => {});
        const [ref0, ref1] = map.grefs;
        const m = g.host.d0.mapGrant(g.domid, ref1!);
        const still = map.unload();
        const out = {
          still,
          surrendered: g.memory.isSurrendered(buf.frames[1]!),
          deferred: g.gnttab.deferredCount,
          ref0Flags: g.gnttab.entryFlags(ref0!),
          ref1Live: (g.gnttab.entryFlags(ref1!) & GTF_permit_access) !== 0,
          reused: false,
          backendSeesReuse: false,
        };
        g.memory.freeBuffer(buf);
        const again = g.memory.allocBuffer(2 * 4096);
        out.reused = again.frames.includes(buf.frames[1]!);
        if (out.reused) {
          // The backend writes through the mapping it kept: the guest's new buffer changes under it.
          g.memory.view(again).fill(0x11);
          (m.page as Uint8Array).fill(0x77, 0, 16);
          out.backendSeesReuse = g.memory.page(buf.frames[1]!)[0] === 0x77;
        }
        g.host.d0.unmapGrant(m.handle);
        return out;
      });
      expect(value.still).toBe(1);
      expect(value.ref0Flags).toBe(0); // the unmapped grant is revoked either way
      expect(value.surrendered).toBe(surrendered);
      expect(value.deferred).toBe(deferred);
      expect(value.ref1Live).toBe(liveFlags);
      expect(value.reused).toBe(reused);
      expect(value.backendSeesReuse).toBe(reused);
    },
  );

  it('query-then-end ends a grant that reads unmapped, and returns the ref to the free list', async () => {
    const { value } = await guestValue(async (g) => {
      const map = tagOf(g, 'query-then-end').createMap();
      const buf = g.memory.allocBuffer(4096);
      map.load(buf, 0, () => {});
      const [ref] = map.grefs;
      const free0 = g.gnttab.freeCount;
      const still = map.unload();
      return { still, flags: g.gnttab.entryFlags(ref!), gain: g.gnttab.freeCount - free0, state: map.state };
    });
    expect(value).toEqual({ still: 0, flags: 0, gain: 1, state: 'unloaded' });
  });

  it('rejects an unknown revoke mode, naming it', async () => {
    await guestValue(async (g) => {
      expect(() => tagOf(g, 'sometimes' as GrantRevokeMode)).toThrow(BusDmaError);
      expect(() => tagOf(g, 'sometimes' as GrantRevokeMode)).toThrow(/revoke "sometimes" must be/);
    });
  });
});

describe('guest page allocator: page poisoning (page_poison=1)', () => {
  it('fills freed frames with PAGE_POISON and reports the bytes written while free, once', async () => {
    const { value } = await guestValue(async (g) => {
      const found: PoisonCorruption[] = [];
      const mem = new GuestMemory(g.hc, { onPoisonCorruption: (c) => found.push(c) });
      const run = mem.allocRun(3);
      mem.freeRun(run);
      const poisoned = [...mem.page(run[1]!)].every((b) => b === PAGE_POISON);
      // A foreign writer touches the middle frame while it is free.
      mem.page(run[1]!).set([1, 2, 3], 100);
      mem.page(run[1]!)[4000] = 9;
      const again = mem.allocRun(3);
      const afterZero = mem.page(run[1]!)[100];
      mem.freeRun(again);
      const third = mem.allocRun(3); // clean this time
      return { poisoned, same: again[0] === run[0], found, afterZero, third: third.length };
    });
    expect(value.poisoned).toBe(true);
    expect(value.same).toBe(true);
    expect(value.found).toHaveLength(1);
    expect(value.found[0]).toMatchObject({ first: 100, last: 4000 });
    expect([...value.found[0]!.bytes.slice(0, 4)]).toEqual([1, 2, 3, PAGE_POISON]);
    expect(value.afterZero).toBe(0); // zeroed after the check, as asked
    expect(value.third).toBe(3);
  });

  it('without the option frees leave the bytes alone and nothing is checked', async () => {
    const { value } = await guestValue(async (g) => {
      const run = g.memory.allocRun(1);
      g.memory.page(run[0]!).fill(5);
      g.memory.freeRun(run);
      return { byte: g.memory.page(run[0]!)[0], poisoning: g.memory.pagePoisoning };
    });
    expect(value).toEqual({ byte: 5, poisoning: false });
  });

  it('a frame left alone while free is handed out without a report, also from a non-zeroing alloc', async () => {
    const { value } = await guestValue(async (g) => {
      const found: PoisonCorruption[] = [];
      const mem = new GuestMemory(g.hc, { onPoisonCorruption: (c) => found.push(c) });
      const run = mem.allocRun(2);
      mem.freeRun(run);
      const again = mem.allocRun(2, { zero: false });
      return { found: found.length, byte: mem.page(again[0]!)[17] };
    });
    expect(value).toEqual({ found: 0, byte: PAGE_POISON });
  });
});
