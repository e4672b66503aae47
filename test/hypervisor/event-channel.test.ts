import { describe, expect, it } from 'vitest';
import {
  DOMID_SELF,
  EEXIST,
  EINVAL,
  ENOENT,
  ENOSPC,
  ENOSYS,
  EPERM,
  ESRCH,
  EVTCHNOP_alloc_unbound,
  EVTCHNOP_bind_interdomain,
  EVTCHNOP_status,
  EVTCHNSTAT_closed,
  EVTCHNSTAT_interdomain,
  EVTCHNSTAT_ipi,
  EVTCHNSTAT_unbound,
  EVTCHNSTAT_virq,
  type Hypercalls,
  VIRQ_DOM_EXC,
} from '../../hypervisor/index.js';
import type { SharedInfoBits } from '../../hypervisor/shared-info.js';
import { makeHost } from './fixture.js';

function bitsOf(host: ReturnType<typeof makeHost>, domid: number): SharedInfoBits {
  const x = host.hv.internals;
  return x.evtchn.bits(x.domains.slotOf(domid));
}

function bound() {
  const host = makeHost();
  const fe = host.guest();
  const fport = fe.hc.evtchnAllocUnbound(0);
  const bport = host.d0.evtchnBindInterdomain(fe.domid, fport);
  return { host, fe, fport, bport };
}

describe('EVTCHNOP_alloc_unbound', () => {
  it.each([
    { name: 'self, remote dom0', caller: 'fe', dom: DOMID_SELF, remote: 0, rc: 1 },
    { name: 'self by domid', caller: 'fe', dom: 'fe', remote: 0, rc: 1 },
    { name: 'remote DOMID_SELF means the caller', caller: 'fe', dom: DOMID_SELF, remote: DOMID_SELF, rc: 1 },
    { name: 'for another domain, unprivileged', caller: 'fe', dom: 0, remote: 0, rc: -EPERM },
    { name: 'for another domain, privileged', caller: 'd0', dom: 'fe', remote: 0, rc: 1 },
    { name: 'unknown domain', caller: 'd0', dom: 200, remote: 0, rc: -ESRCH },
  ])('$name -> $rc', ({ caller, dom, remote, rc }) => {
    const host = makeHost();
    const fe = host.guest();
    const hc = caller === 'fe' ? fe.hc : host.d0;
    const d = dom === 'fe' ? fe.domid : (dom as number);
    expect(hc.evtchnAllocUnbound(remote, d)).toBe(rc);
    if (rc > 0) {
      const owner = d === DOMID_SELF ? fe.domid : d;
      const st = host.d0.evtchnStatus(rc, owner);
      expect(st).toEqual({
        status: EVTCHNSTAT_unbound,
        vcpu: 0,
        dom: remote === DOMID_SELF ? fe.domid : remote,
      });
    }
  });

  it('hands out the lowest free port and never port 0', () => {
    const host = makeHost();
    const fe = host.guest();
    expect([1, 2, 3].map(() => fe.hc.evtchnAllocUnbound(0))).toEqual([1, 2, 3]);
    expect(fe.hc.evtchnClose(2)).toBe(0);
    expect(fe.hc.evtchnAllocUnbound(0)).toBe(2);
    expect(fe.hc.evtchnClose(0)).toBe(-EINVAL);
  });

  it.each([
    { abi: 'x86_64' as const, maxEvtchnPort: 5000, ports: 4096 },
    { abi: 'x86_32' as const, maxEvtchnPort: 5000, ports: 1024 },
    { abi: 'x86_64' as const, maxEvtchnPort: 9, ports: 10 },
  ])('limit for $abi with max port $maxEvtchnPort is $ports ports', ({ abi, maxEvtchnPort, ports }) => {
    const host = makeHost();
    const fe = host.guest({ abi, maxEvtchnPort });
    for (let p = 1; p < ports; p++) expect(fe.hc.evtchnAllocUnbound(0)).toBe(p);
    expect(fe.hc.evtchnAllocUnbound(0)).toBe(-ENOSPC);
    expect(fe.hc.evtchnStatus(ports)).toBe(-EINVAL);
    expect(fe.hc.startInfo().nrEvtchns).toBe(ports);
  });
});

