/**
 * Flow arrows in a real run: the hello-grant demo's event-channel notifications, traced by the guests'
 * event layer, pair every evtchn-send with the evtchn-upcall that delivers it, and the Perfetto view
 * draws one arrow per send, in both engines.
 */
import { describe, expect, it } from 'vitest';
import type { TraceEvent } from '../../emulator/runtime/engine.js';
import { runScenario } from '../../emulator/scenario/run.js';
import { checkChromeTrace, toChromeTrace } from '../../emulator/trace/perfetto.js';
import { checkEvent } from '../../emulator/trace/vocabulary.js';
import { THREADS_TIME_SCALE } from '../threads-time.js';

const helloGrant = new URL('../../scenarios/hello-grant.yaml', import.meta.url).pathname;

interface EvtchnPair {
  send: TraceEvent;
  upcall: TraceEvent;
}

function upcallFlows(e: TraceEvent): number[] {
  return e.fields?.flow !== undefined ? [e.fields.flow as number] : (e.fields?.flows as number[]);
}

/** Each send with the one upcall naming its flow; throws on a flow answered twice or never. */
function evtchnPairs(trace: readonly TraceEvent[]): EvtchnPair[] {
  const upcallOf = new Map<number, TraceEvent>();
  for (const u of trace.filter((e) => e.kind === 'evtchn-upcall')) {
    for (const flow of upcallFlows(u)) {
      if (upcallOf.has(flow)) throw new Error(`flow ${flow} delivered twice`);
      upcallOf.set(flow, u);
    }
  }
  const sends = trace.filter((e) => e.kind === 'evtchn-send');
  const pairs = sends.map((send) => {
    const upcall = upcallOf.get(send.fields!.flow as number);
    if (upcall === undefined) throw new Error(`send ${JSON.stringify(send.fields)} never delivered`);
    return { send, upcall };
  });
  if (upcallOf.size !== sends.length)
    throw new Error(`${upcallOf.size - sends.length} upcall flows without a send`);
  return pairs;
}

function drawn(trace: TraceEvent[]): { s: number; f: number; problems: string[] } {
  const ct = toChromeTrace(trace);
  const ev = ct.traceEvents.filter((e) => e.cat === 'evtchn');
  return {
    s: ev.filter((e) => e.ph === 's').length,
    f: ev.filter((e) => e.ph === 'f').length,
    problems: checkChromeTrace(ct),
  };
}

describe('event-channel flows in the hello-grant demo', () => {
  it('sim: every send pairs with the upcall that delivers it, and Perfetto draws each', async () => {
    const r = await runScenario(helloGrant, { engine: 'sim', seed: 1 });
    expect(r.verdict).toBe('pass');
    const pairs = evtchnPairs(r.trace);
    // 10 pings and 10 pongs, and pong's goodbye after it unmaps
    expect(pairs.length).toBeGreaterThanOrEqual(21);
    for (const { send, upcall } of pairs) {
      expect(checkEvent(send)).toBeUndefined();
      expect(checkEvent(upcall)).toBeUndefined();
      expect(upcall.dom).not.toBe(send.dom); // interdomain: the peer takes the upcall
      expect(upcall.t).toBeGreaterThanOrEqual(send.t);
    }
    const d = drawn(r.trace);
    expect(d.problems).toEqual([]);
    expect(d.s).toBe(pairs.length);
    expect(d.f).toBe(pairs.length);
  }, 60_000);

  it('sim: the same seed gives the same flow ids', async () => {
    const ids = async () =>
      (await runScenario(helloGrant, { engine: 'sim', seed: 4 })).trace
        .filter((e) => e.kind === 'evtchn-send' || e.kind === 'evtchn-upcall')
        .map((e) => `${e.dom} ${e.kind} ${JSON.stringify(e.fields)}`);
    expect(await ids()).toEqual(await ids());
  }, 60_000);

  it('threads: as many flow pairs as sim, and a valid Perfetto trace', async () => {
    const sim = await runScenario(helloGrant, { engine: 'sim', seed: 1 });
    const thr = await runScenario(helloGrant, { engine: 'threads', timeScale: THREADS_TIME_SCALE });
    expect(thr.verdict).toBe('pass');
    const simPairs = evtchnPairs(sim.trace);
    const thrPairs = evtchnPairs(thr.trace);
    expect(thrPairs.length).toBe(simPairs.length);
    // The sender traces a send before making it, so even across workers its arrow is drawn.
    const d = drawn(thr.trace);
    expect(d.problems).toEqual([]);
    expect(d.s).toBe(thrPairs.length);
    expect(d.f).toBe(thrPairs.length);
  }, 60_000);
});
