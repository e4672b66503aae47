import { describe, expect, it } from 'vitest';
import { GuestEvents } from '../../drivers/events.js';
import { makeHost } from '../hypervisor/fixture.js';

function pair(abi: 'x86_64' | 'x86_32' = 'x86_64') {
  const host = makeHost();
  const fe = host.guest({ abi });
  const feEv = new GuestEvents(fe.hc);
  const beEv = new GuestEvents(host.d0);
  return { host, fe, feEv, beEv };
}

describe('guest event channels', () => {
  it.each(['x86_64', 'x86_32'] as const)('delivers an interdomain notification once per edge (%s)', (abi) => {
    const { fe, feEv, beEv } = pair(abi);
    const got: number[] = [];
    const fport = feEv.allocUnbound(0, (p) => got.push(p));
    const bport = beEv.bindInterdomain(fe.domid, fport, () => {});
    expect(beEv.handleUpcall()).toBe(1); // the bind-time pending bit
    beEv.notify(bport);
    beEv.notify(bport); // still pending: one bit, not a counter
    expect(feEv.handleUpcall()).toBe(1);
    expect(got).toEqual([fport]);
    expect(feEv.isPending(fport)).toBe(false);
    expect(feEv.handleUpcall()).toBe(0);
  });

  it('ports above 64 use the right selector word and pending bit', () => {
    const { host, fe, feEv } = pair();
    for (let i = 0; i < 69; i++) fe.hc.evtchnAllocUnbound(0);
    const got: number[] = [];
    const p = feEv.allocUnbound(0, (x) => got.push(x));
    expect(p).toBe(70);
    const bport = host.d0.evtchnBindInterdomain(fe.domid, p);
    host.d0.evtchnSend(bport);
    expect(feEv.handleUpcall()).toBe(1);
    expect(got).toEqual([70]);
  });

  it('masked ports stay pending and fire on unmask', () => {
    const { host, fe, feEv } = pair();
    const got: number[] = [];
    const p = feEv.allocUnbound(0, (x) => got.push(x));
    const bport = host.d0.evtchnBindInterdomain(fe.domid, p);
    feEv.mask(p);
    host.d0.evtchnSend(bport);
    expect(feEv.handleUpcall()).toBe(0);
    expect(feEv.isPending(p)).toBe(true);
    expect(host.kicks.filter((d) => d === fe.domid)).toHaveLength(0);
    feEv.unmask(p);
    expect(host.kicks.filter((d) => d === fe.domid)).toHaveLength(1);
    expect(feEv.handleUpcall()).toBe(1);
    expect(got).toEqual([p]);
  });

  it('upcalls masked with evtchn_upcall_mask are handled when re-enabled', () => {
    const { host, fe, feEv } = pair();
    let n = 0;
    const p = feEv.allocUnbound(0, () => n++);
    const bport = host.d0.evtchnBindInterdomain(fe.domid, p);
    feEv.setUpcallMask(true);
    host.d0.evtchnSend(bport);
    expect(feEv.handleUpcall()).toBe(0);
    expect(feEv.setUpcallMask(false)).toBe(1);
    expect(n).toBe(1);
  });

  it('closing a port inside its own handler: the handler finishes, no further calls (XSA-332)', () => {
    const { host, fe, feEv } = pair();
    const log: string[] = [];
    let other = 0;
    const p = feEv.allocUnbound(0, (x) => {
      log.push('start');
      expect(feEv.close(x)).toBe(0);
      feEv.unbind(other); // also drop a port already pending in this same scan
      log.push('end');
    });
    other = feEv.allocUnbound(0, () => log.push('other'));
    const b1 = host.d0.evtchnBindInterdomain(fe.domid, p);
    const b2 = host.d0.evtchnBindInterdomain(fe.domid, other);
    host.d0.evtchnSend(b1);
    host.d0.evtchnSend(b2);
    expect(feEv.handleUpcall()).toBe(1);
    expect(log).toEqual(['start', 'end']);
    expect(host.d0.evtchnSend(b1)).toBe(0); // peer now unbound: dropped
    expect(feEv.handleUpcall()).toBe(0);
  });

  it('a handler that re-raises its own port is run again by the same upcall, not nested', () => {
    const { fe, feEv } = pair();
    let runs = 0;
    let depth = 0;
    const ipi = feEv.bindIpi(() => {
      depth++;
      expect(depth).toBe(1);
      if (++runs < 3) fe.hc.evtchnSend(ipi);
      feEv.handleUpcall(); // re-entry asks the running pass to loop
      depth--;
    });
    fe.hc.evtchnSend(ipi);
    feEv.handleUpcall();
    expect(runs).toBe(3);
  });

  it('rejects unusable ports', () => {
    const { feEv } = pair();
    expect(() => feEv.bind(0, () => {})).toThrow(RangeError);
    expect(() => feEv.bind(5000, () => {})).toThrow(RangeError);
  });
});
