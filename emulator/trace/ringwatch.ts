/**
 * xen-ringwatch style ring lines from `ring` trace events (vocabulary.ts).
 *
 * A backend's io_ring node (the sysfs file xen-ringwatch polled, and tapdisk3's io_ring stats file) reads
 *   nr_ents 32
 *   req prod 7 cons 7 event 8
 *   rsp prod 7 pvt 7 event 8
 * from the backend's view: shared req_prod/req_event/rsp_prod/rsp_event plus its private req_cons and
 * rsp_prod_pvt. Only snapshots carrying those back-end private indices (req_cons, rsp_prod_pvt) make
 * ring lines; nr_ents is printed when the snapshot carries it.
 *
 * Each message-queue half is classified against the previous sample of the same ring, as xen-ringwatch did
 * (one line per snapshot: the last sample taken at an earlier instant, since a peer cannot move in between
 * snapshots of one instant):
 * IDLE  nothing outstanding;
 * BUSY  work outstanding and the consumer moved (or the work is new since the previous sample);
 * STUCK work was already outstanding at the previous sample and the consumer has not moved since —
 *       pending req/rsp without consumer progress, the signature of a lost or suppressed notification.
 * The response consumer (the frontend) is seen only through rsp_event, which blkfront re-arms to
 * rsp_cons + 1 after each pass over the responses; so "outstanding responses" are those pushed past
 * rsp_event - 1. (Simplified: a frontend that polls without re-arming looks STUCK here, as it did to
 * xen-ringwatch.)
 * Each line also says whether the peer's next single push notifies (prod + 1 == event): the part of the
 * protocol that decides whether a kick is sent at all.
 */
import type { TraceEvent } from '../runtime/engine.js';
import { checkEvent } from './vocabulary.js';

export type HalfState = 'BUSY' | 'IDLE' | 'STUCK';

/** One backend-view sample of a ring. */
export interface RingSample {
  t: number;
  dom: number;
  ring: string;
  /** nr_ents, when the emitter said. */
  size?: number;
  reqProd: number;
  reqCons: number;
  reqEvent: number;
  rspProd: number;
  rspProdPvt: number;
  rspEvent: number;
}

/** Signed distance a - b of two free-running 32-bit indices. */
function ahead(a: number, b: number): number {
  return (a - b) | 0;
}

/**
 * The backend-view sample in a `ring` event, or undefined when the event is another kind or carries no
 * back-end private indices. A malformed snapshot throws, naming the field and value.
 */
export function ringSampleOf(e: TraceEvent): RingSample | undefined {
  if (e.kind !== 'ring') return undefined;
  const problem = checkEvent(e);
  if (problem !== undefined) throw new Error(`ring snapshot at ${e.t} ms: ${problem}`);
  const f = e.fields!;
  if (typeof f.req_cons !== 'number' || typeof f.rsp_prod_pvt !== 'number') return undefined;
  const sample: RingSample = {
    t: e.t,
    dom: e.dom,
    ring: f.ring as string,
    reqProd: f.req_prod as number,
    reqCons: f.req_cons,
    reqEvent: f.req_event as number,
    rspProd: f.rsp_prod as number,
    rspProdPvt: f.rsp_prod_pvt,
    rspEvent: f.rsp_event as number,
  };
  if (typeof f.nr_ents === 'number') sample.size = f.nr_ents;
  return sample;
}

/** Requests the backend has not consumed yet. */
export function pendingRequests(s: RingSample): number {
  return Math.max(0, ahead(s.reqProd, s.reqCons));
}

/** Responses pushed that the frontend has not acknowledged by re-arming rsp_event. */
export function unackedResponses(s: RingSample): number {
  return Math.max(0, ahead(s.rspProd, s.rspEvent - 1));
}

/** Request half: consumer = the backend (req_cons). */
export function classifyRequests(prev: RingSample | undefined, cur: RingSample): HalfState {
  if (pendingRequests(cur) === 0) return 'IDLE';
  if (prev !== undefined && pendingRequests(prev) > 0 && prev.reqCons === cur.reqCons) return 'STUCK';
  return 'BUSY';
}

/**
 * Response half: two consumers of outstanding work — the frontend (acknowledges through rsp_event) and
 * the backend's own push of privately produced responses (rsp_prod_pvt ahead of rsp_prod).
 */
export function classifyResponses(prev: RingSample | undefined, cur: RingSample): HalfState {
  const unpushed = ahead(cur.rspProdPvt, cur.rspProd) > 0;
  const unacked = unackedResponses(cur) > 0;
  if (!unpushed && !unacked) return 'IDLE';
  if (prev !== undefined) {
    const pushStuck = unpushed && ahead(prev.rspProdPvt, prev.rspProd) > 0 && prev.rspProd === cur.rspProd;
    const ackStuck = unacked && unackedResponses(prev) > 0 && prev.rspEvent === cur.rspEvent;
    if (pushStuck || ackStuck) return 'STUCK';
  }
  return 'BUSY';
}

