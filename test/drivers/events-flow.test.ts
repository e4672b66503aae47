/**
 * GuestEvents trace flows: notify() emits evtchn-send with Xen's flow id, the upcall emits one
 * evtchn-upcall per port handled with the ids of every send it delivers, and every send is answered
 * exactly once.
 */
import { describe, expect, it } from 'vitest';
import { GuestEvents, MAX_UPCALL_FLOWS } from '../../drivers/events.js';
import type { Env, TraceEvent } from '../../emulator/runtime/engine.js';
import { checkEvent } from '../../emulator/trace/vocabulary.js';
import { makeHost } from '../hypervisor/fixture.js';

/** Just enough of an Env for GuestEvents: a recording tracer (upcalls are driven by hand). */
function recordingEnv(domid: number, events: TraceEvent[]): Env {
  const trace = {
    emit: (comp: string, kind: string, fields?: Record<string, unknown>) =>
      events.push({ t: events.length, dom: domid, task: 't', comp, kind, ...(fields ? { fields } : {}) }),
    log: () => {},
  };
  return { domid, trace } as unknown as Env;
}

function setup() {
  const host = makeHost();
  const g = host.guest();
  const trace: TraceEvent[] = [];
  const gEv = new GuestEvents(g.hc, { env: recordingEnv(g.domid, trace) });
  const dEv = new GuestEvents(host.d0, { env: recordingEnv(0, trace) });
  const got: number[] = [];
  const gport = gEv.allocUnbound(0, (p) => got.push(p));
  const dport = dEv.bindInterdomain(g.domid, gport, () => {});
  dEv.handleUpcall(); // the bind-time pending bit: no send, nothing traced
  return { host, g, trace, gEv, dEv, gport, dport, got };
}

const sends = (trace: TraceEvent[]) => trace.filter((e) => e.kind === 'evtchn-send');
const upcalls = (trace: TraceEvent[]) => trace.filter((e) => e.kind === 'evtchn-upcall');
const flowsOf = (e: TraceEvent): number[] =>
  e.fields?.flow !== undefined ? [e.fields.flow as number] : (e.fields?.flows as number[]);

