/**
 * Watch flows: xenstored's watch-fire and the watcher's watch-callback carry the same flow id, over a
 * guest's ring and over dom0's direct connections, in both engines; the Perfetto view draws each pair.
 */
import { describe, expect, it } from 'vitest';
import {
  attachWithWatchStream,
  claimWatchStream,
  WATCH_FLOW_STREAM_BASE,
  watchFlowId,
} from '../../drivers/xenbus/watch-flow.js';
import { XsType } from '../../drivers/xenbus/xs-wire.js';
import { createEngine } from '../../emulator/runtime/create-engine.js';
import type { Controller, Engine, RunResult, TraceEvent } from '../../emulator/runtime/engine.js';
import { checkChromeTrace, toChromeTrace } from '../../emulator/trace/perfetto.js';
import { checkEvent } from '../../emulator/trace/vocabulary.js';
import { XenstoreDaemon } from '../../emulator/xenstored/daemon.js';
import { shareXsRings } from '../fixtures/dom0-xenstore.js';
import { THREADS_TIME_SCALE } from '../threads-time.js';

const KEY_SPAN = 2 ** 32;
const keyOf = (flow: number) => Math.floor(flow / KEY_SPAN);

/** dom0 (watch-flow-dom0.ts) and guest 1 (fixtures/xs-guest.ts) sharing the guest's xenstore ring. */
async function addWatchFlowHost(engine: Engine, guestConfig?: Record<string, unknown>): Promise<void> {
  shareXsRings(engine, [1]);
  await engine.addDomain({
    domid: 0,
    name: 'dom0',
    module: new URL('./watch-flow-dom0.ts', import.meta.url).href,
    config: { guests: [1] },
  });
  await engine.addDomain({
    domid: 1,
    name: 'guest1',
    module: new URL('./fixtures/xs-guest.ts', import.meta.url).href,
    ...(guestConfig === undefined ? {} : { config: guestConfig }),
  });
}

async function runWithGuest<T>(
  kind: 'sim' | 'threads',
  body: (ctl: Controller) => Promise<T>,
): Promise<RunResult<T>> {
  const engine =
    kind === 'threads'
      ? createEngine('threads', { timeScale: THREADS_TIME_SCALE })
      : createEngine('sim', { seed: 7 });
  try {
    await addWatchFlowHost(engine);
    return await engine.run(body);
  } finally {
    await engine.close();
  }
}

/** Guest watches (registration events and two writes), dom0's two clients watching the guest's data. */
async function workload(ctl: Controller): Promise<{ guestLog: string[]; dom0Seen: string[] }> {
  await ctl.call(0, 'watchBoth', '/local/domain/1/data');
  const log = (await ctl.call(1, 'watchSerial')) as { what: string }[];
  await ctl.call(1, 'op', 'write', 'data/x', '1');
  await ctl.call(1, 'op', 'write', 'data/y', '2');
  // dom0's 2 clients x (registration + data/x + data/y); a timed settle would be a host-time window in threads.
  await ctl.call(0, 'waitSeen', 6);
  return { guestLog: log.map((e) => e.what), dom0Seen: (await ctl.call(0, 'seen')) as string[] };
}

const fires = (t: TraceEvent[]) => t.filter((e) => e.kind === 'watch-fire');
const callbacks = (t: TraceEvent[]) => t.filter((e) => e.kind === 'watch-callback');

/** Every callback matched with its fire by flow id: same path and token, the watcher's domain. */
function pairs(trace: TraceEvent[]): { fire: TraceEvent; callback: TraceEvent }[] {
  const byFlow = new Map<number, TraceEvent>();
  for (const f of fires(trace)) {
    const flow = f.fields!.flow as number;
    expect(byFlow.has(flow), `flow ${flow} fired twice`).toBe(false);
    byFlow.set(flow, f);
  }
  return callbacks(trace).map((c) => {
    const fire = byFlow.get(c.fields!.flow as number);
    expect(fire, `callback ${JSON.stringify(c.fields)} has no watch-fire`).toBeDefined();
    expect(fire!.fields!.path).toBe(c.fields!.path);
    expect(fire!.fields!.token).toBe(c.fields!.token);
    expect(fire!.fields!.watcher).toBe(c.dom);
    return { fire: fire!, callback: c };
  });
}

