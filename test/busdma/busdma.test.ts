import { describe, expect, it } from 'vitest';
import {
  BUS_DMA_NOWAIT,
  BUS_DMA_XEN_RO,
  BusDmaError,
  EBUSY,
  ECANCELED,
  EFBIG,
  EINPROGRESS,
  EINVAL,
  ENOMEM,
} from '../../drivers/busdma/constants.js';
import type { DmaSegment } from '../../drivers/busdma/map.js';
import { GrantPool } from '../../drivers/busdma/pool.js';
import { DmaTag, type DmaTagOptions } from '../../drivers/busdma/tag.js';
import { GrantRefHead } from '../../drivers/grant-table.js';
import { GNTST_okay, GTF_permit_access, GTF_readonly } from '../../hypervisor/index.js';
import { type GuestSide, guestValue } from './sim.js';

function tagOf(g: GuestSide, over: Partial<DmaTagOptions> = {}): DmaTag {
  return DmaTag.create(g.env, g.gnttab, g.memory, { name: 'test io', domid: 0, maxSegments: 11, ...over });
}

/** Take every free ref but `leave`, so a load of more than `leave` segments runs short. */
function exhaust(g: GuestSide, leave: number): GrantRefHead {
  const head = new GrantRefHead();
  expect(g.gnttab.allocGrantReferences(g.gnttab.freeCount - leave, head)).toBe(0);
  return head;
}

function recorder() {
  const calls: Array<{ segs: readonly DmaSegment[]; error: number }> = [];
  return { calls, cb: (segs: readonly DmaSegment[], error: number) => calls.push({ segs, error }) };
}

describe('busdma tag create', () => {
  it.each([
    { over: { maxSegSize: 4097 }, field: 'maxSegSize 4097' },
    { over: { maxSegSize: 0 }, field: 'maxSegSize 0' },
    { over: { maxSegments: 0 }, field: 'maxSegments 0' },
    { over: { alignment: 3 }, field: 'alignment 3' },
    { over: { domid: 0x7ff0 }, field: 'domid 32752' },
  ])('rejects $field with EINVAL naming it', async ({ over, field }) => {
    const { value } = await guestValue(async (g) => {
      try {
        tagOf(g, over);
        return 'created';
      } catch (e) {
        return e instanceof BusDmaError ? `${e.errno} ${e.message}` : String(e);
      }
    });
    expect(value).toContain(`${EINVAL} `);
    expect(value).toContain(field);
  });

  it('takes the other end from the upper 16 bits of the flags', async () => {
    const { value } = await guestValue(async (g) => {
      const t = DmaTag.create(g.env, g.gnttab, g.memory, { name: 't', maxSegments: 1, flags: (5 << 16) | 2 });
      return { domid: t.domid, flags: t.flags };
    });
    expect(value).toEqual({ domid: 5, flags: 2 });
  });
});

