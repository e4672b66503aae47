/**
 * The task scheduler both engines share: tasks are async functions and exactly one runs at a time; it
 * runs until it blocks (wait, sleep, yield, lock) or ends, then `dispatch` resumes the next one. The
 * engine supplies the policy: which runnable task goes next (sim: seeded PRNG over tasks ordered by id;
 * threads: FIFO) and what happens when nothing is runnable (sim: stall analysis and a jump in virtual
 * time; threads: sleep until a real timer, a kick or a message).
 *
 * Per switch the hot path allocates one promise and its resolver; nothing scans all tasks.
 */
import { type Timer, TimerHeap, type TimerKind } from './clock.js';
import type {
  DomId,
  Millis,
  Mutex,
  Task,
  TaskState,
  WaitFor,
  WaitOptions,
  WaitQueue,
  WaitResult,
} from './engine.js';

/** What a blocked task is blocked in; the watchdog and stall analysis need the kind. */
export type BlockKind = 'wait' | 'sleep' | 'background' | 'lock' | 'yield';

export class SchedTask implements Task {
  state: TaskState = 'runnable';
  /** The declared wait while blocked (sleeps too: their `what` and deadline). */
  wait: WaitFor | undefined;
  blockKind: BlockKind | undefined;
  /** Resolves the promise the task is parked on (or starts it, the first time). */
  resumeFn: (() => void) | undefined;
  timer: Timer | undefined;
  timedOut = false;
  /** Woken by a background timer: its next resume is housekeeping, not progress. */
  backgroundWake = false;
  /** Stopped by `Scheduler.haltDomain`: never resumed again, its failure is not reported. */
  halted = false;
  /** How traces name the task within its domain. */
  readonly traceName: string;
  /** Set when the task ends: its result promise settles through these. */
  readonly exitWaiters: SchedWaitQueue;

  constructor(
    readonly id: number,
    readonly name: string,
    readonly domain: DomId,
    readonly daemon: boolean,
    readonly component: string,
    readonly label: string,
    sched: Scheduler,
  ) {
    this.traceName = `${name}#${id}`;
    this.exitWaiters = new SchedWaitQueue(`${label} exit`, sched);
  }

  blockedOn(): WaitFor | undefined {
    return this.state === 'blocked' ? this.wait : undefined;
  }
}

export class SchedWaitQueue implements WaitQueue {
  waiters: SchedTask[] = [];

  constructor(
    readonly name: string,
    private readonly sched: Scheduler,
  ) {}

  wakeAll(): void {
    const w = this.waiters;
    if (w.length === 0) return;
    this.waiters = [];
    for (const t of w) this.sched.wake(t);
  }

  remove(task: SchedTask): void {
    const i = this.waiters.indexOf(task);
    if (i >= 0) this.waiters.splice(i, 1);
  }
}

/** Runnable tasks; `take` removes the one that runs next. */
export interface RunQueue {
  readonly size: number;
  add(task: SchedTask): void;
  take(): SchedTask | undefined;
  /** Drop a queued task (a halted one); no-op when it is not queued. */
  remove(task: SchedTask): void;
}

/** FIFO order (threads). A head index keeps `take` O(1) amortised. */
export class FifoRunQueue implements RunQueue {
  private items: SchedTask[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  add(task: SchedTask): void {
    this.items.push(task);
  }

  take(): SchedTask | undefined {
    if (this.head >= this.items.length) return undefined;
    const t = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return t;
  }

  remove(task: SchedTask): void {
    const i = this.items.indexOf(task, this.head);
    if (i >= 0) this.items.splice(i, 1);
  }
}

/**
 * Candidates kept sorted by task id; `pick(n)` chooses an index (sim: PRNG or replay). Runnable sets
 * are small, so insertion by binary search plus splice beats any fancier structure.
 */
export class PickRunQueue implements RunQueue {
  private readonly items: SchedTask[] = [];

  constructor(private readonly pick: (n: number) => number) {}

  get size(): number {
    return this.items.length;
  }

  add(task: SchedTask): void {
    const a = this.items;
    const n = a.length;
    if (n === 0 || a[n - 1].id < task.id) {
      a.push(task);
      return;
    }
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (a[mid].id < task.id) lo = mid + 1;
      else hi = mid;
    }
    a.splice(lo, 0, task);
  }

