import { describe, expect, it } from 'vitest';
import {
  EINVAL,
  EPERM,
  ESRCH,
  EVTCHNSTAT_unbound,
  GNTST_general_error,
  GNTST_okay,
  GTF_reading,
  SHUTDOWN_crash,
  XenError,
} from '../../hypervisor/index.js';
import { DF_NR_MAPTRACK_FRAMES } from '../../hypervisor/shared-state.js';
import { makeHost, RawGrants } from './fixture.js';

describe('memory', () => {
  it('allocates zeroed frames, checks ownership, frees', () => {
    const host = makeHost({ frames: 256 });
    const a = host.guest({ maxPages: 4 });
    const b = host.guest();
    const pages = a.hc.allocPages(3);
    expect(pages).toHaveLength(3);
    a.hc.page(pages[0]).fill(0x5a);
    expect(() => b.hc.page(pages[0])).toThrow(XenError);
    expect(() => b.hc.freePage(pages[0])).toThrow(/not a page of/);
    expect(() => a.hc.allocPages(2)).toThrow(/ENOMEM/); // allowance 4
    expect(host.hv.domainInfo(a.domid)?.totPages).toBe(3);
    a.hc.freePage(pages[0]);
    expect(() => a.hc.page(pages[0])).toThrow(XenError);
    expect(() => a.hc.freePage(pages[0])).toThrow(XenError);
    const again = b.hc.allocPages(1)[0];
    expect(again).toBe(pages[0]); // reused, and scrubbed
    expect(b.hc.page(again).every((v) => v === 0)).toBe(true);
    expect(() => a.hc.page(1.5)).toThrow(/not a machine frame/);
    expect(() => a.hc.allocPages(-1)).toThrow(RangeError);
  });

  it('a freed page that is still mapped by a backend is not reused until unmapped', () => {
    const host = makeHost({ frames: 256 });
    const fe = host.guest();
    const raw = new RawGrants(fe.hc);
    const [page] = fe.hc.allocPages(1);
    raw.grant(8, 0, page);
    const m = host.d0.mapGrant(fe.domid, 8);
    const free0 = host.hv.freeFrames();
    fe.hc.freePage(page);
    expect(host.hv.freeFrames()).toBe(free0);
    expect(() => fe.hc.page(page)).toThrow(XenError);
    host.d0.unmapGrant(m.handle);
    expect(host.hv.freeFrames()).toBe(free0 + 1);
  });
});

