/**
 * Chrome trace-event JSON (the "legacy JSON" Perfetto opens in ui.perfetto.dev) from a run's trace.
 *
 * Mapping (vocabulary.ts names the kinds):
 * - pid = a domain (pidOfDomain), named by `process_name` metadata; tid = a task, named by `thread_name`.
 * - request-start/request-end (and blkback's blk-req start/end): nestable async slices ('b'/'e', cat =
 *   component, numeric id per lifetime), because requests overlap and outlive the task that issued them.
 * - evtchn-send -> evtchn-upcall and watch-fire -> watch-callback: a zero-length complete slice ('X') at
 *   each end, carrying a v1 flow ('s' on the sender, 'f' with bp "e" on the receiver): a v1 flow binds to
 *   the slice enclosing it on its thread, and instants are not slices.
 * - ring: counters ('C') of ring occupancy; grant-map/unmap: a "grants mapped" counter.
 * - xenbus-state, logs and everything else: thread instants ('i', s "t"; "p" outside any task); stalls
 *   and deadlocks: global instants (s "g").
 * Timestamps are microseconds of virtual time, so traces are deterministic and diffable.
 */
import type { TraceEvent } from '../runtime/engine.js';
import { checkEvent, type FlowFamily, kindSpec, xenbusStateLabel } from './vocabulary.js';

export type ChromePhase = 'B' | 'E' | 'X' | 'i' | 'I' | 'C' | 'b' | 'n' | 'e' | 'M' | 's' | 't' | 'f';

export interface ChromeTraceEvent {
  name: string;
  ph: ChromePhase;
  pid: number;
  tid?: number;
  ts?: number;
  cat?: string;
  id?: number;
  dur?: number;
  /** Instant scope: global, process, thread. */
  s?: 'g' | 'p' | 't';
  /** Flow binding point: "e" binds an 'f' to the enclosing slice. */
  bp?: 'e';
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: ChromeTraceEvent[];
  displayTimeUnit: 'ms' | 'ns';
}

export interface ChromeTraceOptions {
  /** Names to show instead of "dom<N>" (e.g. 1 -> "guest1"). */
  domainNames?: ReadonlyMap<number, string> | Readonly<Record<number, string>>;
  /** Run end (ms): requests still in flight are closed here; default the last event's time. */
  endTime?: number;
}

/** Process ids start here so that no domain gets pid 0 (the idle task to trace tools). */
export const PID_BASE = 1000;

/** The pid of a domain in the trace (host = the controller pseudo-domain -1). */
export function pidOfDomain(dom: number): number {
  return PID_BASE + dom;
}

/** Milliseconds to trace microseconds, kept to nanosecond precision. */
export function toMicros(ms: number): number {
  return Math.round(ms * 1e6) / 1e3;
}

function domainName(dom: number, names: ChromeTraceOptions['domainNames']): string {
  if (dom < 0) return 'host (scenario driver)';
  const given = names instanceof Map ? names.get(dom) : (names as Record<number, string> | undefined)?.[dom];
  return given ?? `dom${dom}`;
}

/** Fields as JSON: bigints become decimal strings, undefined and functions go, cycles are cut. */
export function jsonSafe(value: unknown, depth = 0, seen: Set<object> = new Set()): unknown {
  switch (typeof value) {
    case 'bigint':
      return value.toString();
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'string':
    case 'boolean':
      return value;
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return null;
  if (depth > 8 || seen.has(value as object)) return '[…]';
  seen.add(value as object);
  let out: unknown;
  if (Array.isArray(value)) {
    out = value.map((v) => jsonSafe(v, depth + 1, seen) ?? null);
  } else if (value instanceof Map) {
    out = [...value.entries()].map(([k, v]) => [jsonSafe(k, depth + 1, seen), jsonSafe(v, depth + 1, seen)]);
  } else if (value instanceof Set) {
    out = [...value].map((v) => jsonSafe(v, depth + 1, seen) ?? null);
  } else if (ArrayBuffer.isView(value)) {
    out = `[${value.constructor.name} ${(value as ArrayBufferView).byteLength} bytes]`;
  } else {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const j = jsonSafe(v, depth + 1, seen);
      if (j !== undefined) o[k] = j;
    }
    out = o;
  }
  seen.delete(value as object);
  return out;
}

