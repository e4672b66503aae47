/**
 * (b) Event channels between two domains on the threads engine: a one-way stream (the sender publishes
 * a sequence number and notifies, at most WINDOW ahead of the receiver, which acknowledges by its own
 * notification, the hold-off of a ring) and ping-pong round trips. Both sides use drivers/events.ts over
 * the hypervisor's 2-level event channels; upcalls cross threads through the engine's kick words.
 *
 * This file is also the domain program the two workers run (`boot`).
 */
import { GuestEvents } from '../drivers/events.js';
import { hypervisorBuffers } from '../emulator/machine/shared-names.js';
import type { DomainContext, DomainProgram } from '../emulator/runtime/engine.js';
import { Hypervisor } from '../hypervisor/hypervisor.js';
import type { BenchCase } from './harness.js';
import { onTwoDomains } from './two-domains.js';

export const EVTCHN_ONE_WAY = 'event channel one-way stream, window 32, hold-off (threads)';
export const EVTCHN_ROUND_TRIP = 'event channel round trips (threads)';
const WINDOW = 32;

interface Words {
  /** Sender's sequence, receiver's acknowledged sequence, and the two event thresholds (ring.h's
   *  req_event and rsp_event): a side notifies only when the other asked for that value. */
  seq: Int32Array;
}
const SEQ = 0;
const ACKED = 1;
const RECV_EVENT = 2;
const SEND_EVENT = 3;

export function boot(ctx: DomainContext): DomainProgram {
  const { env } = ctx;
  const hv = Hypervisor.attach(hypervisorBuffers(ctx.shared), ctx.kicker);
  const hc = hv.hypercalls(env.domid);
  const events = new GuestEvents(hc);
  events.attach(env);
  const w: Words = { seq: new Int32Array(ctx.shared.words) };
  const q = env.waitQueue('bench events');
  let port = -1;
  const onEvent = (): void => q.wakeAll();
  /** The sender's side of the hold-off: ask for an event once `target` is acknowledged, then look again. */
  const waitAcked = async (target: number): Promise<void> => {
    if (Atomics.load(w.seq, ACKED) >= target) return;
    Atomics.store(w.seq, SEND_EVENT, target);
    await env.wait(q, () => Atomics.load(w.seq, ACKED) >= target, { what: `acknowledgement of ${target}` });
  };
  return {
    async listen(peer: number): Promise<number> {
      port = events.allocUnbound(peer, onEvent);
      return port;
    },
    async connect(peer: number, remotePort: number): Promise<void> {
      port = events.bindInterdomain(peer, remotePort, onEvent);
      if (port <= 0) throw new Error(`bench: bind_interdomain failed (${port})`);
    },
    /** One-way sender: returns real ms for n messages. */
    async send(n: number): Promise<number> {
      const t0 = performance.now();
      for (let i = 1; i <= n; i++) {
        if (i - Atomics.load(w.seq, ACKED) > WINDOW) await waitAcked(i - WINDOW);
        Atomics.store(w.seq, SEQ, i);
        // RING_PUSH_REQUESTS_AND_CHECK_NOTIFY for one entry: notify only if the receiver asked for i.
        if (Atomics.load(w.seq, RECV_EVENT) === i) events.notify(port);
      }
      await waitAcked(n);
      return performance.now() - t0;
    },
    async receive(n: number): Promise<void> {
      let acked = 0;
      while (acked < n) {
        let seq = Atomics.load(w.seq, SEQ);
        if (seq === acked) {
          // RING_FINAL_CHECK_FOR_REQUESTS: ask for an event at the next message, then look again.
          Atomics.store(w.seq, RECV_EVENT, acked + 1);
          seq = Atomics.load(w.seq, SEQ);
          if (seq === acked) {
            const a = acked;
            await env.wait(q, () => Atomics.load(w.seq, SEQ) > a, { what: 'the next message' });
            seq = Atomics.load(w.seq, SEQ);
          }
        }
        const old = acked;
        acked = seq;
        Atomics.store(w.seq, ACKED, acked);
        const want = Atomics.load(w.seq, SEND_EVENT);
        if (want > old && want <= acked) events.notify(port);
      }
    },
    /** Ping side of n round trips: returns real ms. */
    async ping(n: number): Promise<number> {
      const t0 = performance.now();
      for (let i = 1; i <= n; i++) {
        Atomics.store(w.seq, SEQ, i);
        events.notify(port);
        await env.wait(q, () => Atomics.load(w.seq, ACKED) === i, { what: `pong ${i}` });
      }
      return performance.now() - t0;
    },
    async pong(n: number): Promise<void> {
      for (let i = 1; i <= n; i++) {
        await env.wait(q, () => Atomics.load(w.seq, SEQ) === i, { what: `ping ${i}` });
        Atomics.store(w.seq, ACKED, i);
        events.notify(port);
      }
    },
  };
}

/** Runs `mode` between two domains in two workers; returns real ms for n messages. */
export async function measureEvtchn(mode: 'stream' | 'round-trip', n: number): Promise<number> {
  const host = {
    module: import.meta.url,
    names: ['sender', 'receiver'] as [string, string],
    shared: { words: new SharedArrayBuffer(16) },
  };
  return onTwoDomains(host, async (ctl, a, b) => {
    const port = (await ctl.call(b, 'listen', a)) as number;
    await ctl.call(a, 'connect', b, port);
    const q = ctl.env.waitQueue('receiver');
    let done = false;
    ctl.env.spawn('receiver', async () => {
      await ctl.call(b, mode === 'stream' ? 'receive' : 'pong', n);
      done = true;
      q.wakeAll();
    });
    const ms = (await ctl.call(a, mode === 'stream' ? 'send' : 'ping', n)) as number;
    await ctl.env.wait(q, () => done, { what: 'the receiver to finish' });
    return ms;
  });
}

export function evtchnCases(baseline: string): BenchCase[] {
  const rt = { us: Number.NaN };
  return [
    {
      name: EVTCHN_ONE_WAY,
      unit: 'ops/s',
      baseline,
      run: async () => {
        const n = 1_000_000;
        return (n * 1000) / (await measureEvtchn('stream', n));
      },
    },
    {
      get name() {
        return Number.isNaN(rt.us) ? EVTCHN_ROUND_TRIP : `${EVTCHN_ROUND_TRIP}, ${rt.us.toFixed(1)} µs each`;
      },
      unit: 'ops/s',
      baseline,
      run: async () => {
        const n = 50_000;
        const ms = await measureEvtchn('round-trip', n);
        rt.us = (ms * 1000) / n;
        return (n * 1000) / ms;
      },
    },
  ];
}
