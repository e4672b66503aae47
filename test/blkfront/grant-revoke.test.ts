// C11 (teardown.md §4, XSA-396 / CVE-2022-23036, Linux abf1fd5919d6) at blkfront's completion: a
// backend that answers a read but keeps the data page mapped. After the fix the still-mapped grant
// puts the device in the error state and the page stays out of reuse; before it blkfront only
// logged an alert, completed the read and let the page be reused, so the backend could still write
// guest memory — which the guest's page poisoning reports when the page is handed out again.
import { describe, expect, it } from 'vitest';
import type { BlkfrontGrantRevoke } from '../../drivers/blkfront/info.js';
import { connect, GUEST, hostValue } from './fixtures/host.js';

function run(grantRevoke: BlkfrontGrantRevoke) {
  return hostValue(
    async (ctl) => {
      await connect(ctl);
      const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
      const first = await ctl.call(GUEST, 'write', h, 0, 8192, 'seq');
      // Request 1: the backend answers the read and keeps its page mapped (writable).
      const kept = await ctl.call(GUEST, 'read', h, 0, 8192, 'seq');
      const state = await ctl.call(GUEST, 'state');
      // The backend writes through the mapping it kept, after the guest got its answer.
      const scribbled = await ctl.call(0, 'scribbleLeftMapped', 0x5a, 64);
      // The guest allocates again (the next I/O buffer).
      const next = await ctl.call(GUEST, 'write', h, 16384, 8192, 'seq');
      await ctl.call(0, 'releaseLeftMapped');
      await ctl.call(GUEST, 'settle', 2000);
      return { first, kept, state, scribbled, next, grants: await ctl.call(GUEST, 'grants') };
    },
    {
      backend: { hostile: { mode: 'keep-mapped', at: 1 }, persistent: false },
      blkfront: { featurePersistent: false, grantRevoke },
    },
  );
}

describe('C11: a backend keeps a read page mapped past its response', () => {
  it('try-end (XSA-396): "backed has not unmapped grant", device error, page kept out of reuse', async () => {
    const { value, result } = await run('try-end');
    expect(value.first).toMatchObject({ error: undefined });
    expect(value.kept).toMatchObject({ error: 'EIO' });
    expect(value.state).toMatchObject({ connected: 'error' });
    expect(value.scribbled).toBe(2); // both pages of the 8 KiB read
    expect(value.next).toMatchObject({ error: 'EIO' });
    const dmesg = result.dmesg[GUEST] ?? [];
    expect(dmesg.some((l) => l.includes('backed has not unmapped grant:'))).toBe(true);
    expect(dmesg.some((l) => l.includes('xvda disabled for further use'))).toBe(true);
    expect(dmesg.some((l) => l.includes('pagealloc: memory corruption'))).toBe(false);
    expect(result.trace.some((e) => e.kind === 'oops')).toBe(false);
    // Revoked after the backend let go; the page went back to Xen with it.
    expect(value.grants).toMatchObject({ deferred: 0 });
  });

  it('query-then-end (before it): the read completes, the page is reused, the backend write is found', async () => {
    const { value, result } = await run('query-then-end');
    expect(value.first).toMatchObject({ error: undefined });
    expect(value.kept).toMatchObject({ error: undefined, mismatchAt: -1 });
    expect(value.state).toMatchObject({ connected: 'connected' });
    expect(value.scribbled).toBe(2); // both pages of the 8 KiB read
    expect(value.next).toMatchObject({ error: undefined });
    expect(value.grants).toMatchObject({ surrendered: 0 });
    const dmesg = result.dmesg[GUEST] ?? [];
    expect(dmesg.some((l) => l.includes('backed has not unmapped grant:'))).toBe(true);
    expect(dmesg.some((l) => l.includes('disabled for further use'))).toBe(false);
    const at = dmesg.findIndex((l) => l.includes('pagealloc: memory corruption'));
    expect(at).toBeGreaterThanOrEqual(0);
    expect(dmesg[at + 1]).toMatch(/frame 0x[0-9a-f]+ bytes 0x0-0x3f: (5a ){15}5a$/);
    const oops = result.trace.filter((e) => e.kind === 'oops');
    expect(oops).toHaveLength(2);
    expect(oops[0]).toMatchObject({
      dom: GUEST,
      fields: { bug: 'pagealloc: memory corruption', first: 0, last: 63 },
    });
  });

  it('query-then-end rate-limits the alert like pr_alert_ratelimited (10 per 5 s)', async () => {
    const { result } = await hostValue(
      async (ctl) => {
        await connect(ctl);
        const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
        for (let i = 0; i < 14; i++) await ctl.call(GUEST, 'read', h, i * 4096, 4096);
      },
      {
        backend: { hostile: { mode: 'keep-mapped', at: -1 }, persistent: false },
        blkfront: { featurePersistent: false, grantRevoke: 'query-then-end' },
      },
    );
    const alerts = (result.dmesg[GUEST] ?? []).filter((l) => l.includes('backed has not unmapped grant:'));
    expect(alerts).toHaveLength(10);
  });
});