describe('busdma map: load, unload, destroy', () => {
  it('walks created → loading → loaded → unloaded → loading → loaded → unloaded → destroyed', async () => {
    const { value, result } = await guestValue(async (g) => {
      const tag = tagOf(g, { alignment: 512 });
      const map = tag.createMap('m');
      const buf = g.memory.allocBuffer(3 * 4096 - 1024, 512); // 3 frames: 3584 + 4096 + 3584
      const r = recorder();
      const free0 = g.gnttab.freeCount;
      const rc1 = map.load(buf, 0, r.cb);
      const segs = r.calls[0].segs.map((s) => ({ off: s.offset, len: s.length, frame: s.mfn }));
      const flags = map.grefs.map((ref) => g.gnttab.entryFlags(ref));
      const mapped = g.host.d0.mapGrant(g.domid, map.grefs[1]);
      const mappedOk = mapped.status === GNTST_okay;
      g.host.d0.unmapGrant(mapped.handle);
      const still1 = map.unload();
      const freeAfter = g.gnttab.freeCount;
      const rc2 = map.load(buf, BUS_DMA_XEN_RO, r.cb);
      const roFlags = map.grefs.map((ref) => g.gnttab.entryFlags(ref));
      const rwMap = g.host.d0.mapGrant(g.domid, map.grefs[0]).status;
      map.unload();
      map.destroy();
      tag.destroy();
      return {
        rc1,
        rc2,
        segs,
        buf,
        flags,
        roFlags,
        mappedOk,
        rwMap,
        still1,
        free0,
        freeAfter,
        calls: r.calls.length,
        state: map.state,
      };
    });
    expect(value.rc1).toBe(0);
    expect(value.rc2).toBe(0);
    expect(value.calls).toBe(2);
    expect(value.segs).toEqual([
      { off: 512, len: 3584, frame: value.buf.frames[0] },
      { off: 0, len: 4096, frame: value.buf.frames[1] },
      { off: 0, len: 3584, frame: value.buf.frames[2] },
    ]);
    expect(value.flags).toEqual([GTF_permit_access, GTF_permit_access, GTF_permit_access]);
    expect(value.roFlags.every((f) => f === (GTF_permit_access | GTF_readonly))).toBe(true);
    expect(value.mappedOk).toBe(true);
    expect(value.rwMap).not.toBe(GNTST_okay); // read-only grant refuses a writable map
    expect(value.still1).toBe(0);
    expect(value.freeAfter).toBe(value.free0);
    expect(value.state).toBe('destroyed');
    const states = result.trace
      .filter((e) => e.comp === 'busdma' && e.kind === 'map-state')
      .map((e) => e.fields?.to);
    expect(states).toEqual(['loading', 'loaded', 'unloaded', 'loading', 'loaded', 'unloaded', 'destroyed']);
  });

  it.each([{ name: 'too many segments', maxSegments: 2, length: 3 * 4096, rc: EFBIG }])(
    'fails a load with $name, holding nothing',
    async ({ maxSegments, length, rc }) => {
      const { value } = await guestValue(async (g) => {
        const map = tagOf(g, { maxSegments }).createMap();
        const free0 = g.gnttab.freeCount;
        const r = recorder();
        const got = map.load(g.memory.allocBuffer(length), 0, r.cb);
        return { got, state: map.state, calls: r.calls.length, freeDelta: g.gnttab.freeCount - free0 };
      });
      expect(value).toEqual({ got: rc, state: 'created', calls: 0, freeDelta: 0 });
    },
  );

  it('refuses a second load, and destroy while loaded, with EBUSY', async () => {
    const { value } = await guestValue(async (g) => {
      const map = tagOf(g).createMap();
      const buf = g.memory.allocBuffer(4096);
      map.load(buf, 0, () => {});
      const errs: number[] = [];
      for (const f of [() => map.load(buf, 0, () => {}), () => map.destroy(), () => tagOf(g).destroy()]) {
        try {
          f();
        } catch (e) {
          errs.push((e as BusDmaError).errno);
        }
      }
      const tag = map.tag;
      try {
        tag.destroy();
      } catch (e) {
        errs.push((e as BusDmaError).errno);
      }
      return errs;
    });
    expect(value).toEqual([EBUSY, EBUSY, EBUSY]);
  });
});

describe('busdma map: grant shortage', () => {
  it('defers, then completes exactly once from a task after refs are freed (not in the freeing stack)', async () => {
    const { value, result } = await guestValue(async (g) => {
      const map = tagOf(g).createMap('short');
      const hog = exhaust(g, 1);
      const r = recorder();
      const rc = map.load(g.memory.allocBuffer(3 * 4096), 0, r.cb);
      const stateAfterLoad = map.state;
      g.gnttab.freeGrantReferences(hog); // fires the free callback in this stack
      const callsInFreeingStack = r.calls.length;
      await g.env.sleep(1);
      const free1 = g.gnttab.freeCount;
      await g.env.sleep(10);
      return {
        rc,
        stateAfterLoad,
        callsInFreeingStack,
        calls: r.calls.map((c) => ({ n: c.segs.length, error: c.error })),
        state: map.state,
        grefs: map.grefs.length,
        free1,
        free2: g.gnttab.freeCount,
      };
    });
    expect(value.rc).toBe(EINPROGRESS);
    expect(value.stateAfterLoad).toBe('deferred');
    expect(value.callsInFreeingStack).toBe(0);
    expect(value.calls).toEqual([{ n: 3, error: 0 }]);
    expect(value.state).toBe('loaded');
    expect(value.grefs).toBe(3);
    expect(value.free2).toBe(value.free1);
    const retry = result.trace.find((e) => e.comp === 'busdma' && e.task.includes('busdma-retry'));
    expect(retry).toBeDefined();
  });

  it('keeps waiting when another caller takes the refs before the retry runs', async () => {
    const { value } = await guestValue(async (g) => {
      const map = tagOf(g).createMap();
      const hog = exhaust(g, 0);
      const r = recorder();
      map.load(g.memory.allocBuffer(2 * 4096), 0, r.cb);
      g.gnttab.freeGrantReferences(hog);
      const thief = exhaust(g, 1); // steals them back before the retry task runs
      await g.env.sleep(1);
      const mid = { state: map.state, calls: r.calls.length };
      g.gnttab.freeGrantReferences(thief);
      await g.env.sleep(1);
      return { mid, state: map.state, calls: r.calls.length };
    });
    expect(value).toEqual({ mid: { state: 'deferred', calls: 0 }, state: 'loaded', calls: 1 });
  });

  it('fails at once with ENOMEM under BUS_DMA_NOWAIT, holding nothing', async () => {
    const { value } = await guestValue(async (g) => {
      const map = tagOf(g).createMap();
      exhaust(g, 1);
      const free0 = g.gnttab.freeCount;
      const r = recorder();
      const rc = map.load(g.memory.allocBuffer(2 * 4096), BUS_DMA_NOWAIT, r.cb);
      await g.env.sleep(1);
      return { rc, state: map.state, calls: r.calls.length, free: g.gnttab.freeCount - free0 };
    });
    expect(value).toEqual({ rc: ENOMEM, state: 'created', calls: 0, free: 0 });
  });

  it('unload while deferred cancels the callback, leaks no ref, and completes with ECANCELED once', async () => {
    const { value } = await guestValue(async (g) => {
      const map = tagOf(g).createMap();
      const hog = exhaust(g, 1);
      const r = recorder();
      map.load(g.memory.allocBuffer(2 * 4096), 0, r.cb);
      const held = g.gnttab.freeCount;
      map.unload();
      const stateAfter = map.state;
      g.gnttab.freeGrantReferences(hog);
      await g.env.sleep(5);
      const total = g.gnttab.freeCount;
      // Everything came back: one more full exhaust-and-free leaves the same count.
      return {
        held,
        stateAfter,
        total,
        calls: r.calls.map((c) => c.error),
        grefs: map.grefs.length,
        nrEntries: g.gnttab.nrEntries,
      };
    });
    expect(value.held).toBe(1);
    expect(value.stateAfter).toBe('unloaded');
    expect(value.calls).toEqual([ECANCELED]);
    expect(value.grefs).toBe(0);
    expect(value.total).toBe(value.nrEntries - 8);
  });
});