describe('event-channel trace flows', () => {
  it('one send, one upcall carrying its flow id', () => {
    const { trace, gEv, dEv, gport, dport, got } = setup();
    expect(trace).toEqual([]);
    expect(dEv.notify(dport)).toBe(0);
    expect(gEv.handleUpcall()).toBe(1);
    expect(got).toEqual([gport]);
    const [s] = sends(trace);
    const [u] = upcalls(trace);
    expect(s.fields).toEqual({ port: dport, flow: expect.any(Number) });
    expect(s.dom).toBe(0);
    expect(u.fields).toEqual({ port: gport, flow: s.fields!.flow });
    expect(u.dom).not.toBe(0);
    for (const e of trace) expect(checkEvent(e)).toBeUndefined();
  });

  it.each([2, 3, 7])('%i sends before one upcall coalesce: one upcall lists them all, in order', (n) => {
    const { trace, gEv, dEv, dport, got } = setup();
    for (let i = 0; i < n; i++) dEv.notify(dport);
    expect(gEv.handleUpcall()).toBe(1);
    expect(got).toHaveLength(1);
    const ups = upcalls(trace);
    expect(ups).toHaveLength(1);
    expect(ups[0].fields!.flows).toEqual(sends(trace).map((e) => e.fields!.flow));
    expect(ups[0].fields!.flow).toBeUndefined();
    expect(checkEvent(ups[0])).toBeUndefined();
  });

  it('every send is answered exactly once over many rounds, both directions', () => {
    const { trace, g, gEv, dEv, gport, dport } = setup();
    const pattern = [1, 0, 2, 1, 3, 0, 1];
    for (const k of pattern) {
      for (let i = 0; i < k; i++) dEv.notify(dport);
      gEv.handleUpcall();
      gEv.notify(gport);
      dEv.handleUpcall();
    }
    const sent = sends(trace).map((e) => e.fields!.flow as number);
    const answered = upcalls(trace).flatMap(flowsOf);
    expect(sent).toHaveLength(pattern.reduce((a, b) => a + b, 0) + pattern.length);
    expect([...answered].sort((a, b) => a - b)).toEqual([...sent].sort((a, b) => a - b));
    expect(new Set(sent).size).toBe(sent.length);
    // Each upcall is in the receiving domain and names its own port.
    for (const u of upcalls(trace)) expect(u.fields!.port).toBe(u.dom === 0 ? dport : gport);
    expect(g.domid).toBeGreaterThan(0);
  });

  it('an upcall that delivers no new send (the bind-time event) runs the handler and traces nothing', () => {
    const { trace, g, gEv, dEv } = setup();
    const dport2 = dEv.allocUnbound(g.domid, () => {});
    let ran = 0;
    gEv.bindInterdomain(0, dport2, () => ran++); // Xen marks the new local port pending
    expect(gEv.handleUpcall()).toBe(1);
    expect(ran).toBe(1);
    expect(upcalls(trace)).toHaveLength(0);
  });

  it('sends made while the port was masked are delivered, and traced, on unmask', () => {
    const { trace, gEv, dEv, gport, dport } = setup();
    gEv.mask(gport);
    dEv.notify(dport);
    dEv.notify(dport);
    expect(gEv.handleUpcall()).toBe(0);
    expect(upcalls(trace)).toHaveLength(0);
    gEv.unmask(gport);
    expect(gEv.handleUpcall()).toBe(1);
    expect(upcalls(trace)[0].fields!.flows).toEqual(sends(trace).map((e) => e.fields!.flow));
  });

  it('sends made before the handler was bound are delivered by its first upcall', () => {
    const host = makeHost();
    const g = host.guest();
    const trace: TraceEvent[] = [];
    const gEv = new GuestEvents(g.hc, { env: recordingEnv(g.domid, trace) });
    const dEv = new GuestEvents(host.d0, { env: recordingEnv(0, trace) });
    const gport = gEv.allocUnbound(0); // no handler yet
    const dport = dEv.bindInterdomain(g.domid, gport, () => {});
    dEv.notify(dport);
    gEv.bind(gport, () => {});
    expect(gEv.handleUpcall()).toBe(1);
    expect(upcalls(trace).map((e) => e.fields!.flow)).toEqual(sends(trace).map((e) => e.fields!.flow));
  });

  it('a closed and reallocated port starts afresh: its first upcall names only the new sends', () => {
    const { host, trace, g, gEv, dEv, dport, gport } = setup();
    dEv.notify(dport);
    gEv.handleUpcall();
    expect(gEv.close(gport)).toBe(0);
    dEv.close(dport);
    const again = gEv.allocUnbound(0, () => {});
    expect(again).toBe(gport);
    const d2 = dEv.bindInterdomain(g.domid, again, () => {});
    dEv.handleUpcall();
    dEv.notify(d2);
    gEv.handleUpcall();
    const ups = upcalls(trace);
    expect(ups).toHaveLength(2);
    expect(ups[1].fields).toEqual({ port: again, flow: sends(trace)[1].fields!.flow });
    expect(ups[1].fields!.flow).not.toBe(ups[0].fields!.flow);
    expect(host.d0.domid).toBe(0);
  });

  it(`a backlog above ${MAX_UPCALL_FLOWS} sends lists the latest and counts the rest`, () => {
    const { trace, gEv, dEv, dport } = setup();
    const n = MAX_UPCALL_FLOWS + 5;
    for (let i = 0; i < n; i++) dEv.notify(dport);
    gEv.handleUpcall();
    const [u] = upcalls(trace);
    const sent = sends(trace).map((e) => e.fields!.flow);
    expect(u.fields!.flows).toEqual(sent.slice(5));
    expect(u.fields!.unlisted).toBe(5);
  });

  it('without an env nothing is traced and delivery is unchanged', () => {
    const host = makeHost();
    const g = host.guest();
    const gEv = new GuestEvents(g.hc);
    const dEv = new GuestEvents(host.d0);
    let n = 0;
    const gport = gEv.allocUnbound(0, () => n++);
    const dport = dEv.bindInterdomain(g.domid, gport, () => {});
    expect(dEv.notify(dport)).toBe(0);
    expect(gEv.handleUpcall()).toBe(1);
    expect(n).toBe(1);
  });

  it('a failed notify traces nothing', () => {
    const { trace, dEv } = setup();
    expect(dEv.notify(77)).toBeLessThan(0);
    expect(sends(trace)).toHaveLength(0);
  });
});