describe('EVTCHNOP_bind_interdomain', () => {
  it('binds both ends and sets the new local port pending', () => {
    const { host, fe, fport, bport } = bound();
    expect(bport).toBe(1);
    expect(host.d0.evtchnStatus(bport)).toEqual({
      status: EVTCHNSTAT_interdomain,
      vcpu: 0,
      dom: fe.domid,
      port: fport,
    });
    expect(fe.hc.evtchnStatus(fport)).toEqual({
      status: EVTCHNSTAT_interdomain,
      vcpu: 0,
      dom: 0,
      port: bport,
    });
    expect(bitsOf(host, 0).isPending(bport)).toBe(true);
    expect(host.kicks).toEqual([0]);
  });

  it.each([
    { name: 'unknown remote domain', remote: 99, port: 1, rc: -ESRCH },
    { name: 'remote port out of range', remote: 'fe', port: 5000, rc: -EINVAL },
    { name: 'remote port free', remote: 'fe', port: 7, rc: -EINVAL },
    { name: 'remote port reserved (0)', remote: 'fe', port: 0, rc: -EINVAL },
    { name: 'remote port unbound for another domain', remote: 'fe', port: 'forOther', rc: -EINVAL },
    { name: 'remote port already interdomain', remote: 'fe', port: 'bound', rc: -EINVAL },
  ])('$name -> $rc', ({ remote, port, rc }) => {
    const host = makeHost();
    const fe = host.guest();
    const other = host.guest();
    const forOther = fe.hc.evtchnAllocUnbound(other.domid);
    const forD0 = fe.hc.evtchnAllocUnbound(0);
    host.d0.evtchnBindInterdomain(fe.domid, forD0);
    const p = port === 'forOther' ? forOther : port === 'bound' ? forD0 : (port as number);
    expect(host.d0.evtchnBindInterdomain(remote === 'fe' ? fe.domid : (remote as number), p)).toBe(rc);
  });

  it('no local port left -> -ENOSPC', () => {
    const host = makeHost();
    const fe = host.guest();
    const small = host.guest({ maxEvtchnPort: 1 });
    const p = fe.hc.evtchnAllocUnbound(small.domid);
    expect(small.hc.evtchnAllocUnbound(0)).toBe(1);
    expect(small.hc.evtchnBindInterdomain(fe.domid, p)).toBe(-ENOSPC);
  });

  it('loopback binding within one domain works', () => {
    const host = makeHost();
    const fe = host.guest();
    const a = fe.hc.evtchnAllocUnbound(DOMID_SELF);
    const b = fe.hc.evtchnBindInterdomain(DOMID_SELF, a);
    expect(fe.hc.evtchnStatus(a)).toMatchObject({ status: EVTCHNSTAT_interdomain, port: b });
    expect(fe.hc.evtchnClose(b)).toBe(0);
    expect(fe.hc.evtchnStatus(a)).toMatchObject({ status: EVTCHNSTAT_unbound, dom: fe.domid });
  });
});