  take(): SchedTask | undefined {
    const a = this.items;
    const n = a.length;
    if (n === 0) return undefined;
    if (n === 1) return a.pop();
    const i = this.pick(n);
    return a.splice(i, 1)[0];
  }

  remove(task: SchedTask): void {
    const i = this.items.indexOf(task);
    if (i >= 0) this.items.splice(i, 1);
  }
}

export interface SchedulerPolicy {
  now(): Millis;
  /**
   * Nothing is runnable. Return true after making something runnable (dispatch goes on), false to
   * stay idle until an outside event (threads) or because the run is over (sim).
   */
  idle(): boolean;
  /** A timer was armed (threads re-arms its real timeout when this one is the earliest). */
  timerArmed?(timer: Timer): void;
  /** A task ended by throwing. */
  taskFailed(task: SchedTask, error: unknown): void;
  /** A blocked task got what it waited for (not a timer): used to end a stall by a wake. */
  unblocked?(task: SchedTask): void;
  /**
   * Asked before each resume; true means "not now": the policy calls dispatch() again later (threads
   * lets the event loop in every so often).
   */
  beforeResume?(): boolean;
  /** A timer fired (sim: ends a stall when it is the one that breaks it). */
  timerFired?(timer: Timer, task: SchedTask | undefined): void;
}

export interface SchedulerOptions {
  runQueue: RunQueue;
  policy: SchedulerPolicy;
  maxSteps?: number;
}

export class Scheduler {
  /** Sleeps and wait timeouts. */
  readonly fgTimers = new TimerHeap();
  /** Background sleeps (housekeeping). */
  readonly bgTimers = new TimerHeap();
  readonly live = new Set<SchedTask>();
  running: SchedTask | undefined;
  /** Task switches so far. */
  steps = 0;
  /** Switches that resumed a task from a background sleep (housekeeping). */
  backgroundSteps = 0;
  private busy = true; // nothing dispatches until start()
  private halted = false;
  private nextId = 1;
  private timerSeq = 0;
  private readonly runQueue: RunQueue;
  private readonly policy: SchedulerPolicy;
  private readonly maxSteps: number;
  /** Set when maxSteps is exceeded; the engine turns it into an 'error' outcome. */
  overrun = false;
  private readonly haltOnFailure = new Map<
    DomId,
    { test: (error: unknown) => boolean; keep: ((task: SchedTask) => boolean) | undefined }
  >();
  /** Told the tasks of each haltDomain (threads: answer the calls they were serving). */
  readonly haltListeners: ((tasks: readonly SchedTask[]) => void)[] = [];

  constructor(options: SchedulerOptions) {
    this.runQueue = options.runQueue;
    this.policy = options.policy;
    this.maxSteps = options.maxSteps ?? Number.POSITIVE_INFINITY;
  }

  /** Switches that count as progress for the threads watchdog (housekeeping left out). */
  get progressSteps(): number {
    return this.steps - this.backgroundSteps;
  }

  get runnableCount(): number {
    return this.runQueue.size;
  }

  /** Begin dispatching (tasks spawned before this wait). */
  start(): void {
    this.dispatch();
  }

  /** Stop for good: nothing else is resumed. */
  halt(): void {
    this.busy = true;
    this.halted = true;
  }

  /** A blocked task got what it waited for (mutex hand-off, a wait's condition). */
  noteUnblocked(task: SchedTask): void {
    this.policy.unblocked?.(task);
  }

  now(): Millis {
    return this.policy.now();
  }

  current(): SchedTask {
    const t = this.running;
    if (t === undefined) {
      throw new Error(
        'runtime: no task is running here (call env.current() and blocking functions from inside a task, ' +
          'and await each blocking call at once)',
      );
    }
    return t;
  }

