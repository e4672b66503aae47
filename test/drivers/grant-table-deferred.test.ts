// The guest grant table's deferred revocation (XSA-396) with its timer task running in the sim engine.
import { describe, expect, it } from 'vitest';
import { DEFERRED_INTERVAL_MS, GrantTable } from '../../drivers/grant-table.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import { makeHost } from '../hypervisor/fixture.js';

async function sim<T>(body: (env: import('../../emulator/runtime/engine.js').Env) => Promise<T>) {
  const engine = createSimEngine({ seed: 2 });
  try {
    const r = await engine.run((ctl) => body(ctl.env));
    if (r.outcome !== 'completed') throw new Error(`${r.outcome}: ${r.error?.stack}`);
    return { value: r.value as T, r };
  } finally {
    await engine.close();
  }
}

describe('grant table: deferred revocation on the engine timer', () => {
  it('retries once a second and frees ref and page on the first pass after the backend unmaps', async () => {
    const { value, r } = await sim(async (env) => {
      const host = makeHost({ frames: 512 });
      const fe = host.guest();
      const gt = new GrantTable(fe.hc, { env });
      const [page] = fe.hc.allocPages(1);
      const ref = gt.grantForeignAccess(0, page, false);
      const m = host.d0.mapGrant(fe.domid, ref);
      const free0 = gt.freeCount;
      gt.endForeignAccess(ref, page);
      await env.sleep(2500);
      const mid = { deferred: gt.deferredCount, owner: host.hv.internals.mem.ownerOf(page) };
      host.d0.unmapGrant(m.handle);
      const unmappedAt = env.now();
      while (gt.deferredCount > 0) await env.sleep(100);
      return {
        mid,
        revokedAfter: env.now() - unmappedAt,
        free: gt.freeCount - free0,
        owner: host.hv.internals.mem.ownerOf(page),
        guest: fe.domid,
      };
    });
    expect(value.mid.deferred).toBe(1);
    expect(value.mid.owner).toBe(value.guest); // the page stays the guest's while mapped
    expect(value.revokedAfter).toBeLessThanOrEqual(DEFERRED_INTERVAL_MS);
    expect(value.free).toBe(1);
    expect(value.owner).not.toBe(value.guest);
    expect((r.dmesg[-1] ?? []).some((l) => l.includes('deferring g.e.'))).toBe(true);
  });

  it('warns "still pending" after 60 failed passes, and a pending timer does not keep the run alive', async () => {
    const { value, r } = await sim(async (env) => {
      const host = makeHost({ frames: 512 });
      const fe = host.guest();
      const gt = new GrantTable(fe.hc, { env });
      const [page] = fe.hc.allocPages(1);
      const ref = gt.grantForeignAccess(0, page, true);
      host.d0.mapGrant(fe.domid, ref, { readonly: true });
      gt.endForeignAccess(ref, page);
      await env.sleep(61 * DEFERRED_INTERVAL_MS);
      return gt.deferredCount;
    });
    expect(value).toBe(1);
    expect(r.outcome).toBe('completed');
    expect((r.dmesg[-1] ?? []).filter((l) => l.includes('still pending'))).toHaveLength(1);
  });
});