describe('EVTCHNOP_send / close / unmask / status', () => {
  it.each([
    { name: 'interdomain sets the peer pending', port: 'fport', rc: 0 },
    { name: 'unbound is silently dropped', port: 'unbound', rc: 0 },
    { name: 'free port', port: 9, rc: -EINVAL },
    { name: 'reserved port 0', port: 0, rc: -EINVAL },
    { name: 'out of range', port: 99999, rc: -EINVAL },
  ])('send: $name -> $rc', ({ port, rc }) => {
    const { host, fe, fport, bport } = bound();
    const unbound = fe.hc.evtchnAllocUnbound(0);
    bitsOf(host, 0).clearPending(bport);
    const p = port === 'fport' ? fport : port === 'unbound' ? unbound : (port as number);
    expect(fe.hc.evtchnSend(p)).toBe(rc);
    expect(bitsOf(host, 0).isPending(bport)).toBe(port === 'fport');
  });

  it('set_pending follows Xen: edge, mask, selector and upcall_pending', () => {
    const { host, fe, fport, bport } = bound();
    const bits = bitsOf(host, 0);
    // Consume the bind-time event like a guest would.
    bits.clearPending(bport);
    const d0info = host.d0.startInfo();
    const si = host.d0.page(d0info.sharedInfoMfn);
    si[0] = 0; // upcall_pending
    si.fill(0, 8, 16); // selector
    host.kicks.length = 0;
    expect(fe.hc.evtchnSend(fport)).toBe(0);
    expect(si[0]).toBe(1);
    expect(si[8]).toBe(1); // selector bit 0 (port 1 is in word 0)
    expect(host.kicks).toEqual([0]);
    // Already pending: nothing more happens.
    si[0] = 0;
    fe.hc.evtchnSend(fport);
    expect(si[0]).toBe(0);
    expect(host.kicks).toEqual([0]);
    // Masked port: pending bit set, no selector, no upcall; unmask re-raises.
    bits.clearPending(bport);
    si.fill(0, 8, 16);
    const mask = new Int32Array(si.buffer, si.byteOffset + 2560, 128);
    Atomics.or(mask, 0, 1 << bport);
    fe.hc.evtchnSend(fport);
    expect(bits.isPending(bport)).toBe(true);
    expect(si[8]).toBe(0);
    expect(si[0]).toBe(0);
    expect(host.d0.evtchnUnmask(bport)).toBe(0);
    expect(bits.isMasked(bport)).toBe(false);
    expect(si[8]).toBe(1);
    expect(si[0]).toBe(1);
    expect(host.kicks).toEqual([0, 0]);
  });

  it('close of an interdomain end returns the peer to unbound and clears pending', () => {
    const { host, fe, fport, bport } = bound();
    expect(host.d0.evtchnClose(bport)).toBe(0);
    expect(bitsOf(host, 0).isPending(bport)).toBe(false);
    expect(host.d0.evtchnStatus(bport)).toEqual({ status: EVTCHNSTAT_closed, vcpu: 0 });
    expect(fe.hc.evtchnStatus(fport)).toEqual({ status: EVTCHNSTAT_unbound, vcpu: 0, dom: 0 });
    // The peer can be bound again.
    expect(host.d0.evtchnBindInterdomain(fe.domid, fport)).toBe(bport);
    expect(host.d0.evtchnClose(bport)).toBe(0);
    expect(host.d0.evtchnClose(bport)).toBe(-EINVAL);
  });

  it.each([
    { name: 'own port', caller: 'fe', dom: DOMID_SELF, port: 1, rc: EVTCHNSTAT_interdomain },
    { name: 'other domain unprivileged', caller: 'fe', dom: 0, port: 1, rc: -EPERM },
    { name: 'unknown domain', caller: 'd0', dom: 300, port: 1, rc: -ESRCH },
    { name: 'port out of range', caller: 'fe', dom: DOMID_SELF, port: 4096, rc: -EINVAL },
    { name: 'free port reports closed', caller: 'fe', dom: DOMID_SELF, port: 50, rc: EVTCHNSTAT_closed },
    { name: 'reserved port reports closed', caller: 'fe', dom: DOMID_SELF, port: 0, rc: EVTCHNSTAT_closed },
  ])('status: $name', ({ caller, dom, port, rc }) => {
    const { host, fe } = bound();
    const hc: Hypercalls = caller === 'fe' ? fe.hc : host.d0;
    const r = hc.evtchnStatus(port, dom);
    if (rc < 0) expect(r).toBe(rc);
    else expect(typeof r === 'object' && r.status).toBe(rc);
  });

  it.each([
    { name: 'valid port', port: 1, rc: 0 },
    { name: 'out of range', port: 4096, rc: -EINVAL },
  ])('unmask: $name', ({ port, rc }) => {
    const { fe } = bound();
    expect(fe.hc.evtchnUnmask(port)).toBe(rc);
  });

  it('virq and ipi bindings', () => {
    const host = makeHost();
    const fe = host.guest();
    const v = host.d0.evtchnBindVirq(VIRQ_DOM_EXC);
    expect(host.d0.evtchnStatus(v)).toEqual({ status: EVTCHNSTAT_virq, vcpu: 0, virq: VIRQ_DOM_EXC });
    expect(host.d0.evtchnBindVirq(VIRQ_DOM_EXC)).toBe(-EEXIST);
    expect(host.d0.evtchnBindVirq(24)).toBe(-EINVAL);
    expect(host.d0.evtchnBindVirq(0, 3)).toBe(-ENOENT);
    expect(host.d0.evtchnSend(v)).toBe(-EINVAL);
    // A domain shutting down raises VIRQ_DOM_EXC in dom0 (xenstored's @releaseDomain).
    host.kicks.length = 0;
    expect(fe.hc.shutdown(0)).toBe(0);
    expect(bitsOf(host, 0).isPending(v)).toBe(true);
    expect(host.kicks).toEqual([0]);
    const ipi = fe.hc.evtchnBindIpi(0);
    expect(fe.hc.evtchnStatus(ipi)).toEqual({ status: EVTCHNSTAT_ipi, vcpu: 0 });
    expect(fe.hc.evtchnSend(ipi)).toBe(0);
    expect(bitsOf(host, fe.domid).isPending(ipi)).toBe(true);
  });

  it('event_channel_op writes OUT fields and rejects unknown commands', () => {
    const host = makeHost();
    const fe = host.guest();
    const alloc = { dom: DOMID_SELF, remoteDom: 0, port: undefined as number | undefined };
    expect(fe.hc.eventChannelOp(EVTCHNOP_alloc_unbound, alloc)).toBe(0);
    const bind = {
      remoteDom: fe.domid,
      remotePort: alloc.port as number,
      localPort: undefined as number | undefined,
    };
    expect(host.d0.eventChannelOp(EVTCHNOP_bind_interdomain, bind)).toBe(0);
    const st = { dom: DOMID_SELF, port: bind.localPort as number, result: undefined as unknown };
    expect(host.d0.eventChannelOp(EVTCHNOP_status, st)).toBe(0);
    expect(st.result).toMatchObject({ status: EVTCHNSTAT_interdomain, dom: fe.domid, port: alloc.port });
    expect(fe.hc.eventChannelOp(12, { port: 1 })).toBe(-ENOSYS);
  });

  it('rejects unrepresentable ports with a RangeError naming the field', () => {
    const host = makeHost();
    expect(() => host.d0.evtchnSend(-1)).toThrow(/send\.port/);
    expect(() => host.d0.evtchnAllocUnbound(0x10000)).toThrow(/remote_dom/);
  });
});

describe('x86_32 shared_info layout', () => {
  it('uses the 32-bit offsets for pending, mask and the selector', () => {
    const host = makeHost();
    const fe = host.guest({ abi: 'x86_32' });
    const p = host.d0.evtchnAllocUnbound(fe.domid);
    for (let i = 0; i < 40; i++) fe.hc.evtchnAllocUnbound(0);
    const port = fe.hc.evtchnBindInterdomain(0, p); // 41: word 1, bit 9
    expect(port).toBe(41);
    const si = fe.hc.page(fe.hc.startInfo().sharedInfoMfn);
    const dv = new DataView(si.buffer, si.byteOffset, 4096);
    expect(dv.getUint32(2048 + 4, true)).toBe(1 << 9); // evtchn_pending[1]
    expect(dv.getUint32(4, true)).toBe(1 << 1); // evtchn_pending_sel bit 1
    expect(si[0]).toBe(1);
    Atomics.or(new Int32Array(si.buffer, si.byteOffset + 2176, 32), 1, 1 << 9);
    expect(bitsOf(host, fe.domid).isMasked(41)).toBe(true);
  });
});