  spawn(
    domain: DomId,
    labelPrefix: string,
    name: string,
    body: () => Promise<void>,
    daemon: boolean,
    component: string,
  ): SchedTask {
    if (typeof name !== 'string' || name.length === 0) {
      throw new Error(`spawn: task name must be a non-empty string, got ${JSON.stringify(name)}`);
    }
    if (typeof body !== 'function') throw new Error(`spawn ${name}: body must be a function`);
    const id = this.nextId++;
    const task = new SchedTask(id, name, domain, daemon, component, `${labelPrefix}/${name}#${id}`, this);
    task.resumeFn = () => queueMicrotask(() => this.runBody(task, body));
    this.live.add(task);
    this.makeRunnable(task);
    return task;
  }

  private runBody(task: SchedTask, body: () => Promise<void>): void {
    this.running = task;
    let p: Promise<void>;
    try {
      p = body();
    } catch (e) {
      p = Promise.reject(e);
    }
    Promise.resolve(p).then(
      () => this.finish(task, undefined, false),
      (e: unknown) => this.finish(task, e, true),
    );
  }

  private finish(task: SchedTask, error: unknown, failed: boolean): void {
    if (task.halted) {
      // A halted task that was running when its domain stopped ran on to its end: nothing to report.
      this.dispatch();
      return;
    }
    if (failed && this.haltIfDead(task.domain, error)) {
      this.dispatch();
      return;
    }
    task.state = 'done';
    task.wait = undefined;
    this.live.delete(task);
    task.exitWaiters.wakeAll();
    if (failed) this.policy.taskFailed(task, error);
    this.dispatch();
  }

  makeRunnable(task: SchedTask): void {
    if (task.halted) return;
    task.state = 'runnable';
    this.runQueue.add(task);
    if (!this.busy) this.dispatch();
  }

  /** Make a blocked task re-check its condition (wake_up semantics). */
  wake(task: SchedTask): void {
    if (task.state === 'blocked') this.makeRunnable(task);
  }

  /** The running task gives up the CPU; the promise settles when it is resumed. */
  block(task: SchedTask): Promise<void> {
    if (task.halted) {
      // Never settles: the halted task parks here for good and its promise chain is collected.
      this.dispatch();
      return new Promise<void>(() => {});
    }
    task.state = 'blocked';
    const p = new Promise<void>((r) => {
      task.resumeFn = r;
    });
    this.dispatch();
    return p;
  }

  dispatch(): void {
    if (this.halted) return;
    this.busy = true;
    this.running = undefined;
    for (;;) {
      if (this.runQueue.size > 0 && this.policy.beforeResume?.() === true) return;
      const t = this.runQueue.take();
      if (this.halted) return;
      if (t !== undefined) {
        if (++this.steps > this.maxSteps) {
          this.overrun = true;
          this.halted = true;
          this.policy.idle();
          return;
        }
        if (t.backgroundWake) {
          t.backgroundWake = false;
          this.backgroundSteps++;
        }
        t.state = 'running';
        const resume = t.resumeFn!;
        t.resumeFn = undefined;
        resume();
        return;
      }
      if (this.halted || !this.policy.idle()) {
        this.busy = false;
        return;
      }
    }
  }

  addTimer(at: Millis, kind: TimerKind, owner: SchedTask | undefined, fire: () => void): Timer {
    const timer: Timer = { at, seq: this.timerSeq++, kind, owner, cancelled: false, fire };
    (kind === 'background' ? this.bgTimers : this.fgTimers).push(timer);
    this.policy.timerArmed?.(timer);
    return timer;
  }

  cancelTimer(timer: Timer): void {
    (timer.kind === 'background' ? this.bgTimers : this.fgTimers).cancel(timer);
  }

  /** The earliest live timer of either heap (ties by arming order). */
  earliestTimer(): Timer | undefined {
    const f = this.fgTimers.peek();
    const b = this.bgTimers.peek();
    if (f === undefined) return b;
    if (b === undefined) return f;
    return b.at < f.at || (b.at === f.at && b.seq < f.seq) ? b : f;
  }

  /** Fire every timer due at or before `upTo`, in (time, arming) order. */
  fireDue(upTo: Millis): void {
    for (;;) {
      const t = this.earliestTimer();
      if (t === undefined || t.at > upTo) return;
      (t.kind === 'background' ? this.bgTimers : this.fgTimers).pop();
      t.fire();
    }
  }

  // --- blocking primitives ---------------------------------------------------------------------------

