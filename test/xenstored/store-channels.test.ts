/**
 * xenstored serving a guest through the hypervisor: the ring page mapped through the seeded grant,
 * the store event channel bound interdomain, in both engines (the benchmark's host).
 */
import { describe, expect, it } from 'vitest';
import { startXenstoreHost } from '../../bench/xenstore.js';
import { GuestEvents } from '../../drivers/events.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import { XenstoreDaemon } from '../../emulator/xenstored/daemon.js';
import type { XsError } from '../../emulator/xenstored/errors.js';
import { XenstoredRingTransport } from '../../emulator/xenstored/ring-transport.js';
import { XenstoredStoreChannels } from '../../emulator/xenstored/store-channels.js';
import { EVTCHNSTAT_interdomain, EVTCHNSTAT_unbound, Hypervisor } from '../../hypervisor/index.js';

describe('xenstore over grant-mapped rings and real event channels', () => {
  for (const kind of ['sim', 'threads'] as const) {
    it(`a guest reads, writes and hears a dom0 write through its watch (${kind})`, async () => {
      const host = await startXenstoreHost(kind);
      try {
        const d = host.guest.domid;
        const value = new Uint8Array(1500).map((_, i) => (i * 7) & 0xff);
        const r = await host.engine.run(async (ctl) => {
          await ctl.call(d, 'writeValue', 'data/blob', value);
          const back = (await ctl.call(d, 'readValue', 'data/blob')) as Uint8Array;
          const name = (await ctl.call(d, 'readValue', 'name')) as Uint8Array;
          await ctl.call(d, 'armWatch');
          const rate = (await ctl.call(0, 'watchRoundTrips', d, 0)) as { ops: number };
          return {
            back: [...back],
            name: new TextDecoder().decode(name),
            rate,
            domains: await ctl.call(0, 'storeDomains'),
          };
        });
        expect(r.error).toBeUndefined();
        expect(r.outcome).toBe('completed');
        expect(r.value!.back).toEqual([...value]);
        expect(r.value!.name).toBe(`guest${d}`);
        expect(r.value!.domains).toEqual([d]);
        // ms = 0 still runs the loop once: at least one full write -> event -> ack round trip.
        expect(r.value!.rate.ops).toBeGreaterThanOrEqual(1);
      } finally {
        await host.engine.close();
      }
    });
  }
});

describe('XenstoredStoreChannels', () => {
  /** A host with one guest whose reserved grant and store port are set up, and dom0's side unbound. */
  function rig() {
    const hv = Hypervisor.create({ frames: 512, maxDomains: 4 });
    const d0 = hv.hypercalls(0);
    const domid = d0.createDomain({});
    const ghc = hv.hypercalls(domid);
    const [mfn] = ghc.allocPages(1);
    const st = ghc.setupTable(1);
    const gt = ghc.page(st.frameList![0]);
    const u16 = new Uint16Array(gt.buffer, gt.byteOffset, 2048);
    new Uint32Array(gt.buffer, gt.byteOffset, 1024)[3] = mfn; // ref 1: frame
    u16[5] = 0; // ref 1: domid 0
    Atomics.store(u16, 4, 1); // ref 1: GTF_permit_access
    const port = d0.evtchnAllocUnbound(0, domid);
    return { hv, d0, domid, mfn, port, ghc };
  }

  it('maps grant ref 1, binds the port, rebinds on re-introduction, undoes everything on release', async () => {
    const engine = createSimEngine({ seed: 2 });
    try {
      const r = await engine.run(async (ctl) => {
        const { hv, d0, domid, mfn, port, ghc } = rig();
        const events = new GuestEvents(d0);
        let channels: XenstoredStoreChannels | undefined;
        const daemon = new XenstoreDaemon({
          onIntroduce: (id, gfn, p) => channels!.introduce(id, gfn, p),
          onRelease: (id) => channels!.release(id),
        });
        const rings = new XenstoredRingTransport(ctl.env, daemon);
        channels = new XenstoredStoreChannels(d0, events, rings);
        const out: Record<string, unknown> = {};
        daemon.introduceDomain(domid, BigInt(mfn), port);
        out.pinned = hv.domainInfo(domid)?.pinnedGrants;
        out.bound = d0.evtchnStatus(channels.localPort(domid)!);
        out.served = rings.domains();
        // Same page again with a fresh guest port: only the event channel changes.
        const port2 = d0.evtchnAllocUnbound(0, domid);
        daemon.introduceDomain(domid, BigInt(mfn), port2);
        out.port2 = port2;
        out.rebound = d0.evtchnStatus(channels.localPort(domid)!);
        out.stillServed = rings.domains();
        // dom0 closed its end of the first channel: the guest's old port is unbound again.
        out.oldGuestPort = ghc.evtchnStatus(port);
        // Another page is refused and changes nothing.
        out.otherPage = (() => {
          try {
            daemon.introduceDomain(domid, BigInt(mfn + 1), port2);
            return 'accepted';
          } catch (e) {
            return (e as XsError).errno;
          }
        })();
        daemon.releaseDomain(domid);
        out.afterRelease = {
          pinned: hv.domainInfo(domid)?.pinnedGrants,
          served: rings.domains(),
          channels: channels.domains(),
        };
        out.guestPort = ghc.evtchnStatus(port2);
        return out;
      });
      expect(r.error).toBeUndefined();
      const v = r.value!;
      expect(v.pinned).toBe(1);
      expect(v.bound).toMatchObject({ status: EVTCHNSTAT_interdomain, dom: expect.any(Number) });
      expect(v.served).toEqual([expect.any(Number)]);
      expect(v.rebound).toMatchObject({ status: EVTCHNSTAT_interdomain, port: v.port2 });
      expect(v.stillServed).toEqual(v.served);
      expect(v.oldGuestPort).toMatchObject({ status: EVTCHNSTAT_unbound, dom: 0 });
      expect(v.otherPage).toBe('EINVAL');
      expect(v.afterRelease).toEqual({ pinned: 0, served: [], channels: [] });
      // dom0 closed its end: the guest's store port is unbound again, waiting for dom0.
      expect(v.guestPort).toMatchObject({ status: EVTCHNSTAT_unbound, dom: 0 });
    } finally {
      await engine.close();
    }
  });

  it('a domain whose page cannot be mapped is refused with EINVAL and not introduced', async () => {
    const engine = createSimEngine({ seed: 2 });
    try {
      const r = await engine.run(async (ctl) => {
        const hv = Hypervisor.create({ frames: 512, maxDomains: 4 });
        const d0 = hv.hypercalls(0);
        const domid = d0.createDomain({}); // no grant seeded
        const port = d0.evtchnAllocUnbound(0, domid);
        let channels: XenstoredStoreChannels | undefined;
        const daemon = new XenstoreDaemon({ onIntroduce: (id, gfn, p) => channels!.introduce(id, gfn, p) });
        const rings = new XenstoredRingTransport(ctl.env, daemon);
        channels = new XenstoredStoreChannels(d0, new GuestEvents(d0), rings);
        const admin = daemon.connect({ domid: 0, send: () => true });
        const reply = admin.request(8 /* INTRODUCE */, `${domid}\0${1234}\0${port}\0`);
        return {
          error: reply.error,
          introduced: daemon.isDomainIntroduced(domid),
          served: rings.domains(),
          open: admin.closed,
        };
      });
      expect(r.value).toEqual({ error: 'EINVAL', introduced: false, served: [], open: false });
    } finally {
      await engine.close();
    }
  });
});