/** Whether the next single push by the producer of a half would notify the consumer (RING_PUSH_*). */
export function nextPushNotifies(prod: number, event: number): boolean {
  return (prod + 1) >>> 0 === event >>> 0;
}

/** The three lines of the io_ring node, as the backend printed them. */
export function ioRingLines(s: RingSample): string[] {
  const lines = [
    `req prod ${s.reqProd >>> 0} cons ${s.reqCons >>> 0} event ${s.reqEvent >>> 0}`,
    `rsp prod ${s.rspProd >>> 0} pvt ${s.rspProdPvt >>> 0} event ${s.rspEvent >>> 0}`,
  ];
  return s.size === undefined ? lines : [`nr_ents ${s.size}`, ...lines];
}

/** Bound on the polls of one `ringwatchLines` call. */
export const MAX_POLLS = 100_000;

export interface RingwatchOptions {
  /**
   * Sample every ring at this period (ms), as a polling xen-ringwatch would; each sample is the latest
   * snapshot at or before that time. Default: one sample per snapshot event.
   */
  intervalMs?: number;
  /** Domain names for the header line (default "dom<N>"). */
  domainNames?: ReadonlyMap<number, string>;
}

function header(s: RingSample, at: number, names?: ReadonlyMap<number, string>): string {
  const dom = names?.get(s.dom) ?? `dom${s.dom}`;
  return `${(at / 1000).toFixed(6)} ${dom} ${s.ring}`;
}

/** Lines for one sample: a header, nr_ents (when known), and the two halves with class and notify hint. */
export function ringwatchBlock(
  prev: RingSample | undefined,
  cur: RingSample,
  at: number = cur.t,
  names?: ReadonlyMap<number, string>,
): string[] {
  const lines = ioRingLines(cur);
  const [req, rsp] = lines.slice(-2);
  const reqHint = nextPushNotifies(cur.reqProd, cur.reqEvent) ? 'next push notifies' : 'next push silent';
  const rspHint = nextPushNotifies(cur.rspProd, cur.rspEvent) ? 'next push notifies' : 'next push silent';
  return [
    header(cur, at, names),
    ...lines.slice(0, -2).map((l) => `  ${l}`),
    `  ${req}  ${classifyRequests(prev, cur)} (${reqHint})`,
    `  ${rsp}  ${classifyResponses(prev, cur)} (${rspHint})`,
  ];
}

/** xen-ringwatch lines for every backend ring snapshot in `events` (in time order). */
export function ringwatchLines(events: readonly TraceEvent[], options: RingwatchOptions = {}): string[] {
  const samples: RingSample[] = [];
  for (const e of events) {
    const s = ringSampleOf(e);
    if (s !== undefined) samples.push(s);
  }
  samples.sort((a, b) => a.t - b.t);
  const key = (s: RingSample) => `${s.dom}/${s.ring}`;
  const lines: string[] = [];
  const prev = new Map<string, RingSample>();
  if (options.intervalMs === undefined) {
    // Each snapshot is judged against the ring as it was at an earlier instant: snapshots taken at one
    // instant (a wake, its pass, the responses it pushed) left the peer no time to move, so between
    // them nothing is STUCK.
    const before = new Map<string, RingSample | undefined>();
    for (const s of samples) {
      const k = key(s);
      const last = prev.get(k);
      if (last !== undefined && last.t < s.t) before.set(k, last);
      lines.push(...ringwatchBlock(before.get(k), s, s.t, options.domainNames));
      prev.set(k, s);
    }
    return lines;
  }
  const period = options.intervalMs;
  if (!(Number.isFinite(period) && period > 0)) {
    throw new Error(`intervalMs must be a positive number of milliseconds, got ${period}`);
  }
  if (samples.length === 0) return lines;
  const end = samples[samples.length - 1].t;
  const polls = (end - samples[0].t) / period;
  if (polls > MAX_POLLS) {
    throw new Error(
      `intervalMs ${period} gives ${Math.ceil(polls)} polls (at most ${MAX_POLLS}); use a longer interval`,
    );
  }
  const latest = new Map<string, RingSample>();
  let next = 0;
  // Poll from the first period boundary at or after the first snapshot until one past the last.
  for (let at = Math.ceil(samples[0].t / period) * period; ; at += period) {
    while (next < samples.length && samples[next].t <= at) {
      latest.set(key(samples[next]), samples[next]);
      next++;
    }
    for (const [k, s] of latest) {
      lines.push(...ringwatchBlock(prev.get(k), s, at, options.domainNames));
      prev.set(k, s);
    }
    if (at >= end) break;
  }
  return lines;
}
