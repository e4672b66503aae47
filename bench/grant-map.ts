/**
 * (c) Grant map + unmap pairs per second: a domain maps a page another domain granted it and unmaps
 * it again, through the hypervisor's grant table (active entry pin counts, maptrack handles, the GTF
 * flags in shared memory), in a worker of the threads engine. The granter is a second worker.
 *
 * This file is also the domain program the two workers run (`boot`).
 */
import { GrantTable } from '../drivers/grant-table.js';
import { hypervisorBuffers } from '../emulator/machine/shared-names.js';
import type { DomainContext, DomainProgram } from '../emulator/runtime/engine.js';
import { Hypervisor } from '../hypervisor/hypervisor.js';
import { GNTST_okay } from '../hypervisor/layout.js';
import type { BenchCase } from './harness.js';
import { onTwoDomains } from './two-domains.js';

export const GRANT_MAP_UNMAP = 'grant map + unmap pairs (threads)';

export function boot(ctx: DomainContext): DomainProgram {
  const hv = Hypervisor.attach(hypervisorBuffers(ctx.shared), ctx.kicker);
  const hc = hv.hypercalls(ctx.env.domid);
  return {
    async grant(peer: number): Promise<number> {
      const gt = new GrantTable(hc, { env: ctx.env });
      const [mfn] = hc.allocPages(1);
      return gt.grantForeignAccess(peer, mfn, false);
    },
    /** Map and unmap `n` times; returns real ms. */
    async mapUnmap(granter: number, ref: number, n: number): Promise<number> {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const m = hc.mapGrant(granter, ref);
        if (m.status !== GNTST_okay) throw new Error(`bench: map of ref ${ref} failed with ${m.status}`);
        const st = hc.unmapGrant(m.handle);
        if (st !== GNTST_okay) throw new Error(`bench: unmap of handle ${m.handle} failed with ${st}`);
      }
      return performance.now() - t0;
    },
  };
}

export async function measureGrantMapUnmap(n: number): Promise<number> {
  const ms = await onTwoDomains(
    { module: import.meta.url, names: ['granter', 'mapper'] },
    async (ctl, a, b) => {
      const ref = (await ctl.call(a, 'grant', b)) as number;
      return (await ctl.call(b, 'mapUnmap', a, ref, n)) as number;
    },
  );
  return (n * 1000) / ms;
}

export function grantMapCases(baseline: string): BenchCase[] {
  return [{ name: GRANT_MAP_UNMAP, unit: 'ops/s', baseline, run: () => measureGrantMapUnmap(200_000) }];
}
