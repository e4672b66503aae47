/**
 * The threads engine's per-thread runtime: the shared scheduler (FIFO) driven by real, scaled time.
 * When nothing is runnable a worker first blocks its thread for up to BLOCK_MS on its kick word
 * (Atomics.wait: a futex wake takes about half as long between two workers as a waitAsync promise
 * settled through the event loop), letting the event loop in at least every LOOP_GAP_MS; idle for
 * longer, it sleeps in the event loop on one real timeout for its earliest timer, and kicks and messages
 * wake it from outside. Also builds the snapshot of blocked parties the watchdog reads.
 */
import type { ScaledClock } from './clock.js';
import type { Holder, HolderDirectory } from './engine.js';
import { FifoRunQueue, SchedTask, Scheduler } from './scheduler.js';
import type { SnapshotNode } from './status-slot.js';
import { holderDirectory, isRef } from './waitgraph.js';

/** Let the event loop in (kicks, messages, timers) after this many switches without visiting it. */
const SWITCHES_PER_MACROTASK = 256;
/**
 * Real ms an idle worker may keep its thread blocked on its kick word before sleeping in the event loop.
 * Long bounds: Atomics.wait with a short timeout (≤ 1 ms) measured 2-3× slower to wake than a long one.
 */
export const BLOCK_MS = 20;
/** The event loop (messages, Node timers) gets in at least this often (real ms) while a worker blocks. */
export const LOOP_GAP_MS = 5;

/**
 * What wakes an idle worker from outside (the kick word and the main thread's messages; see
 * KickWatcher). The host runner in the main thread has none: it sleeps in its event loop only.
 */
export interface OutsideEvents {
  /** Take a kick that has arrived, without blocking. */
  poll(): boolean;
  /** Block the thread up to `ms` real ms: 'kick' (taken), 'message' (only the event loop delivers it), 'timeout'. */
  block(ms: number): 'kick' | 'message' | 'timeout';
  /** The thread goes idle into its event loop: arrange to be woken; true when a kick was taken at once. */
  sleep(): boolean;
}

export class RealtimeRunner {
  readonly sched: Scheduler;
  private timeout: ReturnType<typeof setTimeout> | undefined;
  private armedAt = Number.POSITIVE_INFINITY;
  /** Switches since the thread last let its event loop in. */
  private sinceLoop = 0;
  /** performance.now() when the event loop last got in. */
  private loopAt = performance.now();
  /** Scheduler steps when the thread last went idle into the event loop (a later step means it woke). */
  private stepsAtLoop = -1;
  private readonly published = new Map<string, Holder>();
  readonly holders: HolderDirectory;
  /** Called each time the thread goes idle (publish status). */
  onIdle: () => void = () => {};
  /** Set by a worker once it takes kicks; undefined: idle means sleeping in the event loop. */
  outside: OutsideEvents | undefined;
  /** A setImmediate back into an idle wait is pending, and the idle period it continues began here. */
  private loopVisitPending = false;
  private idleSinceAtLoop = 0;
  /** The next idle() continues the idle period that began at idleSinceAtLoop. */
  private continuing = false;
  private stopped = false;
  private readonly afterLoop = (): void => {
    this.loopVisitPending = false;
    this.resumeIdleWait();
  };

  constructor(
    private readonly clock: ScaledClock,
    onTaskFailed: (task: SchedTask, error: unknown) => void,
  ) {
    this.sched = new Scheduler({
      runQueue: new FifoRunQueue(),
      policy: {
        now: () => this.clock.now(),
        idle: () => this.idle(),
        taskFailed: onTaskFailed,
        beforeResume: () => this.beforeResume(),
      },
    });
    this.holders = holderDirectory(this.published, this.sched.live);
  }

  /** Every so many switches, defer the next one to a macrotask so kicks, messages and timers get in. */
  private beforeResume(): boolean {
    if (++this.sinceLoop < SWITCHES_PER_MACROTASK) return false;
    this.sinceLoop = 0;
    setImmediate(() => {
      this.loopAt = performance.now();
      // A busy worker's kick word is not notified (it is awake): look at it here.
      this.outside?.poll();
      this.sched.fireDue(this.clock.now());
      this.sched.dispatch();
    });
    return true;
  }

  private idle(): boolean {
    this.sched.fireDue(this.clock.now());
    if (this.sched.runnableCount > 0) return true;
    const outside = this.outside;
    if (outside?.poll() && this.sched.runnableCount > 0) return true;
    this.onIdle();
    const since = this.continuing ? this.idleSinceAtLoop : performance.now();
    this.continuing = false;
    if (outside !== undefined) return this.idleWait(outside, since);
    this.toEventLoop();
    this.arm();
    return false;
  }