function drawnFlows(trace: TraceEvent[]): { s: number; f: number; problems: string[] } {
  const ct = toChromeTrace(trace);
  const watch = ct.traceEvents.filter((e) => e.cat === 'watch');
  return {
    s: watch.filter((e) => e.ph === 's').length,
    f: watch.filter((e) => e.ph === 'f').length,
    problems: checkChromeTrace(ct),
  };
}

describe('watch flows over the ring and direct connections (sim)', () => {
  it('every callback pairs with the watch-fire of its event; Perfetto draws them all', async () => {
    const r = await runWithGuest('sim', workload);
    expect(r.error).toBeUndefined();
    expect(r.outcome).toBe('completed');
    expect(r.value!.guestLog).toEqual(['writes', 'A start a/x', 'A end a/x', 'B b/y']);
    const matched = pairs(r.trace);
    // guest: 2 registrations + a/x + b/y; dom0: 2 clients x (registration + data/x + data/y)
    expect(matched).toHaveLength(4 + 6);
    for (const e of [...fires(r.trace), ...callbacks(r.trace)]) expect(checkEvent(e)).toBeUndefined();

    // The guest's events travel its ring: key = its domid. dom0's two clients: two direct streams.
    const guestKeys = new Set(
      matched.filter((p) => p.callback.dom === 1).map((p) => keyOf(p.fire.fields!.flow as number)),
    );
    expect([...guestKeys]).toEqual([1]);
    const dom0Keys = new Set(
      matched.filter((p) => p.callback.dom === 0).map((p) => keyOf(p.fire.fields!.flow as number)),
    );
    expect(dom0Keys.size).toBe(2);
    for (const k of dom0Keys) expect(k).toBeGreaterThan(WATCH_FLOW_STREAM_BASE);
    expect(r.value!.dom0Seen.toSorted()).toEqual(
      [
        'kernel /local/domain/1/data',
        'tool /local/domain/1/data',
        'kernel /local/domain/1/data/x',
        'tool /local/domain/1/data/x',
        'kernel /local/domain/1/data/y',
        'tool /local/domain/1/data/y',
      ].toSorted(),
    );

    // The plain admin connection's events are fired (key 0, dom0's unnumbered stream) with no callback.
    const adminFires = fires(r.trace).filter((f) => f.fields!.token === 'admin');
    expect(adminFires.length).toBeGreaterThan(0);
    for (const f of adminFires) expect(keyOf(f.fields!.flow as number)).toBe(0);

    // Counts along each stream are 1, 2, 3 ... in firing order.
    const perKey = new Map<number, number[]>();
    for (const f of fires(r.trace)) {
      const flow = f.fields!.flow as number;
      perKey.set(keyOf(flow), [...(perKey.get(keyOf(flow)) ?? []), flow % KEY_SPAN]);
    }
    for (const counts of perKey.values()) expect(counts).toEqual(counts.map((_, i) => i + 1));

    const drawn = drawnFlows(r.trace);
    expect(drawn.problems).toEqual([]);
    expect(drawn.s).toBe(matched.length);
    expect(drawn.f).toBe(matched.length);
  });

  it('events xenwatch discards (XSA-349 bound) have a watch-fire and no callback; the rest still pair', async () => {
    const engine = createEngine('sim', { seed: 3 });
    try {
      await addWatchFlowHost(engine, { maxPendingPerWatch: 4 });
      const r = await engine.run(async (ctl) => ctl.call(1, 'flood', 20));
      expect(r.outcome).toBe('completed');
      const { runs, discarded } = r.value as { runs: number; discarded: number };
      expect(discarded).toBeGreaterThan(0);
      const matched = pairs(r.trace);
      const guestFires = fires(r.trace).filter((f) => f.fields!.watcher === 1);
      // registration + 20 writes fired; callbacks ran for all but the discarded ones
      expect(guestFires).toHaveLength(21);
      expect(matched).toHaveLength(runs);
      expect(runs + discarded).toBe(21);
      expect(drawnFlows(r.trace).problems).toEqual([]);
    } finally {
      await engine.close();
    }
  });
});