  wait(q: SchedWaitQueue, cond: () => boolean, options: WaitOptions): Promise<WaitResult> {
    // A condition already true costs no async frame: a fifth of a lifecycle's waits end here.
    let ready: boolean;
    try {
      ready = cond();
    } catch (e) {
      return Promise.reject(e);
    }
    return ready ? WAIT_OK : this.waitBlocking(q, cond, options);
  }

  private async waitBlocking(
    q: SchedWaitQueue,
    cond: () => boolean,
    options: WaitOptions,
  ): Promise<WaitResult> {
    const task = this.current();
    if (task.halted) return this.block(task).then(() => 'ok' as const);
    checkWaitOptions(options);
    const deadline = options.timeoutMs === undefined ? undefined : this.now() + options.timeoutMs;
    const wait: { -readonly [K in keyof WaitFor]: WaitFor[K] } = { what: options.what };
    if (options.holders !== undefined) wait.holders = options.holders;
    if (deadline !== undefined) {
      wait.deadline = deadline;
      wait.timeoutName = options.timeoutName ?? `timeout of ${options.what}`;
    }
    task.wait = wait;
    task.blockKind = 'wait';
    task.timedOut = false;
    let timer: Timer | undefined;
    if (deadline !== undefined) {
      timer = this.addTimer(deadline, 'timeout', task, () => {
        task.timer = undefined;
        task.timedOut = true;
        q.remove(task);
        this.policy.timerFired?.(timer!, task);
        this.wake(task);
      });
      task.timer = timer;
    }
    for (;;) {
      q.waiters.push(task);
      await this.block(task);
      this.running = task;
      // wait_event_timeout: the condition is checked once more when the timeout fires.
      if (cond()) {
        if (timer !== undefined && !task.timedOut) this.cancelTimer(timer);
        task.timer = undefined;
        if (!task.timedOut) this.policy.unblocked?.(task);
        q.remove(task);
        task.wait = undefined;
        return 'ok';
      }
      if (task.timedOut) {
        task.wait = undefined;
        return 'timeout';
      }
    }
  }

  async sleep(ms: Millis, what: string | undefined, background: boolean): Promise<void> {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      throw new Error(`sleep: ms must be a finite number >= 0, got ${ms}`);
    }
    const task = this.current();
    if (task.halted) return this.block(task);
    const at = this.now() + ms;
    const kind: TimerKind = background ? 'background' : 'sleep';
    task.wait = { what: what ?? `sleep ${ms} ms`, deadline: at };
    task.blockKind = kind;
    const timer = this.addTimer(at, kind, task, () => {
      task.timer = undefined;
      this.policy.timerFired?.(timer, task);
      task.backgroundWake = background;
      this.wake(task);
    });
    task.timer = timer;
    await this.block(task);
    this.running = task;
    task.wait = undefined;
  }

  async yield(): Promise<void> {
    const task = this.current();
    if (task.halted) return this.block(task);
    task.blockKind = 'yield';
    task.state = 'runnable';
    const p = new Promise<void>((r) => {
      task.resumeFn = r;
    });
    this.runQueue.add(task);
    this.dispatch();
    await p;
    this.running = task;
  }

  /**
   * Stop every task of `domain` for good (a vCPU that will never run again), except those `keep`
   * selects: blocked ones never resume, queued ones never run, their timers are cancelled, and tasks
   * joining them (`call`) are woken to see `halted`. The running task, if halted, parks at its next
   * blocking point. Returns how many tasks were halted.
   */
  haltDomain(domain: DomId, keep?: (task: SchedTask) => boolean): number {
    const halted: SchedTask[] = [];
    for (const t of [...this.live]) {
      if (t.domain !== domain || keep?.(t) === true) continue;
      t.halted = true;
      if (t.timer !== undefined) {
        this.cancelTimer(t.timer);
        t.timer = undefined;
      }
      if (t.state === 'runnable') this.runQueue.remove(t);
      t.state = 'done';
      t.wait = undefined;
      this.live.delete(t);
      t.exitWaiters.wakeAll();
      halted.push(t);
    }
    for (const fn of this.haltListeners) fn(halted);
    return halted.length;
  }

  /**
   * When a task of `domain` fails and `test(error)` is true, the domain is halted instead of the run
   * failing (its vCPU was already gone; see haltDomain). Undefined removes the test.
   */
  setHaltOnFailure(
    domain: DomId,
    test: ((error: unknown) => boolean) | undefined,
    keep?: (task: SchedTask) => boolean,
  ): void {
    if (test === undefined) this.haltOnFailure.delete(domain);
    else this.haltOnFailure.set(domain, { test, keep });
  }

  /**
   * The domain died under a task (e.g. its hypercalls now fail with ESRCH) when its halt-on-failure
   * test accepts `error`: the vCPU is gone, so the domain halts (upcall daemon kept) instead of the
   * error failing the run or a call. Returns whether it halted.
   */
  haltIfDead(domain: DomId, error: unknown): boolean {
    const h = this.haltOnFailure.get(domain);
    if (h === undefined || h.test(error) !== true) return false;
    this.haltDomain(
      domain,
      (t) => (t.daemon && t.name === 'upcall' && t.component === 'evtchn') || h.keep?.(t) === true,
    );
    return true;
  }

  /** Wait for a task to end (used by `call`). */
  async join(task: SchedTask, what: string): Promise<void> {
    await this.wait(task.exitWaiters, () => task.state === 'done', { what, holders: () => [task] });
  }
}

