import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { GTF_permit_access, Hypervisor } from '../../hypervisor/index.js';
import { makeHost, RawGrants } from './fixture.js';

describe('attach', () => {
  it('a second instance over the same buffers sees and changes the same state', () => {
    const host = makeHost();
    const fe = host.guest();
    const other = Hypervisor.attach(host.hv.buffers);
    expect(other.domains()).toEqual(host.hv.domains());
    const raw = new RawGrants(fe.hc);
    const [page] = fe.hc.allocPages(1);
    raw.grant(8, 0, page);
    const m = other.hypercalls(0).mapGrant(fe.domid, 8);
    expect(host.hv.domainInfo(fe.domid)?.pinnedGrants).toBe(1);
    (m.page as Uint8Array)[7] = 99;
    expect(fe.hc.page(page)[7]).toBe(99);
    // A domain created through one instance is usable through the other.
    const id = other.hypercalls(0).createDomain({});
    expect(host.hv.domainInfo(id)?.state).toBe('paused');
    expect(() => Hypervisor.attach({ ...host.hv.buffers, control: new SharedArrayBuffer(64) })).toThrow(
      /magic/,
    );
  });

  it('a worker thread maps a grant, writes through it and sends an event', async () => {
    const host = makeHost();
    const fe = host.guest();
    const raw = new RawGrants(fe.hc);
    const [page] = fe.hc.allocPages(1);
    fe.hc.page(page)[0] = 0x77;
    raw.grant(8, 0, page);
    const fport = fe.hc.evtchnAllocUnbound(0);
    const bport = host.d0.evtchnBindInterdomain(fe.domid, fport);
    // Consume the bind-time pending bit so the worker's send is what we observe.
    host.hv.internals.evtchn.bits(host.hv.internals.domains.slotOf(0)).clearPending(bport);
    const si = fe.hc.page(fe.hc.startInfo().sharedInfoMfn);
    const kick = host.hv.kickWord(fe.domid);
    const kicksBefore = Atomics.load(kick.words, kick.index);

    const worker = new Worker(new URL('./worker-bootstrap.mjs', import.meta.url), {
      workerData: {
        entry: new URL('./attach-worker.ts', import.meta.url).href,
        buffers: host.hv.buffers,
        feDomid: fe.domid,
        ref: 8,
        port: bport,
      },
    });
    const result = await new Promise<Record<string, unknown>>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(result).toEqual({
      status: 0,
      seen: 0x77,
      sendRc: 0,
      unmapRc: 0,
      kicked: [fe.domid],
      domains: [0, fe.domid],
    });
    expect([...fe.hc.page(page).subarray(100, 104)]).toEqual([1, 2, 3, 4]);
    expect(raw.flags(8)).toBe(GTF_permit_access);
    expect(si[0]).toBe(1); // upcall_pending raised by the other thread
    expect(Atomics.load(kick.words, kick.index)).toBe(kicksBefore + 1);
  });
});