describe('watch flows on the threads engine', () => {
  it('gives the same pairs as sim', async () => {
    const sim = await runWithGuest('sim', workload);
    const thr = await runWithGuest('threads', workload);
    expect(thr.error).toBeUndefined();
    expect(thr.outcome).toBe('completed');
    const simPairs = pairs(sim.trace);
    const thrPairs = pairs(thr.trace);
    expect(thrPairs).toHaveLength(simPairs.length);
    const summary = (ps: typeof simPairs) =>
      ps.map((p) => `${p.callback.dom} ${String(p.callback.fields!.path)}`).toSorted();
    expect(summary(thrPairs)).toEqual(summary(simPairs));
    const drawn = drawnFlows(thr.trace);
    expect(drawn.problems).toEqual([]);
    expect(drawn.f).toBe(thrPairs.length);
  });
});

describe('watch-flow numbering', () => {
  it('a daemon connection made inside a client attach claims a stream; others do not', () => {
    expect(claimWatchStream(5)).toBe(0);
    const claimed: number[] = [];
    const stream = attachWithWatchStream(() => {
      claimed.push(claimWatchStream(9));
      claimed.push(claimWatchStream(10)); // one claim per attach
    });
    expect(stream).toBe(10);
    expect(claimed).toEqual([10, 0]);
    expect(attachWithWatchStream(() => {})).toBe(0);
    // Nested attaches each meet their own connect.
    let inner = -1;
    const outer = attachWithWatchStream(() => {
      inner = attachWithWatchStream(() => claimWatchStream(3));
      claimWatchStream(4);
    });
    expect([outer, inner]).toEqual([5, 4]);
    expect(claimWatchStream(6)).toBe(0);
  });

  it('ids are safe integers, distinct across keys and counts', () => {
    expect(watchFlowId(1, 1)).toBe(KEY_SPAN + 1);
    expect(watchFlowId(0, 7)).toBe(7);
    expect(Number.isSafeInteger(watchFlowId(2 ** 21 - 1, 2 ** 32 - 1))).toBe(true);
    expect(watchFlowId(3, 2 ** 32 + 2)).toBe(watchFlowId(3, 2));
  });

  it('the daemon counts only events the transport took, per ring domain, and restarts after release', () => {
    const traced: Record<string, unknown>[] = [];
    const daemon = new XenstoreDaemon({
      tracer: { emit: (_c, kind, f) => kind === 'watch-fire' && traced.push(f!) },
    });
    const admin = daemon.connect({ domid: 0, send: () => true });
    admin.request(XsType.MKDIR, '/local/domain/5\0');
    admin.request(XsType.SET_PERMS, '/local/domain/5\0n5\0');
    daemon.introduceDomain(5, 5n, 1);
    let refuse = false;
    const delivered: Uint8Array[] = [];
    const ring = daemon.connect({
      domid: 5,
      send: (m) => {
        if (refuse) return false;
        delivered.push(m);
        return true;
      },
    });
    ring.request(XsType.WATCH, '/local/domain/5\0t\0'); // registration event: count 1
    refuse = true;
    admin.request(XsType.WRITE, '/local/domain/5/a\0x');
    admin.request(XsType.WRITE, '/local/domain/5/a\0y'); // identical pending event: coalesced, not counted
    expect(traced.map((f) => f.flow)).toEqual([watchFlowId(5, 1)]);
    refuse = false;
    ring.outputReady();
    expect(traced.map((f) => f.flow)).toEqual([watchFlowId(5, 1), watchFlowId(5, 2)]);
    expect(traced[1]).toEqual({ path: '/local/domain/5/a', token: 't', flow: watchFlowId(5, 2), watcher: 5 });

    // A reconnected ring of the same domain continues its stream...
    daemon.disconnect(ring);
    const again = daemon.connect({ domid: 5, send: () => true });
    again.request(XsType.WATCH, '/local/domain/5\0u\0');
    expect(traced.at(-1)!.flow).toBe(watchFlowId(5, 3));
    // ...and a released domid starts over (a new guest counts from one).
    daemon.releaseDomain(5);
    daemon.introduceDomain(5, 5n, 1);
    const fresh = daemon.connect({ domid: 5, send: () => true });
    fresh.request(XsType.WATCH, '/local/domain\0v\0');
    expect(traced.at(-1)!.flow).toBe(watchFlowId(5, 1));
  });
});
