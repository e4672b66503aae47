/**
 * xenstore over the real ring on the threads engine: a guest worker's xenbus client talks to xenstored
 * in the dom0 worker through the shared interface page and the hypervisor's event channels.
 * Figures: READ and WRITE round trips per second (one request in flight), and watch round trips per
 * second (dom0 writes a node the guest watches; the round trip ends when dom0 hears the guest saw it).
 */
import type { Engine, EngineKind } from '../emulator/runtime/engine.js';
import { createSimEngine } from '../emulator/runtime/sim.js';
import { createThreadsEngine } from '../emulator/runtime/threads.js';
import { type Hypercalls, Hypervisor } from '../hypervisor/index.js';
import { GNTTAB_RESERVED_XENSTORE, GTF_permit_access } from '../hypervisor/layout.js';
import type { BenchCase } from './harness.js';
import { HV_SHARED_PREFIX, type Rate, type StoreGuestConfig } from './xenstore-domains.js';

export const XENSTORE_READ = 'xenstore READ round trip, guest ring (threads)';
export const XENSTORE_WRITE = 'xenstore WRITE round trip, guest ring (threads)';
export const XENSTORE_WATCH = 'xenstore watch fire: dom0 write to guest event (threads)';

const DOMAINS_MODULE = new URL(
  import.meta.url.endsWith('.ts') ? './xenstore-domains.ts' : './xenstore-domains.js',
  import.meta.url,
).href;

export interface XenstoreHost {
  engine: Engine;
  hv: Hypervisor;
  guest: StoreGuestConfig;
}

/**
 * xc_dom_gnttab_seed: the domain builder writes the guest's reserved xenstore grant entry itself,
 * granting dom0 the ring page. v1 entry: flags u16, domid u16, frame u32.
 */
function seedStoreGrant(guest: Hypercalls, frame: number): void {
  const st = guest.setupTable(1);
  if (st.status !== 0 || !st.frameList?.length) throw new Error(`gnttab setup failed (${st.status})`);
  const page = guest.page(st.frameList[0]);
  const u16 = new Uint16Array(page.buffer, page.byteOffset, 2048);
  const u32 = new Uint32Array(page.buffer, page.byteOffset, 1024);
  const ref = GNTTAB_RESERVED_XENSTORE;
  u16[ref * 4 + 1] = 0;
  u32[ref * 2 + 1] = frame;
  Atomics.store(u16, ref * 4, GTF_permit_access);
}

/** A host with dom0 and one guest built as the toolstack would (store page, grant, event channels). */
export async function startXenstoreHost(kind: EngineKind): Promise<XenstoreHost> {
  const hv = Hypervisor.create({ frames: 1024, maxDomains: 4 });
  const d0 = hv.hypercalls(0);
  const domid = d0.createDomain({});
  if (domid < 0) throw new Error(`createDomain failed (${domid})`);
  const ghc = hv.hypercalls(domid);
  const [storeMfn] = ghc.allocPages(1);
  seedStoreGrant(ghc, storeMfn);
  const storeEvtchn = d0.evtchnAllocUnbound(0, domid);
  const ackEvtchn = d0.evtchnAllocUnbound(0, domid);
  if (storeEvtchn <= 0 || ackEvtchn <= 0)
    throw new Error(`evtchn alloc failed (${storeEvtchn}, ${ackEvtchn})`);
  const rc = d0.unpauseDomain(domid);
  if (rc !== 0) throw new Error(`unpause failed (${rc})`);
  const guest: StoreGuestConfig = { domid, storeMfn, storeEvtchn, ackEvtchn };
  // The trace is not looked at: nothing is built or posted.
  const engine =
    kind === 'threads'
      ? createThreadsEngine({ timeScale: 1, traceKeep: 'none' })
      : createSimEngine({ seed: 1, traceKeep: 'none' });
  try {
    for (const [name, buf] of Object.entries(hv.buffers)) engine.addShared(HV_SHARED_PREFIX + name, buf);
    await engine.addDomain({
      domid: 0,
      name: 'dom0',
      module: DOMAINS_MODULE,
      exportName: 'bootDom0',
      config: { guests: [guest] },
    });
    await engine.addDomain({
      domid,
      name: `guest${domid}`,
      module: DOMAINS_MODULE,
      exportName: 'bootGuest',
      config: guest,
    });
  } catch (e) {
    await engine.close();
    throw e;
  }
  return { engine, hv, guest };
}

type Figure = 'read' | 'write' | 'watch';

/** One figure on a fresh threads host: operations per second over about `ms` real milliseconds. */
export async function measureXenstore(figure: Figure, ms = 500): Promise<number> {
  const host = await startXenstoreHost('threads');
  try {
    const d = host.guest.domid;
    const r = await host.engine.run(async (ctl) => {
      if (figure === 'read') return (await ctl.call(d, 'reads', ms)) as Rate;
      if (figure === 'write') return (await ctl.call(d, 'writes', ms)) as Rate;
      await ctl.call(d, 'armWatch');
      return (await ctl.call(0, 'watchRoundTrips', d, ms)) as Rate;
    });
    if (r.outcome !== 'completed' || !r.value) {
      throw new Error(`xenstore bench (${figure}) ended ${r.outcome}: ${r.error?.message ?? ''}`);
    }
    return (r.value.ops * 1000) / r.value.elapsedMs;
  } finally {
    await host.engine.close();
  }
}

export function xenstoreCases(baseline: string): BenchCase[] {
  return [
    { name: XENSTORE_READ, unit: 'ops/s', baseline, run: () => measureXenstore('read') },
    { name: XENSTORE_WRITE, unit: 'ops/s', baseline, run: () => measureXenstore('write') },
    { name: XENSTORE_WATCH, unit: 'ops/s', baseline, run: () => measureXenstore('watch') },
  ];
}
