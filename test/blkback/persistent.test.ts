import { describe, expect, it } from 'vitest';
import { PersistentGrants } from '../../drivers/blkback/persistent-grants.js';
import { hostValue } from './harness.js';

const full = { first: 0, last: 7 };

describe('persistent grants', () => {
  it('negotiated with the frontend: grants stay mapped across requests, bounded by the per-ring cap', async () => {
    const r = await hostValue(
      async (ctl) => {
        await ctl.call(0, 'start');
        await ctl.call(0, 'addVbd', 1, 51712);
        await ctl.call(0, 'hotplug', 1, 51712, 0);
        await ctl.call(1, 'connect', { persistent: true });
        const io = await ctl.call(1, 'io', [
          { op: 1, sector: 0, segs: [full, full], fill: 7 },
          { op: 0, sector: 0, segs: [full, full] },
        ]);
        return { io, snap: await ctl.call(0, 'snapshot'), inUse: await ctl.call(1, 'grantsInUse') };
      },
      { dom0: { maxPersistentGrants: 3 } },
    );
    const io = r.value!.io as { responses: Array<{ status: number }>; data: Record<string, string[]> };
    expect(io.responses.map((x) => x.status)).toEqual([0, 0]);
    expect(io.data['2']).toEqual([
      Buffer.alloc(4096, 7).toString('base64'),
      Buffer.alloc(4096, 7).toString('base64'),
    ]);
    const snap = r.value!.snap as Array<{ rings: Array<{ persistentGrants: number }> }>;
    expect(snap[0]!.rings[0]!.persistentGrants).toBe(3);
    // The three kept grants are still mapped by dom0; the fourth was unmapped after its request.
    expect(r.value!.inUse).toBe(3);
    expect(r.dmesg[0]!.join('\n')).toContain('is using maximum number of persistent grants');
  });

  it('cache: busy grants are not reused; purge drops 5 % LRU when overflowing and idle ones after 60 s', () => {
    const c = new PersistentGrants(100);
    const page = new Uint8Array(4096);
    for (let i = 0; i < 100; i++) {
      const g = c.add(i, i, page, i);
      expect(g).toBeDefined();
      // Added by the request that mapped it: active until that request releases it.
      expect(c.lookup(i, i)).toEqual({ kind: 'busy' });
      c.release(g!, i);
    }
    expect(c.add(100, 100, page, 100)).toBeUndefined();
    expect(c.overflow).toBe(true);
    expect(c.lookup(5, 200)).toMatchObject({ kind: 'hit' });
    expect(c.lookup(5, 201)).toEqual({ kind: 'busy' });
    const purged = c.purge(300);
    expect(purged.map((g) => g.gref)).toEqual([0, 1, 2, 3, 4]);
    expect(c.count).toBe(95);
    const idle = c.purge(300 + 60_000);
    expect(idle.map((g) => g.gref)).not.toContain(5);
    expect(c.count).toBe(1);
    expect(() => c.drain()).toThrow(/still in use/);
  });
});