/** Shared settled results for the paths that never block (awaiting a settled promise is all they need). */
const WAIT_OK: Promise<WaitResult> = Promise.resolve('ok');
const SETTLED: Promise<void> = Promise.resolve();

export function checkWaitOptions(options: WaitOptions): void {
  if (options === null || typeof options !== 'object') {
    throw new Error('wait: options are required ({ what: "..." })');
  }
  if (typeof options.what !== 'string' || options.what.length === 0) {
    throw new Error(`wait: options.what must say what is awaited, got ${JSON.stringify(options.what)}`);
  }
  const t = options.timeoutMs;
  if (t !== undefined && (typeof t !== 'number' || !Number.isFinite(t) || t < 0)) {
    throw new Error(`wait "${options.what}": timeoutMs must be a finite number >= 0, got ${t}`);
  }
}

/** A sleeping mutex with FIFO hand-off: unlock gives ownership straight to the longest waiter. */
export class SchedMutex implements Mutex {
  owner: SchedTask | undefined;
  private readonly waiters: SchedTask[] = [];
  readonly label: string;

  constructor(
    readonly name: string,
    labelPrefix: string,
    private readonly sched: Scheduler,
  ) {
    this.label = `${labelPrefix}/mutex ${name}`;
  }

  blockedOn(): WaitFor | undefined {
    const o = this.owner;
    if (o === undefined) return undefined;
    return { what: `${o.label} to unlock ${this.name}`, holders: () => [o] };
  }

  lock(what?: string): Promise<void> {
    let task: SchedTask;
    try {
      task = this.sched.current();
    } catch (e) {
      return Promise.reject(e);
    }
    if (task.halted) return this.sched.block(task);
    // Uncontended (most locks): no async frame, the caller awaits a settled promise.
    if (this.owner === undefined) {
      this.owner = task;
      return SETTLED;
    }
    return this.lockContended(task, what);
  }

  private async lockContended(task: SchedTask, what: string | undefined): Promise<void> {
    this.waiters.push(task);
    task.wait = { what: what ?? `mutex ${this.name}`, holders: () => (this.owner ? [this.owner] : []) };
    task.blockKind = 'lock';
    await this.sched.block(task);
    this.sched.running = task;
    task.wait = undefined;
    this.sched.noteUnblocked(task);
  }

  tryLock(): boolean {
    const task = this.sched.current();
    if (this.owner !== undefined) return false;
    this.owner = task;
    return true;
  }

  unlock(): void {
    const task = this.sched.current();
    if (this.owner !== task) {
      const state = this.owner === undefined ? 'it is not locked' : `it is owned by ${this.owner.label}`;
      throw new Error(`mutex ${this.name}: unlock by ${task.label}, but ${state}`);
    }
    let next = this.waiters.shift();
    while (next?.halted === true) next = this.waiters.shift(); // a halted waiter never takes it
    this.owner = next;
    if (next !== undefined) this.sched.wake(next);
  }
}
