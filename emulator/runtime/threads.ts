/**
 * The threads engine: one worker thread per domain, the controller in the main thread, real time
 * scaled by `timeScale` on a clock every thread shares through a common epoch. Domains reach each other
 * only through shared memory and kicks. A watchdog in the main thread reads each worker's published
 * status; when nothing has progressed for `watchdogMs`, every thread is idle and nothing is in flight
 * (kicks, messages), it joins the published wait-for snapshots by label and judges as sim does.
 */
import { Worker } from 'node:worker_threads';
import { ScaledClock } from './clock.js';
import { checkDomainSpec, errorToWire, wireToError } from './domain-boot.js';
import { DomainEnv } from './domain-env.js';
import type {
  Controller,
  DomainSpec,
  DomId,
  Engine,
  EngineProgress,
  Millis,
  RunResult,
  StallReport,
  ThreadsEngineOptions,
  TraceEvent,
  TraceFilter,
  TraceKeep,
  UpcallKicker,
} from './engine.js';
import { HOST_DOMID } from './engine.js';
import { receiveExternal } from './external-inbox.js';
import { createKickBuffers, kickCount, notePosted, resetKickWords, sharedKicker } from './kick-words.js';
import { RealtimeRunner } from './realtime.js';
import type { SchedTask, SchedWaitQueue } from './scheduler.js';
import { type SnapshotNode, StatusSlot } from './status-slot.js';
import { mergeByTime, TraceSink } from './trace-sink.js';
import { followChain, labelWithoutIds, type Resolved } from './waitgraph.js';
import { WORKER_BOOTSTRAP_SOURCE, workerEntry } from './worker-bootstrap.js';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.js';

export const DEFAULT_WATCHDOG_MS = 200;
/** How long run() waits for a worker to hand over its trace at the end (real ms). */
const COLLECT_TIMEOUT_MS = 5000;

interface PendingCall {
  label: string;
  done: boolean;
  ok: boolean;
  value: unknown;
  error: Error | undefined;
  queue: SchedWaitQueue;
}

interface DomainWorker {
  domid: DomId;
  worker: Worker;
  slot: StatusSlot;
  sentTo: number;
  receivedFrom: number;
  calls: Map<number, PendingCall>;
  events: TraceEvent[];
  dmesg: Record<number, string[]>;
  booted: { resolve: () => void; reject: (e: Error) => void } | undefined;
  collected: (() => void) | undefined;
  /** Answers to 'progress' requests in flight, by request id. */
  progressWaits: Map<number, () => void>;
  exited: boolean;
}

export function createThreadsEngine(options: ThreadsEngineOptions): Engine {
  return new ThreadsEngine(options);
}

class ThreadsEngine implements Engine {
  readonly kind = 'threads' as const;
  readonly kicker: UpcallKicker;
  private readonly clock: ScaledClock;
  /** Controller waits on external input (receive). */
  private externalWaits = 0;
  private readonly watchdogMs: number;
  private readonly filter: TraceFilter | undefined;
  private readonly dmesgLines: number | undefined;
  private readonly traceKeep: TraceKeep | undefined;
  private readonly sink: TraceSink;
  private readonly host: RealtimeRunner;
  private readonly hostEnv: DomainEnv;
  private readonly kickBuffers = createKickBuffers();
  private readonly kickWords = new Int32Array(this.kickBuffers.kicks);
  private readonly present = new Int32Array(this.kickBuffers.present);
  private readonly workers = new Map<DomId, DomainWorker>();
  private readonly shared: Record<string, SharedArrayBuffer> = {};
  private nextCallId = 1;
  private nextProgressId = 1;
  private ran = false;
  private closed = false;
  private controllerTask: SchedTask | undefined;
  private stalls: StallReport[] = [];
  private activeStall: StallReport | undefined;
  private lastSignature = '';
  private lastChangeReal = 0;
  private finished = false;
  private outcome: RunResult<unknown>['outcome'] = 'completed';
  private error: Error | undefined;
  private endRun: (() => void) | undefined;

