/**
 * Trace flow numbering in the hypervisor's send path: every delivered send gets a flow id derived from
 * the receiving port's allocation serial and its delivered-send count; dropped and failed sends get 0.
 */
import { describe, expect, it } from 'vitest';
import { EINVAL } from '../../hypervisor/errno.js';
import { EVTCHN_FLOW_SEQ_BITS, evtchnFlowId } from '../../hypervisor/event-channel.js';
import { makeHost } from './fixture.js';

function sendsSeen(
  hc: { evtchnFlowCounter(port: number): { words: Int32Array; index: number } | undefined },
  port: number,
): number {
  const c = hc.evtchnFlowCounter(port);
  if (c === undefined) throw new Error(`port ${port} has no counter`);
  return Atomics.load(c.words, c.index);
}

describe('event-channel send flow ids', () => {
  it('numbers delivered sends by the receiving port: serial * 2^30 + count', () => {
    const host = makeHost();
    const g = host.guest();
    const gport = g.hc.evtchnAllocUnbound(0);
    const dport = host.d0.evtchnBindInterdomain(g.domid, gport);
    const serial = g.hc.evtchnFlowCounter(gport)!.serial;
    expect(serial).toBeGreaterThan(0);
    expect(sendsSeen(g.hc, gport)).toBe(0);

    const flows: number[] = [];
    for (let i = 0; i < 3; i++) {
      expect(host.d0.evtchnSend(dport)).toBe(0);
      flows.push(host.d0.evtchnLastSendFlow());
    }
    expect(flows).toEqual([1, 2, 3].map((n) => serial * 2 ** EVTCHN_FLOW_SEQ_BITS + n));
    expect(sendsSeen(g.hc, gport)).toBe(3);

    // The other direction counts on dom0's port, with its own serial.
    const dserial = host.d0.evtchnFlowCounter(dport)!.serial;
    expect(dserial).not.toBe(serial);
    expect(g.hc.evtchnSend(gport)).toBe(0);
    expect(g.hc.evtchnLastSendFlow()).toBe(evtchnFlowId(dserial, 1));
    expect(sendsSeen(host.d0, dport)).toBe(1);
  });

  it.each([
    ['to an unbound port (silently dropped)', 'unbound', 0],
    ['on a port that is not in use', 'free', -EINVAL],
    ['on a VIRQ port (not sendable)', 'virq', -EINVAL],
  ] as const)('a send %s has no flow', (_what, kind, rc) => {
    const host = makeHost();
    const g = host.guest();
    let port: number;
    if (kind === 'unbound') port = g.hc.evtchnAllocUnbound(0);
    else if (kind === 'free') port = 9;
    else port = g.hc.evtchnBindVirq(0);
    // A previous delivered send must not leak its id into this one.
    const ipi = g.hc.evtchnBindIpi(0);
    expect(g.hc.evtchnSend(ipi)).toBe(0);
    expect(g.hc.evtchnLastSendFlow()).toBeGreaterThan(0);
    expect(g.hc.evtchnSend(port)).toBe(rc);
    expect(g.hc.evtchnLastSendFlow()).toBe(0);
  });

  it('nextSendFlow predicts the id the next send gets, and 0 where the send would not be delivered', () => {
    const host = makeHost();
    const g = host.guest();
    const gport = g.hc.evtchnAllocUnbound(0);
    expect(g.hc.evtchnNextSendFlow(gport)).toBe(0); // unbound: dropped
    const dport = host.d0.evtchnBindInterdomain(g.domid, gport);
    for (let i = 0; i < 3; i++) {
      const predicted = host.d0.evtchnNextSendFlow(dport);
      expect(predicted).toBeGreaterThan(0);
      host.d0.evtchnSend(dport);
      expect(host.d0.evtchnLastSendFlow()).toBe(predicted);
    }
    const back = g.hc.evtchnNextSendFlow(gport);
    g.hc.evtchnSend(gport);
    expect(g.hc.evtchnLastSendFlow()).toBe(back);
    const ipi = g.hc.evtchnBindIpi(0);
    const ipiFlow = g.hc.evtchnNextSendFlow(ipi);
    g.hc.evtchnSend(ipi);
    expect(g.hc.evtchnLastSendFlow()).toBe(ipiFlow);
    expect(g.hc.evtchnNextSendFlow(g.hc.evtchnBindVirq(0))).toBe(0);
    expect(g.hc.evtchnNextSendFlow(200)).toBe(0); // free
    expect(g.hc.evtchnNextSendFlow(1 << 20)).toBe(0); // out of range
    // The peer closed its end: our port is unbound again and a send would drop.
    expect(host.d0.evtchnClose(dport)).toBe(0);
    expect(g.hc.evtchnNextSendFlow(gport)).toBe(0);
  });

  it('an IPI counts on the sending port itself', () => {
    const host = makeHost();
    const g = host.guest();
    const ipi = g.hc.evtchnBindIpi(0);
    g.hc.evtchnSend(ipi);
    g.hc.evtchnSend(ipi);
    expect(g.hc.evtchnLastSendFlow()).toBe(evtchnFlowId(g.hc.evtchnFlowCounter(ipi)!.serial, 2));
  });

  it('a port freed and allocated again gets a new serial and starts counting from zero', () => {
    const host = makeHost();
    const g = host.guest();
    const gport = g.hc.evtchnAllocUnbound(0);
    const dport = host.d0.evtchnBindInterdomain(g.domid, gport);
    host.d0.evtchnSend(dport);
    const first = host.d0.evtchnLastSendFlow();
    const serial = g.hc.evtchnFlowCounter(gport)!.serial;
    expect(g.hc.evtchnClose(gport)).toBe(0);
    expect(g.hc.evtchnFlowCounter(gport)).toBeUndefined();
    expect(host.d0.evtchnSend(dport)).toBe(0); // peer end back to unbound: dropped
    expect(host.d0.evtchnLastSendFlow()).toBe(0);
    const again = g.hc.evtchnAllocUnbound(0);
    expect(again).toBe(gport);
    expect(g.hc.evtchnFlowCounter(again)!.serial).not.toBe(serial);
    expect(sendsSeen(g.hc, again)).toBe(0);
    const d2 = host.d0.evtchnBindInterdomain(g.domid, again);
    host.d0.evtchnSend(d2);
    expect(host.d0.evtchnLastSendFlow()).not.toBe(first);
    expect(host.d0.evtchnLastSendFlow()).toBe(evtchnFlowId(g.hc.evtchnFlowCounter(again)!.serial, 1));
  });

  it("the peer binding to an unbound port keeps that port's serial and count", () => {
    const host = makeHost();
    const g = host.guest();
    const gport = g.hc.evtchnAllocUnbound(0);
    const serial = g.hc.evtchnFlowCounter(gport)!.serial;
    host.d0.evtchnBindInterdomain(g.domid, gport);
    expect(g.hc.evtchnFlowCounter(gport)!.serial).toBe(serial);
  });

  it('flow ids are distinct across ports and domains of one host, and safe integers', () => {
    const host = makeHost();
    const seen = new Set<number>();
    for (let d = 0; d < 3; d++) {
      const g = host.guest();
      for (let p = 0; p < 4; p++) {
        const gport = g.hc.evtchnAllocUnbound(0);
        const dport = host.d0.evtchnBindInterdomain(g.domid, gport);
        for (let i = 0; i < 5; i++) {
          host.d0.evtchnSend(dport);
          const flow = host.d0.evtchnLastSendFlow();
          expect(Number.isSafeInteger(flow)).toBe(true);
          expect(seen.has(flow)).toBe(false);
          seen.add(flow);
        }
      }
    }
    expect(seen.size).toBe(60);
  });

  it('the count wraps in its low 30 bits without leaving the serial', () => {
    expect(evtchnFlowId(5, 2 ** 30 + 7)).toBe(evtchnFlowId(5, 7));
    expect(evtchnFlowId(5, -1)).toBe(5 * 2 ** 30 + (2 ** 30 - 1));
    expect(Number.isSafeInteger(evtchnFlowId(2 ** 23 - 1, -1))).toBe(true);
  });

  it('a port number out of range has no counter', () => {
    const host = makeHost();
    expect(host.d0.evtchnFlowCounter(0)).toBeUndefined();
    expect(host.d0.evtchnFlowCounter(1 << 20)).toBeUndefined();
  });
});