describe('domain lifecycle', () => {
  it('create (paused), unpause, pause, shutdown, listing flags', () => {
    const host = makeHost();
    const id = host.d0.createDomain({});
    expect(id).toBe(1);
    expect(host.hv.domainInfo(id)).toMatchObject({ state: 'paused', flags: '--p---' });
    expect(host.d0.unpauseDomain(id)).toBe(0);
    expect(host.d0.unpauseDomain(id)).toBe(-EINVAL);
    expect(host.hv.domainInfo(id)).toMatchObject({ state: 'running', flags: 'r-----' });
    const hc = host.hv.hypercalls(id);
    hc.block();
    expect(host.hv.domainInfo(id)).toMatchObject({ state: 'blocked', flags: '-b----' });
    const p = hc.evtchnAllocUnbound(0);
    host.d0.evtchnBindInterdomain(id, p);
    host.d0.evtchnSend(1);
    expect(host.hv.domainInfo(id)?.state).toBe('running'); // the upcall unblocked it
    expect(host.d0.shutdownDomain(id, SHUTDOWN_crash)).toBe(0);
    expect(host.hv.domainInfo(id)).toMatchObject({
      state: 'shutdown',
      crashed: true,
      flags: '---sc-',
      shutdownReason: 3,
    });
    expect(hc.shutdown(0)).toBe(0); // first reason sticks
    expect(host.hv.domainInfo(id)?.shutdownReason).toBe(SHUTDOWN_crash);
    expect(hc.shutdown(9)).toBe(-EINVAL);
  });

  it.each([
    { name: 'unprivileged create', op: 'create', by: 'guest', rc: -EPERM },
    { name: 'unprivileged destroy', op: 'destroy', by: 'guest', rc: -EPERM },
    { name: 'destroy self', op: 'destroySelf', by: 'd0', rc: -EINVAL },
    { name: 'destroy unknown', op: 'destroyUnknown', by: 'd0', rc: -ESRCH },
    { name: 'pause unknown', op: 'pauseUnknown', by: 'd0', rc: -ESRCH },
    { name: 'grant frames above the host limit', op: 'bigGrant', by: 'd0', rc: -EINVAL },
    { name: 'zero vcpus', op: 'zeroVcpus', by: 'd0', rc: -EINVAL },
  ])('$name -> $rc', ({ op, by, rc }) => {
    const host = makeHost();
    const g = host.guest();
    const hc = by === 'guest' ? g.hc : host.d0;
    const run: Record<string, () => number> = {
      create: () => hc.createDomain({}),
      destroy: () => hc.destroyDomain(0),
      destroySelf: () => hc.destroyDomain(0),
      destroyUnknown: () => hc.destroyDomain(77),
      pauseUnknown: () => hc.pauseDomain(77),
      bigGrant: () => hc.createDomain({ maxGrantFrames: 65 }),
      zeroVcpus: () => hc.createDomain({ vcpus: 0 }),
    };
    expect(run[op]()).toBe(rc);
  });

  it('a destroyed domain with a mapped grant stays dying until the last unmap, then is dead', () => {
    const host = makeHost({ frames: 512 });
    const free0 = host.hv.freeFrames();
    const fe = host.guest();
    const raw = new RawGrants(fe.hc);
    const pages = fe.hc.allocPages(4);
    fe.hc.page(pages[0]).fill(0x42);
    raw.grant(8, 0, pages[0]);
    raw.grant(9, 0, pages[1], true);
    const m = host.d0.mapGrant(fe.domid, 8);
    const r = host.d0.mapGrant(fe.domid, 9, { readonly: true });
    const fp = fe.hc.evtchnAllocUnbound(0);
    const bp = host.d0.evtchnBindInterdomain(fe.domid, fp);
    // The guest also maps one of dom0's grants: released when it dies.
    const d0raw = new RawGrants(host.d0);
    const [d0page] = host.d0.allocPages(1);
    d0raw.grant(8, fe.domid, d0page);
    expect(fe.hc.mapGrant(0, 8).status).toBe(GNTST_okay);
    expect(d0raw.flags(8) & GTF_reading).toBe(GTF_reading);

    expect(host.d0.destroyDomain(fe.domid)).toBe(0);
    expect(host.hv.domainInfo(fe.domid)).toMatchObject({ state: 'dying', dying: true, pinnedGrants: 2 });
    expect(host.d0.evtchnStatus(bp)).toEqual({ status: EVTCHNSTAT_unbound, vcpu: 0, dom: fe.domid });
    expect(d0raw.flags(8) & GTF_reading).toBe(0);
    expect(() => fe.hc.evtchnSend(fp)).toThrow(/dying/);
    // The mapping still reads the real bytes; new maps of a dying domain fail.
    expect((m.page as Uint8Array)[10]).toBe(0x42);
    raw.grant(10, 0, pages[2]);
    expect(host.d0.mapGrant(fe.domid, 10).status).toBe(GNTST_general_error);
    expect(host.d0.destroyDomain(fe.domid)).toBe(0);

    expect(host.d0.unmapGrant(m.handle)).toBe(GNTST_okay);
    expect(host.hv.domainInfo(fe.domid)?.state).toBe('dying');
    expect(host.d0.unmapGrant(r.handle)).toBe(GNTST_okay);
    expect(host.hv.domainInfo(fe.domid)).toBeUndefined();
    expect(host.hv.domains().map((d) => d.domid)).toEqual([0]);
    // Everything the guest and Xen held for it is back (dom0 keeps the page and table it grew).
    host.d0.freePage(d0page);
    expect(host.hv.freeFrames()).toBe(free0 - dom0Maptrack(host));
  });

  it('destroy without foreign mappings goes straight to dead; domids are not reused at once', () => {
    const host = makeHost();
    const a = host.guest();
    a.hc.allocPages(10);
    expect(host.d0.destroyDomain(a.domid)).toBe(0);
    expect(host.hv.domainInfo(a.domid)).toBeUndefined();
    const b = host.guest();
    expect(b.domid).toBe(a.domid + 1);
  });
});

function dom0Maptrack(host: ReturnType<typeof makeHost>): number {
  const x = host.hv.internals;
  return x.s.field(x.domains.slotOf(0), DF_NR_MAPTRACK_FRAMES);
}