  /**
   * Nothing is runnable: block on the kick word while that is worth it, else go to the event loop
   * (through a setImmediate that comes back here, or to sleep). True when tasks became runnable.
   */
  private idleWait(outside: OutsideEvents, idleSince: number): boolean {
    for (;;) {
      const now = performance.now();
      if (now - idleSince >= BLOCK_MS) break; // idle for long: sleep in the event loop
      if (now - this.loopAt >= LOOP_GAP_MS) {
        // Let the event loop in (messages are counted, but Node timers and other sources are not).
        this.toEventLoop();
        this.idleSinceAtLoop = idleSince;
        if (!this.loopVisitPending) {
          this.loopVisitPending = true;
          setImmediate(this.afterLoop);
        }
        return false;
      }
      let ms = Math.min(BLOCK_MS - (now - idleSince), LOOP_GAP_MS - (now - this.loopAt));
      const t = this.sched.earliestTimer();
      if (t !== undefined) ms = Math.min(ms, this.clock.realDelay(t.at));
      const r = ms > 0 ? outside.block(ms) : 'timeout';
      if (r === 'message') break;
      if (r === 'timeout') this.sched.fireDue(this.clock.now());
      if (this.sched.runnableCount > 0) return true;
    }
    this.toEventLoop();
    this.arm();
    // A kick taken at once with nothing made runnable (no upcall handler yet): sleep again.
    while (outside.sleep()) if (this.sched.runnableCount > 0) return true;
    return false;
  }

  /** The thread returns to its event loop now (which therefore gets in). */
  private toEventLoop(): void {
    this.sinceLoop = 0;
    this.loopAt = performance.now();
    this.stepsAtLoop = this.sched.steps;
  }

  /** Back from an event-loop visit during an idle wait: go on waiting unless something woke the thread. */
  private resumeIdleWait(): void {
    this.loopAt = performance.now();
    const outside = this.outside;
    if (outside === undefined || this.stopped) return;
    // Something woke the thread meanwhile (a message, a timer): its next idle waits afresh.
    if (this.sched.steps !== this.stepsAtLoop || this.sched.running !== undefined) return;
    // Through dispatch, so kicks taken while waiting only queue tasks (the scheduler is busy) and the
    // idle period goes on from where it was.
    this.continuing = true;
    this.sched.dispatch();
    this.continuing = false;
  }

  private arm(): void {
    const t = this.sched.earliestTimer();
    if (t === undefined) {
      if (this.timeout !== undefined) clearTimeout(this.timeout);
      this.timeout = undefined;
      this.armedAt = Number.POSITIVE_INFINITY;
      return;
    }
    if (this.timeout !== undefined && t.at === this.armedAt) return;
    if (this.timeout !== undefined) clearTimeout(this.timeout);
    this.armedAt = t.at;
    this.timeout = setTimeout(() => {
      this.timeout = undefined;
      this.armedAt = Number.POSITIVE_INFINITY;
      this.sched.fireDue(this.clock.now());
      // Timers may fire a little early against performance.now(): re-arm when still idle.
      if (this.sched.runnableCount === 0) this.arm();
    }, this.clock.realDelay(t.at));
  }

  stop(): void {
    this.stopped = true;
    if (this.timeout !== undefined) clearTimeout(this.timeout);
    this.timeout = undefined;
    this.sched.halt();
  }

  /** Blocked tasks and the blocked local parties they wait on, holders resolved to labels. */
  snapshot(): SnapshotNode[] {
    const nodes: SnapshotNode[] = [];
    const seen = new Set<string>();
    const visit = (h: Holder, task: SchedTask | undefined): void => {
      while (isRef(h)) {
        const target = h.target();
        if (target === undefined) return; // another domain's party: that domain publishes it
        h = target;
      }
      if (seen.has(h.label)) return;
      seen.add(h.label);
      const wait = h.blockedOn();
      if (wait === undefined) return;
      const holders = wait.holders?.() ?? [];
      const node: SnapshotNode = {
        label: h.label,
        kind: task !== undefined ? (task.blockKind ?? 'wait') : 'holder',
        daemon: task?.daemon ?? false,
        what: wait.what,
        holders: holders.map((x) => resolvedLabel(x)),
      };
      if (task !== undefined) node.id = task.id;
      if (wait.deadline !== undefined) node.deadline = wait.deadline;
      if (wait.timeoutName !== undefined) node.timeoutName = wait.timeoutName;
      nodes.push(node);
      for (const x of holders) visit(x, x instanceof SchedTask ? x : undefined);
    };
    for (const t of this.sched.live) if (t.state === 'blocked') visit(t, t);
    for (const h of this.published.values()) visit(h, undefined);
    return nodes;
  }
}

/** A reference that resolves locally is published under the real label; others keep theirs. */
function resolvedLabel(h: Holder): string {
  let x: Holder | undefined = h;
  while (x !== undefined && isRef(x)) {
    const t: Holder | undefined = x.target();
    if (t === undefined) return x.label;
    x = t;
  }
  return x?.label ?? h.label;
}