describe('busdma: reserved pool', () => {
  it('claims from the pool, returns refs there on unload, and wakes a deferred load when refs come back', async () => {
    const { value } = await guestValue(async (g) => {
      const pool = new GrantPool(g.gnttab, 4, 'xvda pool');
      const tag = tagOf(g, { pool });
      exhaust(g, 0); // the global list is empty: only the pool can serve
      const a = tag.createMap('a');
      const b = tag.createMap('b');
      const ra = recorder();
      const rb = recorder();
      const rcA = a.load(g.memory.allocBuffer(3 * 4096), 0, ra.cb);
      const afterA = pool.count;
      const rcB = b.load(g.memory.allocBuffer(2 * 4096), 0, rb.cb);
      const bState = b.state;
      a.unload(); // 3 refs back to the pool: b's retry is scheduled, not run here
      const bCallsInStack = rb.calls.length;
      await g.env.sleep(1);
      return {
        rcA,
        afterA,
        rcB,
        bState,
        bCallsInStack,
        bCalls: rb.calls.length,
        b: b.state,
        pool: pool.count,
      };
    });
    expect(value).toEqual({
      rcA: 0,
      afterA: 1,
      rcB: EINPROGRESS,
      bState: 'deferred',
      bCallsInStack: 0,
      bCalls: 1,
      b: 'loaded',
      pool: 2,
    });
  });
});

describe('busdma: revoking a grant the backend still maps (XSA-396)', () => {
  it('defers the revocation, keeps the frame out of reuse, and retries on the background timer until unmapped', async () => {
    const { value, result } = await guestValue(async (g) => {
      const map = tagOf(g).createMap();
      const buf = g.memory.allocBuffer(2 * 4096);
      map.load(buf, 0, () => {});
      const [ref0, ref1] = map.grefs;
      const m = g.host.d0.mapGrant(g.domid, ref1);
      const free0 = g.gnttab.freeCount;
      const still = map.unload();
      const deferred = g.gnttab.deferredCount;
      const surrendered = g.memory.isSurrendered(buf.frames[1]);
      g.memory.freeBuffer(buf); // frame 1 must not come back to the pool
      const reuse = g.memory.allocRun(1)[0];
      await g.env.sleep(3500);
      const stillDeferred = g.gnttab.deferredCount;
      g.host.d0.unmapGrant(m.handle);
      await g.env.sleep(1000);
      return {
        still,
        deferred,
        surrendered,
        reuseIsFrame1: reuse === buf.frames[1],
        stillDeferred,
        after: g.gnttab.deferredCount,
        freeGain: g.gnttab.freeCount - free0,
        frame1Owner: g.host.hv.internals.mem.ownerOf(buf.frames[1]),
        ref0Flags: g.gnttab.entryFlags(ref0),
      };
    });
    expect(value.still).toBe(1);
    expect(value.deferred).toBe(1);
    expect(value.surrendered).toBe(true);
    expect(value.reuseIsFrame1).toBe(false);
    expect(value.stillDeferred).toBe(1);
    expect(value.after).toBe(0);
    expect(value.freeGain).toBe(2); // ref0 at unload, ref1 once revoked
    expect(value.frame1Owner).not.toBe(1); // freed back to Xen after revocation
    expect(value.ref0Flags).toBe(0);
    const logs = result.dmesg[-1] ?? [];
    expect(logs.some((l) => l.includes('deferring g.e.'))).toBe(true);
  });
});