  constructor(options: ThreadsEngineOptions) {
    if (options === null || typeof options !== 'object')
      throw new Error('createThreadsEngine: options required');
    const watchdogMs = options.watchdogMs ?? DEFAULT_WATCHDOG_MS;
    if (!(Number.isFinite(watchdogMs) && watchdogMs > 0)) {
      throw new Error(`createThreadsEngine: watchdogMs must be a positive number, got ${options.watchdogMs}`);
    }
    this.clock = new ScaledClock(ScaledClock.realNow(), options.timeScale);
    this.watchdogMs = watchdogMs;
    this.filter = options.traceFilter;
    this.dmesgLines = options.dmesgLines;
    this.traceKeep = options.traceKeep;
    this.sink = new TraceSink({
      now: () => this.clock.now(),
      filter: options.traceFilter,
      keep: options.traceKeep,
      dmesgLines: options.dmesgLines,
    });
    this.host = new RealtimeRunner(this.clock, (task, e) => {
      const msg = errorToWire(e).message;
      this.sink.log(HOST_DOMID, task.traceName, task.component, `task ${task.label} failed: ${msg}`);
      this.fail(new Error(`task ${task.label} failed: ${msg}`, { cause: e }));
    });
    this.hostEnv = new DomainEnv(HOST_DOMID, 'threads', this.host.sched, this.sink, Math.random);
    this.kicker = sharedKicker(this.kickWords, this.present);
  }

  addShared(name: string, buffer: SharedArrayBuffer): void {
    if (typeof name !== 'string' || name === '')
      throw new Error('addShared: name must be a non-empty string');
    if (!(buffer instanceof SharedArrayBuffer))
      throw new Error(`addShared ${name}: buffer must be a SharedArrayBuffer`);
    if (this.workers.size > 0) throw new Error(`addShared ${name}: call it before addDomain`);
    if (name in this.shared) throw new Error(`addShared: name "${name}" is already registered`);
    this.shared[name] = buffer;
  }

  async addDomain(spec: DomainSpec): Promise<void> {
    if (this.ran) throw new Error('addDomain: the engine has already run');
    if (this.closed) throw new Error('addDomain: the engine is closed');
    checkDomainSpec(spec, new Set(this.workers.keys()));
    const slot = StatusSlot.create();
    const init: WorkerInit = {
      ...workerEntry(),
      spec,
      shared: this.shared,
      kicks: this.kickBuffers.kicks,
      present: this.kickBuffers.present,
      status: slot.buffer,
      epoch: this.clock.epoch,
      timeScale: this.clock.timeScale,
      traceKeep: this.traceKeep,
      dmesgLines: this.dmesgLines,
    };
    resetKickWords(this.kickWords, spec.domid);
    Atomics.store(this.present, spec.domid, 1);
    const worker = new Worker(WORKER_BOOTSTRAP_SOURCE, { eval: true, workerData: init });
    const rec: DomainWorker = {
      domid: spec.domid,
      worker,
      slot,
      sentTo: 0,
      receivedFrom: 0,
      calls: new Map(),
      events: [],
      dmesg: {},
      booted: undefined,
      collected: undefined,
      progressWaits: new Map(),
      exited: false,
    };
    this.workers.set(spec.domid, rec);
    worker.on('message', (m: FromWorker) => this.onMessage(rec, m));
    worker.on('error', (e: Error) => this.onWorkerError(rec, e));
    worker.on('exit', () => {
      rec.exited = true;
      rec.collected?.();
      for (const done of rec.progressWaits.values()) done();
      rec.progressWaits.clear();
    });
    try {
      await new Promise<void>((resolve, reject) => {
        rec.booted = { resolve, reject };
      });
    } catch (e) {
      this.workers.delete(spec.domid);
      Atomics.store(this.present, spec.domid, 0);
      await worker.terminate();
      throw e;
    }
  }

