/** Messages between the main thread and a domain worker (threads engine). */
import type { WireError } from './domain-boot.js';
import type { DomainSpec, TraceEvent, TraceKeep } from './engine.js';

export interface WorkerInit {
  entry: string;
  tsxApi?: string;
  spec: DomainSpec;
  shared: Record<string, SharedArrayBuffer>;
  /** Int32 kick words indexed by domid. */
  kicks: SharedArrayBuffer;
  /** Int32 flags indexed by domid: 1 when that domain exists. */
  present: SharedArrayBuffer;
  status: SharedArrayBuffer;
  epoch: number;
  timeScale: number;
  /** The run's serialisable trace filter: events it drops are never built in the worker. */
  traceKeep?: TraceKeep;
  dmesgLines?: number;
}

export type ToWorker =
  | { type: 'start'; epoch: number }
  | { type: 'call'; id: number; method: string; args: unknown[] }
  | { type: 'collect' }
  /** Hand over the events gathered since the last batch and the kernel log, the run going on. */
  | { type: 'progress'; id: number };

export type FromWorker =
  | { type: 'booted' }
  | { type: 'boot-error'; error: WireError }
  | { type: 'started'; id: number; label: string }
  | { type: 'result'; id: number; ok: true; value: unknown }
  | { type: 'result'; id: number; ok: false; error: WireError }
  | { type: 'trace'; events: TraceEvent[] }
  | { type: 'task-failed'; label: string; error: WireError }
  | { type: 'collected'; events: TraceEvent[]; dmesg: Record<number, string[]> }
  | { type: 'progress'; id: number; events: TraceEvent[]; dmesg: Record<number, string[]> };
