/**
 * The Env one domain sees, over the shared scheduler: tasks, wait queues, mutexes, sleeps, the
 * event-channel upcall daemon, a per-domain random stream and the domain's tracer.
 */
import type {
  DomId,
  EngineKind,
  Env,
  Millis,
  Mutex,
  SleepOptions,
  SpawnOptions,
  Task,
  Tracer,
  WaitOptions,
  WaitQueue,
  WaitResult,
} from './engine.js';
import { HOST_DOMID } from './engine.js';
import { SchedMutex, type SchedTask, type Scheduler, SchedWaitQueue } from './scheduler.js';
import type { TraceSink } from './trace-sink.js';

/** "dom<N>" for domains, "host" for the controller's pseudo-domain. */
export function domainLabelPrefix(domid: DomId): string {
  return domid === HOST_DOMID ? 'host' : `dom${domid}`;
}

export class DomainEnv implements Env {
  readonly trace: Tracer;
  readonly labelPrefix: string;
  private upcallHandler: (() => void) | undefined;
  private kickPending = false;
  private upcallTask: SchedTask | undefined;
  private readonly upcallQueue: SchedWaitQueue;
  /** Upcalls delivered (handler runs), for tests and traces. */
  upcallRuns = 0;

  constructor(
    readonly domid: DomId,
    readonly engine: EngineKind,
    private readonly sched: Scheduler,
    sink: TraceSink,
    private readonly randomSource: () => number,
  ) {
    this.labelPrefix = domainLabelPrefix(domid);
    this.upcallQueue = new SchedWaitQueue(`${this.labelPrefix} upcall`, sched);
    this.trace = sink.tracer(domid, () => sched.running?.traceName ?? '-');
  }

  now(): Millis {
    return this.sched.now();
  }

  spawn(name: string, body: () => Promise<void>, options?: SpawnOptions): Task {
    return this.spawnTask(name, body, options);
  }

  spawnTask(name: string, body: () => Promise<void>, options?: SpawnOptions): SchedTask {
    return this.sched.spawn(
      this.domid,
      this.labelPrefix,
      name,
      body,
      options?.daemon === true,
      options?.component ?? name,
    );
  }

  current(): Task {
    return this.sched.current();
  }

  waitQueue(name: string): WaitQueue {
    return new SchedWaitQueue(name, this.sched);
  }

  wait(q: WaitQueue, cond: () => boolean, options: WaitOptions): Promise<WaitResult> {
    if (!(q instanceof SchedWaitQueue)) {
      throw new Error(`wait "${options?.what}": queue ${String(q?.name)} was not made by env.waitQueue()`);
    }
    return this.sched.wait(q, cond, options);
  }

  sleep(ms: Millis, options?: SleepOptions): Promise<void> {
    return this.sched.sleep(ms, options?.what, options?.background === true);
  }

  yield(): Promise<void> {
    return this.sched.yield();
  }

  mutex(name: string): Mutex {
    return new SchedMutex(name, this.labelPrefix, this.sched);
  }

  /**
   * Stop this domain's vCPU: every task except the event-channel upcall daemon (and those `keep`
   * selects: a machine's firmware tasks) stops for good (see
   * Scheduler.haltDomain), so the domain can later be booted afresh from an upcall. Called from one of
   * the halted tasks, the returned promise never settles; from the upcall handler or outside a task it
   * settles at once.
   */
  haltDomain(keep?: (task: Task) => boolean): Promise<void> {
    const me = this.sched.running;
    this.sched.haltDomain(this.domid, (t) => t === this.upcallTask || keep?.(t) === true);
    this.trace.emit('runtime', 'halt', {});
    if (me?.halted) return this.sched.block(me);
    return Promise.resolve();
  }

  /** Tasks of this domain that fail with an error `test` accepts halt the domain instead of the run. */
  setHaltOnFailure(test: ((error: unknown) => boolean) | undefined, keep?: (task: Task) => boolean): void {
    this.sched.setHaltOnFailure(this.domid, test, keep);
  }

  /** Whether any task of this domain other than the upcall daemon is alive. */
  get liveTasks(): number {
    let n = 0;
    for (const t of this.sched.live) if (t.domain === this.domid && t !== this.upcallTask) n++;
    return n;
  }

  onUpcall(handler: () => void): void {
    if (typeof handler !== 'function') throw new Error(`${this.labelPrefix}: onUpcall needs a function`);
    if (this.upcallHandler !== undefined) {
      throw new Error(`${this.labelPrefix}: an upcall handler is already registered (one per domain)`);
    }
    this.upcallHandler = handler;
    this.upcallTask = this.spawnTask(
      'upcall',
      async () => {
        for (;;) {
          await this.sched.wait(this.upcallQueue, () => this.kickPending, { what: 'event-channel upcall' });
          // Kicks that arrive before the handler runs coalesce into this one run (like
          // evtchn_upcall_pending: one flag, the handler scans the pending bitmap).
          this.kickPending = false;
          this.upcallRuns++;
          handler();
        }
      },
      { daemon: true, component: 'evtchn' },
    );
  }

  /** Deliver an upcall: callable from any task or from outside tasks. */
  kick(): void {
    this.kickPending = true;
    this.upcallQueue.wakeAll();
  }

  random(): number {
    return this.randomSource();
  }
}