function argsOf(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  return (jsonSafe(fields ?? {}) as Record<string, unknown>) ?? {};
}

function idKey(v: unknown): string {
  return typeof v === 'bigint' ? `${v}` : typeof v === 'number' ? `${v}` : `s:${String(v)}`;
}

function flowIdsIn(e: TraceEvent): number[] {
  const fl = e.fields ?? {};
  const ids: number[] = [];
  if (typeof fl.flow === 'number') ids.push(fl.flow);
  if (Array.isArray(fl.flows))
    for (const x of fl.flows) if (typeof x === 'number' && !ids.includes(x)) ids.push(x);
  return ids;
}

/** Unsigned 32-bit distance a - b, as ring.h computes free-running index differences. */
function ringDiff(a: number, b: number): number {
  return (a - b) >>> 0;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function instantName(e: TraceEvent): string {
  const fl = e.fields ?? {};
  switch (e.kind) {
    case 'xs-request':
      return `xs ${String(fl.type)}${fl.path === undefined ? '' : ` ${String(fl.path)}`}`;
    case 'xs-reply':
      return `xs ${String(fl.type)} reply${fl.error === undefined ? '' : ` ${String(fl.error)}`}`;
    case 'op':
      return truncate(`${e.comp} ${String(fl.op)}`, 120);
    case 'send':
    case 'receive':
      return `${e.comp} ${e.kind} ${String(fl.type ?? fl.undecodable ?? '')}`.trimEnd();
    default:
      return `${e.comp} ${e.kind}`;
  }
}

function stallArgs(fl: Record<string, unknown>): Record<string, unknown> {
  const args = argsOf(fl);
  if (Array.isArray(fl.chain)) {
    args.chain = fl.chain.map((link) => {
      const l = (link ?? {}) as Record<string, unknown>;
      return `${String(l.holder)} waits for ${String(l.waitsFor)}`;
    });
  }
  return args;
}

interface OpenRequest {
  id: number;
  cat: string;
  name: string;
  pid: number;
  tid: number;
}

/** Build the Chrome trace JSON object for `events` (any order; sorted by time, stable). */
/**
 * Worker threads stamp events with clocks that can disagree by microseconds (more once divided by a small
 * timeScale), so a watch callback or an upcall can appear to precede the firing or send that caused it. The
 * receiving half of a flow never precedes its sending half: such an event is placed just after its sender.
 */
function causallyOrdered(events: readonly TraceEvent[]): readonly TraceEvent[] {
  const sentAt = new Map<string, number>();
  for (const e of events) {
    const spec = kindSpec(e.kind, e.comp);
    if (spec?.perfetto !== 'flow-out' || typeof e.fields?.flow !== 'number') continue;
    const key = `${spec.flow}:${e.fields.flow}`;
    sentAt.set(key, Math.min(sentAt.get(key) ?? e.t, e.t));
  }
  return events.map((e) => {
    const spec = kindSpec(e.kind, e.comp);
    if (spec?.perfetto !== 'flow-in') return e;
    let latest = -Infinity;
    for (const id of flowIdsIn(e)) latest = Math.max(latest, sentAt.get(`${spec.flow}:${id}`) ?? -Infinity);
    return e.t > latest ? e : { ...e, t: latest + 1e-6 };
  });
}

export function toChromeTrace(events: readonly TraceEvent[], options: ChromeTraceOptions = {}): ChromeTrace {
  const sorted = causallyOrdered(events)
    .map((e, i) => ({ e, i }))
    .sort((a, b) => a.e.t - b.e.t || a.i - b.i);
  const problems = sorted.map(({ e }) => checkEvent(e));

  // Which flows get arrows: both halves present, the sender first, each id used once per side.
  const drawn = new Map<string, number>(); // `${family}:${flow}` -> trace flow id
  {
    // positions in `sorted`, so a tie in time still puts the sender first
    const outAt = new Map<string, number>();
    const inAt = new Map<string, number>();
    sorted.forEach(({ e }, k) => {
      const spec = kindSpec(e.kind, e.comp);
      if (problems[k] !== undefined || spec?.flow === undefined) return;
      if (spec.perfetto === 'flow-out') {
        const key = `${spec.flow}:${e.fields!.flow}`;
        if (!outAt.has(key)) outAt.set(key, k);
      } else {
        for (const id of flowIdsIn(e)) {
          const key = `${spec.flow}:${id}`;
          if (!inAt.has(key)) inAt.set(key, k);
        }
      }
    });
    let next = 1;
    for (const [key, kOut] of outAt) {
      const kIn = inAt.get(key);
      if (kIn !== undefined && kIn > kOut) drawn.set(key, next++);
    }
  }

  const meta: ChromeTraceEvent[] = [];
  const out: ChromeTraceEvent[] = [];
  const pids = new Set<number>();
  const tids = new Map<string, number>();
  let nextTid = 1;
  const threadOf = (dom: number, task: string): { pid: number; tid: number } => {
    const pid = pidOfDomain(dom);
    if (!pids.has(pid)) {
      pids.add(pid);
      meta.push({ name: 'process_name', ph: 'M', pid, args: { name: domainName(dom, options.domainNames) } });
    }
    const key = `${dom}\u0000${task}`;
    let tid = tids.get(key);
    if (tid === undefined) {
      tid = nextTid++;
      tids.set(key, tid);
      const name = task === '-' ? `${domainName(dom, options.domainNames)} (no task)` : task;
      meta.push({ name: 'thread_name', ph: 'M', pid, tid, args: { name } });
    }
    return { pid, tid };
  };

  const open = new Map<string, OpenRequest>();
  const flowsStarted = new Set<string>();
  const flowsEnded = new Set<string>();
  const grants = new Map<number, number>();
  let nextAsync = 1;
  let lastTs = 0;

  sorted.forEach(({ e }, k) => {
    const { pid, tid } = threadOf(e.dom, e.task);
    const ts = toMicros(e.t);
    lastTs = Math.max(lastTs, ts);
    const fl = e.fields ?? {};
    const spec = kindSpec(e.kind, e.comp);
    const problem = problems[k];
    const instant = (name: string, args: Record<string, unknown>): void => {
      const scope = e.task === '-' ? 'p' : 't';
      out.push({ name, ph: 'i', s: scope, ts, pid, tid, cat: e.comp, args });
    };
    if (problem !== undefined) {
      instant(`${e.comp} ${e.kind}`, { ...argsOf(fl), problem });
      return;
    }
    switch (spec?.perfetto) {
      case 'async-begin':
      case 'async-end':
      case 'async-phase': {
        const ring = String(fl.ring ?? fl.disk);
        const key = `${e.dom}|${e.comp}|${ring}|${idKey(fl.id)}`;
        const begins =
          spec.perfetto === 'async-begin' || (spec.perfetto === 'async-phase' && fl.phase === 'start');
        if (begins) {
          if (open.has(key)) {
            instant(`${e.comp} ${e.kind}`, {
              ...argsOf(fl),
              problem: `id ${idKey(fl.id)} is already in flight`,
            });
            return;
          }
          const req: OpenRequest = {
            id: nextAsync++,
            cat: e.comp,
            name: `${String(fl.op)} ${ring}`,
            pid,
            tid,
          };
          open.set(key, req);
          out.push({ name: req.name, ph: 'b', cat: req.cat, id: req.id, ts, pid, tid, args: argsOf(fl) });
          return;
        }
        const req = open.get(key);
        if (req === undefined) {
          instant(`${e.comp} ${e.kind}`, { ...argsOf(fl), problem: `no start for id ${idKey(fl.id)}` });
          return;
        }
        open.delete(key);
        out.push({ name: req.name, ph: 'e', cat: req.cat, id: req.id, ts, pid, tid, args: argsOf(fl) });
        return;
      }
      case 'flow-out':
      case 'flow-in': {
        const family = spec.flow as FlowFamily;
        const name =
          family === 'evtchn'
            ? `${e.kind === 'evtchn-send' ? 'notify' : 'upcall'} port ${String(fl.port)}`
            : `${e.kind === 'watch-fire' ? 'watch fires' : 'watch callback'} ${String(fl.path)}`;
        out.push({ name, ph: 'X', ts, dur: 0, pid, tid, cat: family, args: argsOf(fl) });
        const ids = spec.perfetto === 'flow-out' ? [fl.flow as number] : flowIdsIn(e);
        for (const id of ids) {
          const key = `${family}:${id}`;
          const flowId = drawn.get(key);
          if (flowId === undefined) continue;
          if (spec.perfetto === 'flow-out' && !flowsStarted.has(key)) {
            flowsStarted.add(key);
            out.push({ name: family, ph: 's', cat: family, id: flowId, ts, pid, tid });
          } else if (spec.perfetto === 'flow-in' && flowsStarted.has(key) && !flowsEnded.has(key)) {
            flowsEnded.add(key);
            out.push({ name: family, ph: 'f', bp: 'e', cat: family, id: flowId, ts, pid, tid });
          }
        }
        return;
      }
      case 'ring-counter': {
        const args: Record<string, number> = {
          inflight:
            typeof fl.inflight === 'number'
              ? fl.inflight
              : ringDiff(fl.req_prod as number, fl.rsp_prod as number),
        };
        if (typeof fl.req_cons === 'number') args.requests = ringDiff(fl.req_prod as number, fl.req_cons);
        if (typeof fl.rsp_cons === 'number') args.responses = ringDiff(fl.rsp_prod as number, fl.rsp_cons);
        out.push({ name: `ring ${String(fl.ring)}`, ph: 'C', ts, pid, tid, cat: e.comp, args });
        return;
      }
      case 'grant-counter': {
        let mapped: number;
        if (typeof fl.mapped === 'number') mapped = fl.mapped;
        else {
          const n = typeof fl.count === 'number' ? fl.count : 1;
          mapped = (grants.get(e.dom) ?? 0) + (e.kind === 'grant-map' ? n : -n);
        }
        grants.set(e.dom, mapped);
        out.push({ name: 'grants mapped', ph: 'C', ts, pid, tid, cat: e.comp, args: { mapped } });
        return;
      }
      case 'xenbus-state': {
        const to = xenbusStateLabel(fl.to);
        instant(`XenbusState ${to}`, { ...argsOf(fl), from: xenbusStateLabel(fl.from), to });
        return;
      }
      case 'global-instant': {
        const name = e.kind === 'stall' ? 'STALL' : e.kind === 'deadlock' ? 'DEADLOCK' : 'stall ends';
        out.push({ name, ph: 'i', s: 'g', ts, pid, tid, cat: e.comp, args: stallArgs(fl) });
        return;
      }
      case 'log': {
        const message = String(fl.msg ?? fl.message);
        instant(truncate(message, 100) || `${e.comp} log`, argsOf(fl));
        return;
      }
      default:
        instant(instantName(e), argsOf(fl));
    }
  });

  // Requests still in flight when the run ended: close them at its end so every 'b' has its 'e'.
  const endTs = Math.max(lastTs, options.endTime === undefined ? 0 : toMicros(options.endTime));
  for (const req of open.values()) {
    out.push({
      name: req.name,
      ph: 'e',
      cat: req.cat,
      id: req.id,
      ts: endTs,
      pid: req.pid,
      tid: req.tid,
      args: { unfinished: true },
    });
  }
  return { traceEvents: [...meta, ...out], displayTimeUnit: 'ms' };
}

// ---------------------------------------------------------------------------------------------------
// Checking a trace against the trace-event format (the writer's own contract; also used by tests).
// ---------------------------------------------------------------------------------------------------

const PHASES = new Set<string>(['B', 'E', 'X', 'i', 'I', 'C', 'b', 'n', 'e', 'M', 's', 't', 'f']);
const THREAD_BOUND = new Set<string>(['B', 'E', 'X', 's', 't', 'f']);

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/**
 * Problems with `trace` as Chrome trace-event JSON (empty when valid): required fields per phase,
 * b/e pairs matched by cat+id+pid with e not before b, s/f flows paired and each bound to an enclosing
 * slice on its thread, B/E and X nesting per thread, non-decreasing ts per thread for thread-bound
 * events, and metadata naming every process and thread used.
 */
export function checkChromeTrace(trace: unknown): string[] {
  const problems: string[] = [];
  if (typeof trace !== 'object' || trace === null || !Array.isArray((trace as ChromeTrace).traceEvents)) {
    return ['traceEvents: missing or not an array'];
  }
  const t = trace as ChromeTrace;
  if (t.displayTimeUnit !== undefined && t.displayTimeUnit !== 'ms' && t.displayTimeUnit !== 'ns') {
    problems.push(`displayTimeUnit: must be "ms" or "ns", got ${JSON.stringify(t.displayTimeUnit)}`);
  }
  const namedPids = new Set<number>();
  const namedThreads = new Set<string>();
  const usedPids = new Set<number>();
  const usedThreads = new Set<string>();
  const lastTs = new Map<string, number>();
  const bStacks = new Map<string, number[]>(); // cat|id|pid -> begin timestamps
  const beStacks = new Map<string, string[]>(); // thread -> open B names
  const xEnds = new Map<string, number[]>(); // thread -> ends of enclosing X slices
  const liveSlices = new Map<string, number[]>(); // thread -> ends of X slices that may still enclose
  const flowStarts = new Map<string, number>();
  const flowEnds = new Set<string>();

  t.traceEvents.forEach((ev, i) => {
    const at = `traceEvents[${i}]`;
    if (typeof ev !== 'object' || ev === null) {
      problems.push(`${at}: not an object`);
      return;
    }
    if (!PHASES.has(ev.ph)) {
      problems.push(`${at}.ph: unknown phase ${JSON.stringify(ev.ph)}`);
      return;
    }
    if (typeof ev.name !== 'string') problems.push(`${at}.name: must be a string`);
    if (!isInt(ev.pid)) problems.push(`${at}.pid: must be an integer, got ${JSON.stringify(ev.pid)}`);
    if (
      ev.args !== undefined &&
      (typeof ev.args !== 'object' || ev.args === null || Array.isArray(ev.args))
    ) {
      problems.push(`${at}.args: must be an object`);
    }
    if (ev.ph === 'M') {
      const name = (ev.args as Record<string, unknown> | undefined)?.name;
      if (typeof name !== 'string') problems.push(`${at}.args.name: metadata needs a string name`);
      if (ev.name === 'process_name') namedPids.add(ev.pid);
      else if (ev.name === 'thread_name') {
        if (!isInt(ev.tid)) problems.push(`${at}.tid: thread_name needs a tid`);
        namedThreads.add(`${ev.pid}/${ev.tid}`);
      } else problems.push(`${at}.name: metadata ${JSON.stringify(ev.name)} is not read by Perfetto`);
      return;
    }
    if (typeof ev.ts !== 'number' || !Number.isFinite(ev.ts) || ev.ts < 0) {
      problems.push(`${at}.ts: must be a finite number >= 0, got ${JSON.stringify(ev.ts)}`);
      return;
    }
    usedPids.add(ev.pid);
    const thread = `${ev.pid}/${ev.tid}`;
    const threadScoped =
      THREAD_BOUND.has(ev.ph) || ((ev.ph === 'i' || ev.ph === 'I') && (ev.s ?? 't') === 't');
    if (threadScoped) {
      if (!isInt(ev.tid)) problems.push(`${at}.tid: ${ev.ph} events need an integer tid`);
      usedThreads.add(thread);
      const prev = lastTs.get(thread);
      if (prev !== undefined && ev.ts < prev) {
        problems.push(`${at}.ts: ${ev.ts} goes back in time on thread ${thread} (previous ${prev})`);
      }
      lastTs.set(thread, Math.max(prev ?? ev.ts, ev.ts));
    } else if (ev.tid !== undefined) {
      if (!isInt(ev.tid)) problems.push(`${at}.tid: must be an integer`);
      else usedThreads.add(thread);
    }
    switch (ev.ph) {
      case 'B':
        beStacks.set(thread, [...(beStacks.get(thread) ?? []), ev.name]);
        break;
      case 'E': {
        const stack = beStacks.get(thread) ?? [];
        if (stack.length === 0) problems.push(`${at}: E without an open B on thread ${thread}`);
        else stack.pop();
        break;
      }
      case 'X': {
        if (typeof ev.dur !== 'number' || !Number.isFinite(ev.dur) || ev.dur < 0) {
          problems.push(`${at}.dur: X needs a finite dur >= 0`);
          break;
        }
        const start = ev.ts;
        const ends = (xEnds.get(thread) ?? []).filter((end) => end > start);
        const end = start + ev.dur;
        if (ends.length > 0 && end > ends[ends.length - 1]) {
          problems.push(`${at}: X slice [${ev.ts}, ${end}] overlaps an enclosing slice on thread ${thread}`);
        }
        ends.push(end);
        xEnds.set(thread, ends);
        const live = (liveSlices.get(thread) ?? []).filter((e) => e >= start);
        live.push(end);
        liveSlices.set(thread, live);
        break;
      }
      case 'i':
      case 'I':
        if (ev.s !== undefined && ev.s !== 'g' && ev.s !== 'p' && ev.s !== 't') {
          problems.push(`${at}.s: instant scope must be g, p or t, got ${JSON.stringify(ev.s)}`);
        }
        break;
      case 'C': {
        const values = Object.values(ev.args ?? {});
        if (values.length === 0) problems.push(`${at}.args: a counter needs at least one value`);
        if (values.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
          problems.push(`${at}.args: counter values must be finite numbers`);
        }
        break;
      }
      case 'b':
      case 'n':
      case 'e': {
        if (typeof ev.cat !== 'string' || ev.cat === '')
          problems.push(`${at}.cat: async events need a category`);
        if (!isInt(ev.id)) {
          problems.push(`${at}.id: async events need an integer id`);
          break;
        }
        const key = `${ev.cat}|${ev.id}|${ev.pid}`;
        const stack = bStacks.get(key) ?? [];
        if (ev.ph === 'b') {
          stack.push(ev.ts);
          bStacks.set(key, stack);
        } else if (stack.length === 0) {
          problems.push(`${at}: ${ev.ph} for cat ${ev.cat} id ${ev.id} without an open b`);
        } else if (ev.ph === 'e') {
          const begin = stack.pop()!;
          if (ev.ts < begin) problems.push(`${at}: e at ${ev.ts} before its b at ${begin} (id ${ev.id})`);
        }
        break;
      }
      case 's':
      case 't':
      case 'f': {
        if (typeof ev.cat !== 'string' || ev.cat === '')
          problems.push(`${at}.cat: flow events need a category`);
        if (!isInt(ev.id)) {
          problems.push(`${at}.id: flow events need an integer id`);
          break;
        }
        if (ev.ph === 'f' && ev.bp !== undefined && ev.bp !== 'e') problems.push(`${at}.bp: must be "e"`);
        const key = `${ev.cat}|${ev.name}|${ev.id}`;
        if (ev.ph === 's') {
          if (flowStarts.has(key)) problems.push(`${at}: flow ${key} started twice`);
          flowStarts.set(key, ev.ts);
        } else {
          const start = flowStarts.get(key);
          if (start === undefined) problems.push(`${at}: flow ${key} ${ev.ph} before its s`);
          else if (ev.ts < start) problems.push(`${at}: flow ${key} ends before it starts`);
          if (ev.ph === 'f') {
            if (flowEnds.has(key)) problems.push(`${at}: flow ${key} finished twice`);
            flowEnds.add(key);
          }
        }
        // bound to a slice that began earlier on this thread and has not ended (ts never goes back)
        const flowTs = ev.ts;
        const live = (liveSlices.get(thread) ?? []).filter((e) => e >= flowTs);
        liveSlices.set(thread, live);
        if (live.length === 0)
          problems.push(`${at}: no slice on thread ${thread} encloses the flow point at ${flowTs}`);
        break;
      }
    }
  });

  for (const [key, stack] of bStacks) {
    if (stack.length > 0) problems.push(`async ${key}: ${stack.length} b without e`);
  }
  for (const [thread, stack] of beStacks) {
    if (stack.length > 0) problems.push(`thread ${thread}: B ${stack.join(', ')} never ended`);
  }
  for (const key of flowStarts.keys()) if (!flowEnds.has(key)) problems.push(`flow ${key}: s without f`);
  for (const pid of usedPids) if (!namedPids.has(pid)) problems.push(`pid ${pid}: no process_name metadata`);
  for (const th of usedThreads)
    if (!namedThreads.has(th)) problems.push(`thread ${th}: no thread_name metadata`);
  return problems;
}
