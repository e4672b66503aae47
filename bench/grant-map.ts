/**
 * (c) Grant map + unmap pairs per second: a domain maps a page another domain granted it and unmaps
 * it again, through the hypervisor's grant table (active entry pin counts, maptrack handles, the GTF
 * flags in shared memory), in a worker of the threads engine. The granter is a second worker.
 *
 * This file is also the domain program the two workers run (`boot`).
 */
import { GrantTable } from '../drivers/grant-table.js';
import type { DomainContext, DomainProgram } from '../emulator/runtime/engine.js';
import { createThreadsEngine } from '../emulator/runtime/threads.js';
import { Hypervisor } from '../hypervisor/hypervisor.js';
import { GNTST_okay } from '../hypervisor/layout.js';
import type { HypervisorBuffers } from '../hypervisor/shared-state.js';
import type { BenchCase } from './harness.js';

export const GRANT_MAP_UNMAP = 'grant map + unmap pairs (threads)';
const HV = 'hv.';

export function boot(ctx: DomainContext): DomainProgram {
  const buffers: Record<string, SharedArrayBuffer> = {};
  for (const [k, v] of Object.entries(ctx.shared)) if (k.startsWith(HV)) buffers[k.slice(HV.length)] = v;
  const hv = Hypervisor.attach(buffers as HypervisorBuffers, ctx.kicker);
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
  const hv = Hypervisor.create({ frames: 256, maxDomains: 3 });
  const d0 = hv.hypercalls(0);
  const a = d0.createDomain();
  const b = d0.createDomain();
  d0.unpauseDomain(a);
  d0.unpauseDomain(b);
  const engine = createThreadsEngine({ timeScale: 1, watchdogMs: 10_000 });
  try {
    for (const [k, v] of Object.entries(hv.buffers)) engine.addShared(HV + k, v);
    await engine.addDomain({ domid: a, name: 'granter', module: import.meta.url });
    await engine.addDomain({ domid: b, name: 'mapper', module: import.meta.url });
    const r = await engine.run(async (ctl) => {
      const ref = (await ctl.call(a, 'grant', b)) as number;
      return (await ctl.call(b, 'mapUnmap', a, ref, n)) as number;
    });
    if (r.outcome !== 'completed') throw new Error(`grant bench: ${r.outcome} ${r.error?.message ?? ''}`);
    return (n * 1000) / (r.value as number);
  } finally {
    await engine.close();
  }
}

export function grantMapCases(baseline: string): BenchCase[] {
  return [{ name: GRANT_MAP_UNMAP, unit: 'ops/s', baseline, run: () => measureGrantMapUnmap(200_000) }];
}