  async run<T>(controller: (ctl: Controller) => Promise<T>): Promise<RunResult<T>> {
    if (this.ran) throw new Error('run: a threads engine runs once; create a new one');
    if (this.closed) throw new Error('run: the engine is closed');
    if (typeof controller !== 'function') throw new Error('run: controller must be a function');
    this.ran = true;
    this.clock.epoch = ScaledClock.realNow();
    for (const rec of this.workers.values()) this.post(rec, { type: 'start', epoch: this.clock.epoch });
    const ctl: Controller = {
      env: this.hostEnv,
      holders: this.host.holders,
      call: (domid, method, ...args) => this.call(domid, method, args),
      receive: (inbox, what) =>
        receiveExternal(this.hostEnv, inbox, what, {
          begin: () => this.externalWaits++,
          end: () => this.externalWaits--,
        }),
    };
    let value: T | undefined;
    const done = new Promise<void>((resolve) => {
      this.endRun = resolve;
    });
    this.controllerTask = this.hostEnv.spawnTask('controller', async () => {
      try {
        value = await controller(ctl);
      } catch (e) {
        this.error = e instanceof Error ? e : new Error(String(e));
        this.outcome = 'error';
      }
      this.finish();
    });
    this.lastChangeReal = ScaledClock.realNow();
    const interval = setInterval(() => this.watch(), Math.max(1, Math.min(25, this.watchdogMs / 4)));
    this.host.sched.start();
    await done;
    clearInterval(interval);
    const endTime = this.clock.now();
    // A run that completed moved on after its stall; the watchdog may not have sampled that yet.
    if (this.outcome === 'completed') this.endStallByProgress();
    this.endStall('run-end', undefined);
    this.host.stop();
    const lists = [this.sink.drain(), ...(await this.collect())];
    let trace = mergeByTime(lists);
    const filter = this.filter;
    if (filter !== undefined) trace = trace.filter((e) => filter(e.comp, e.kind));
    const dmesg: Record<number, string[]> = { ...this.sink.dmesg() };
    for (const rec of this.workers.values()) Object.assign(dmesg, rec.dmesg);
    const result: RunResult<T> = { outcome: this.outcome, stalls: this.stalls, trace, dmesg, endTime };
    if (this.outcome === 'completed') result.value = value;
    if (this.error !== undefined) result.error = this.error;
    return result;
  }

  /**
   * Asks every worker for the events since its last batch and its kernel log, then merges them with the
   * main thread's as run() does at the end. Workers keep what they hand over (`rec.events`), so the
   * end of the run still sees everything. A worker that does not answer within COLLECT_TIMEOUT_MS is
   * left out of this snapshot, with a line in the host's kernel log.
   */
  async progress(): Promise<EngineProgress> {
    if (this.closed) throw new Error('progress: the engine is closed');
    const now = this.clock.now();
    await Promise.all([...this.workers.values()].filter((r) => !r.exited).map((r) => this.askProgress(r)));
    let trace = mergeByTime([this.sink.events.slice(), ...[...this.workers.values()].map((r) => r.events)]);
    const filter = this.filter;
    if (filter !== undefined) trace = trace.filter((e) => filter(e.comp, e.kind));
    const dmesg: Record<number, string[]> = { ...this.sink.dmesg() };
    for (const rec of this.workers.values()) Object.assign(dmesg, rec.dmesg);
    const stalls = this.stalls.map((s) => ({ ...s, ...(s.end ? { end: { ...s.end } } : {}) }));
    return { now, trace, stalls, dmesg };
  }

