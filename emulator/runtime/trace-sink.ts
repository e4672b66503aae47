/**
 * Structured trace events and per-domain kernel logs (dmesg). One sink serves every domain in sim; in
 * threads each worker has its own and the main thread merges them. Emitting is a filter check and one
 * object push; the dmesg ring (ring-buffer-ts) keeps the last N lines like the kernel's log buffer.
 */
import ringBufferTs from 'ring-buffer-ts';
import type { DomId, Millis, TraceEvent, TraceFilter, TraceKeep, Tracer } from './engine.js';

// ring-buffer-ts ships a webpack UMD bundle: Node sees only a default export.
const { RingBuffer } = ringBufferTs;
type Ring = InstanceType<typeof RingBuffer<string>>;

export const DEFAULT_DMESG_LINES = 4096;

export interface TraceSinkOptions {
  /** The clock the events are stamped with (virtual ms in sim, scaled real ms in threads). */
  now: () => Millis;
  filter?: TraceFilter;
  /** Serialisable filter; an event is kept when both it and `filter` keep it. */
  keep?: TraceKeep;
  dmesgLines?: number;
}

const dropAll: TraceFilter = () => false;

/**
 * Checks a TraceKeep and turns it into a TraceFilter; undefined when it keeps everything (so the
 * emit path has no check at all). Throws naming the field and value on a malformed spec.
 */
export function compileTraceKeep(keep: TraceKeep | undefined, where = 'traceKeep'): TraceFilter | undefined {
  if (keep === undefined || keep === 'all') return undefined;
  if (keep === 'none') return dropAll;
  if (keep === null || typeof keep !== 'object' || Array.isArray(keep)) {
    throw new Error(`${where} must be 'all', 'none' or { kinds?, comps? }, got ${JSON.stringify(keep)}`);
  }
  for (const key of Object.keys(keep)) {
    if (key !== 'kinds' && key !== 'comps') throw new Error(`${where}: unknown field ${JSON.stringify(key)}`);
  }
  const kinds = nameSet(keep.kinds, `${where}.kinds`);
  const comps = nameSet(keep.comps, `${where}.comps`);
  if (kinds === undefined && comps === undefined) return undefined;
  if (kinds?.size === 0 || comps?.size === 0) return dropAll;
  if (comps === undefined) return (_comp, kind) => kinds!.has(kind);
  if (kinds === undefined) return (comp) => comps.has(comp);
  return (comp, kind) => kinds.has(kind) && comps.has(comp);
}

function nameSet(names: readonly string[] | undefined, field: string): Set<string> | undefined {
  if (names === undefined) return undefined;
  if (!Array.isArray(names))
    throw new Error(`${field} must be an array of strings, got ${JSON.stringify(names)}`);
  names.forEach((n, i) => {
    if (typeof n !== 'string') throw new Error(`${field}[${i}] must be a string, got ${JSON.stringify(n)}`);
  });
  return new Set(names);
}

/** Both filters at once; undefined when neither drops anything. */
function bothFilters(a: TraceFilter | undefined, b: TraceFilter | undefined): TraceFilter | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  if (a === dropAll || b === dropAll) return dropAll;
  return (comp, kind) => a(comp, kind) && b(comp, kind);
}

export class TraceSink {
  events: TraceEvent[] = [];
  private readonly rings = new Map<DomId, Ring>();
  private readonly now: () => Millis;
  private readonly filter: TraceFilter | undefined;
  private readonly dmesgLines: number;

  constructor(options: TraceSinkOptions) {
    this.now = options.now;
    this.filter = bothFilters(compileTraceKeep(options.keep), options.filter);
    this.dmesgLines = options.dmesgLines ?? DEFAULT_DMESG_LINES;
    if (!Number.isInteger(this.dmesgLines) || this.dmesgLines < 1) {
      throw new Error(`dmesgLines must be a positive integer, got ${options.dmesgLines}`);
    }
  }

  /** A Tracer for one domain; `taskName` says which task is running when an event is emitted. */
  tracer(dom: DomId, taskName: () => string): Tracer {
    return {
      emit: (comp, kind, fields) => {
        // Filtered out before the task name is even looked up.
        if (this.filter !== undefined && !this.filter(comp, kind)) return;
        this.push(dom, taskName(), comp, kind, fields);
      },
      log: (comp, message) => this.log(dom, taskName(), comp, message),
      wants: (comp, kind) => this.wants(comp, kind),
    };
  }

  /** Whether an event of this component and kind is kept. */
  wants(comp: string, kind: string): boolean {
    return this.filter === undefined || this.filter(comp, kind);
  }

  emit(dom: DomId, task: string, comp: string, kind: string, fields?: Record<string, unknown>): void {
    if (this.filter !== undefined && !this.filter(comp, kind)) return;
    this.push(dom, task, comp, kind, fields);
  }

  private push(dom: DomId, task: string, comp: string, kind: string, fields?: Record<string, unknown>): void {
    const ev: TraceEvent = { t: this.now(), dom, task, comp, kind };
    if (fields !== undefined) ev.fields = fields;
    this.events.push(ev);
  }

  log(dom: DomId, task: string, comp: string, message: string): void {
    const t = this.now();
    this.ring(dom).add(`${dmesgStamp(t)} ${comp}: ${message}`);
    if (this.filter !== undefined && !this.filter(comp, 'log')) return;
    this.events.push({ t, dom, task, comp, kind: 'log', fields: { msg: message } });
  }

  /** Take the events gathered so far (threads workers post them in batches). */
  drain(): TraceEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  dmesg(): Record<number, string[]> {
    const out: Record<number, string[]> = {};
    for (const [dom, ring] of this.rings) out[dom] = ring.toArray();
    return out;
  }

  private ring(dom: DomId): Ring {
    let r = this.rings.get(dom);
    if (r === undefined) {
      r = new RingBuffer<string>(this.dmesgLines);
      this.rings.set(dom, r);
    }
    return r;
  }
}

/** Linux printk time prefix: "[%5lu.%06lu]" seconds and microseconds since boot. */
export function dmesgStamp(ms: Millis): string {
  const us = Math.max(0, Math.round(ms * 1000));
  const sec = Math.floor(us / 1_000_000);
  const frac = us % 1_000_000;
  return `[${String(sec).padStart(5, ' ')}.${String(frac).padStart(6, '0')}]`;
}

/** Merge per-thread event lists by time; stable, so each thread's own order is kept on ties. */
export function mergeByTime(lists: readonly TraceEvent[][]): TraceEvent[] {
  const all: TraceEvent[] = [];
  for (const l of lists) for (const e of l) all.push(e);
  return all.sort((a, b) => a.t - b.t);
}