  private askProgress(rec: DomainWorker): Promise<void> {
    const id = this.nextProgressId++;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        rec.progressWaits.delete(id);
        this.sink.log(
          HOST_DOMID,
          '-',
          'runtime',
          `dom${rec.domid}: no progress answer within ${COLLECT_TIMEOUT_MS} ms`,
        );
        resolve();
      }, COLLECT_TIMEOUT_MS);
      rec.progressWaits.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
      this.post(rec, { type: 'progress', id });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.host.stop();
    if (!this.finished && this.ran) this.fail(new Error('threads: engine closed during the run'));
    await Promise.all([...this.workers.values()].map((r) => r.worker.terminate()));
  }

  // --- messages ----------------------------------------------------------------------------------------

  private post(rec: DomainWorker, m: ToWorker): void {
    rec.worker.postMessage(m);
    rec.sentTo++;
    notePosted(this.kickWords, rec.domid);
  }

  private onMessage(rec: DomainWorker, m: FromWorker): void {
    rec.receivedFrom++;
    switch (m.type) {
      case 'booted':
        rec.booted?.resolve();
        rec.booted = undefined;
        break;
      case 'boot-error':
        rec.booted?.reject(wireToError(m.error));
        rec.booted = undefined;
        break;
      case 'started': {
        const c = rec.calls.get(m.id);
        if (c !== undefined) c.label = m.label;
        break;
      }
      case 'result': {
        const c = rec.calls.get(m.id);
        if (c === undefined) break;
        rec.calls.delete(m.id);
        c.done = true;
        c.ok = m.ok;
        if (m.ok) c.value = m.value;
        else c.error = wireToError(m.error);
        c.queue.wakeAll();
        break;
      }
      case 'trace':
        for (const e of m.events) rec.events.push(e);
        break;
      case 'task-failed':
        this.fail(new Error(`task ${m.label} failed: ${m.error.message}`));
        break;
      case 'progress':
        for (const e of m.events) rec.events.push(e);
        rec.dmesg = m.dmesg;
        rec.progressWaits.get(m.id)?.();
        rec.progressWaits.delete(m.id);
        break;
      case 'collected':
        for (const e of m.events) rec.events.push(e);
        rec.dmesg = m.dmesg;
        rec.collected?.();
        break;
    }
  }

  private onWorkerError(rec: DomainWorker, e: Error): void {
    if (rec.booted !== undefined) {
      rec.booted.reject(new Error(`addDomain dom${rec.domid}: worker failed to start: ${e.message}`));
      rec.booted = undefined;
      return;
    }
    this.fail(new Error(`dom${rec.domid} worker crashed: ${e.message}`, { cause: e }));
  }

  private async call(domid: DomId, method: string, args: unknown[]): Promise<unknown> {
    const rec = this.workers.get(domid);
    if (rec === undefined) {
      throw new Error(`call: no domain ${domid} (domains: ${[...this.workers.keys()].join(', ') || 'none'})`);
    }
    const id = this.nextCallId++;
    const queue = this.hostEnv.waitQueue(`dom${domid}.${method}`) as SchedWaitQueue;
    const c: PendingCall = {
      label: `dom${domid}/${method}`,
      done: false,
      ok: false,
      value: undefined,
      error: undefined,
      queue,
    };
    this.post(rec, { type: 'call', id, method, args }); // throws DataCloneError for non-cloneable args
    rec.calls.set(id, c);
    await this.host.sched.wait(queue, () => c.done, {
      what: `dom${domid}.${method} to return`,
      holders: () => [this.host.holders.ref(c.label)],
    });
    if (!c.ok) throw c.error!;
    return c.value;
  }

  private async collect(): Promise<TraceEvent[][]> {
    const recs = [...this.workers.values()].filter((r) => !r.exited);
    await Promise.all(
      recs.map(
        (rec) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              this.sink.log(
                HOST_DOMID,
                '-',
                'runtime',
                `dom${rec.domid}: no trace handed over within ${COLLECT_TIMEOUT_MS} ms`,
              );
              resolve();
            }, COLLECT_TIMEOUT_MS);
            rec.collected = () => {
              clearTimeout(timer);
              resolve();
            };
            this.post(rec, { type: 'collect' });
          }),
      ),
    );
    return [...this.workers.values()].map((r) => r.events);
  }

  // --- run end, stalls -------------------------------------------------------------------------------

  private fail(e: Error): void {
    if (this.finished) return;
    this.outcome = 'error';
    this.error = e;
    this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.endRun?.();
  }

  private virtualAt(real: number): Millis {
    return (real - this.clock.epoch) / this.clock.timeScale;
  }

  /** The watchdog: runs on a real interval in the main thread. */
  private watch(): void {
    if (this.finished) return;
    const statuses = [...this.workers.values()].map((rec) => ({ rec, st: rec.slot.read() }));
    let signature = `${this.host.sched.progressSteps}`;
    for (const { st } of statuses) signature += `,${st.progress}`;
    const realNow = ScaledClock.realNow();
    if (signature !== this.lastSignature) {
      this.lastSignature = signature;
      this.lastChangeReal = realNow;
      this.endStallByProgress();
      return;
    }
    if (this.activeStall !== undefined || realNow - this.lastChangeReal < this.watchdogMs) return;
    // Quiescent only if every thread is idle with a current snapshot and nothing is in flight.
    if (this.host.sched.running !== undefined || this.host.sched.runnableCount > 0) return;
    const nodes: SnapshotNode[] = this.host.snapshot();
    for (const { rec, st } of statuses) {
      if (rec.exited) continue;
      if (st.idle !== 1 || st.nodes === undefined) return;
      if (kickCount(this.kickWords, rec.domid) !== st.kickSeen) return;
      if (st.sent !== rec.receivedFrom || st.received !== rec.sentTo) return;
      for (const n of st.nodes) nodes.push(n);
    }
    // A controller waiting for outside input (xenpv run --serve) is not a deadlock; simplification:
    // no stalls are judged meanwhile.
    if (this.externalWaits > 0) return;
    this.judge(nodes, this.virtualAt(this.lastChangeReal));
  }

  private judge(nodes: SnapshotNode[], at: Millis): void {
    const byLabel = new Map<string, SnapshotNode>();
    for (const n of nodes) {
      const old = byLabel.get(n.label);
      if (old === undefined || (old.kind === 'holder' && n.kind !== 'holder')) byLabel.set(n.label, n);
    }
    const resolve = (label: string): Resolved | undefined => {
      let n = byLabel.get(label);
      if (n === undefined) {
        const named = nodes.filter((x) => x.kind !== 'holder' && labelWithoutIds(x.label) === label);
        if (named.length === 1) n = named[0];
      }
      return n === undefined ? undefined : { label: n.label, wait: n };
    };
    // The earliest non-background timer decides: a plain sleep is idleness, a timeout is a stall.
    let earliest: SnapshotNode | undefined;
    for (const n of nodes) {
      if (n.kind === 'holder' || n.kind === 'background' || n.deadline === undefined) continue;
      if (n.kind !== 'sleep' && n.timeoutName === undefined) continue;
      if (
        earliest === undefined ||
        n.deadline < earliest.deadline! ||
        (n.deadline === earliest.deadline && n.kind === 'sleep')
      ) {
        earliest = n;
      }
    }
    if (earliest?.kind === 'sleep') return;
    if (earliest !== undefined) {
      const { chain, cycle } = followChain(earliest.label, resolve);
      const report: StallReport = {
        at,
        chain,
        cycle,
        brokenBy: { timer: earliest.timeoutName!, task: earliest.label, at: earliest.deadline! },
      };
      this.stalls.push(report);
      this.activeStall = report;
      this.sink.emit(HOST_DOMID, '-', 'runtime', 'stall', { chain, cycle, brokenBy: report.brokenBy });
      return;
    }
    const ctl = this.controllerTask;
    let start: string | undefined = ctl !== undefined && byLabel.has(ctl.label) ? ctl.label : undefined;
    if (start === undefined) {
      const candidates = nodes
        .filter((n) => n.kind !== 'holder' && !n.daemon)
        .sort((a, b) => a.label.localeCompare(b.label) || (a.id ?? 0) - (b.id ?? 0));
      start = candidates[0]?.label;
    }
    const { chain, cycle } = start === undefined ? { chain: [], cycle: false } : followChain(start, resolve);
    this.stalls.push({ at, chain, cycle });
    this.sink.emit(HOST_DOMID, '-', 'runtime', 'deadlock', { chain, cycle });
    this.outcome = 'deadlock';
    this.finish();
  }

  /** Progress after a stall: its timeout broke it if that time has come, else some wake did. */
  private endStallByProgress(): void {
    const b = this.activeStall?.brokenBy;
    if (b === undefined) return;
    if (this.clock.now() >= b.at) this.endStall('timeout', b.task);
    else this.endStall('wake', undefined);
  }

  private endStall(by: 'timeout' | 'wake' | 'run-end', task: string | undefined): void {
    const s = this.activeStall;
    if (s === undefined) return;
    this.activeStall = undefined;
    const now = this.clock.now();
    s.end = { at: now, by };
    if (task !== undefined) s.end.task = task;
    this.sink.emit(HOST_DOMID, '-', 'runtime', 'stall-end', { by, task, duration: now - s.at });
  }
}
