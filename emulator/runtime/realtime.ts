/**
 * The threads engine's per-thread runtime: the shared scheduler (FIFO) driven by real, scaled time.
 * When nothing is runnable the thread sleeps on one real timeout for its earliest timer; kicks and
 * messages wake it from outside. Also builds the snapshot of blocked parties the watchdog reads.
 */
import type { ScaledClock } from './clock.js';
import type { Holder, HolderDirectory } from './engine.js';
import { FifoRunQueue, SchedTask, Scheduler } from './scheduler.js';
import type { SnapshotNode } from './status-slot.js';
import { type HolderRef, labelWithoutIds } from './waitgraph.js';

/** Let the event loop in (kicks, messages, timers) after this many switches without going idle. */
const SWITCHES_PER_MACROTASK = 256;

export class RealtimeRunner {
  readonly sched: Scheduler;
  private timeout: ReturnType<typeof setTimeout> | undefined;
  private armedAt = Number.POSITIVE_INFINITY;
  private sinceIdle = 0;
  private readonly published = new Map<string, Holder>();
  readonly holders: HolderDirectory;
  /** Called each time the thread goes idle (publish status). */
  onIdle: () => void = () => {};

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
    this.holders = {
      publish: (h) => {
        const old = this.published.get(h.label);
        if (old !== undefined && old !== h)
          throw new Error(`holders.publish: label "${h.label}" is already taken`);
        this.published.set(h.label, h);
        return () => {
          if (this.published.get(h.label) === h) this.published.delete(h.label);
        };
      },
      ref: (label): HolderRef => ({
        label,
        target: () => this.localHolder(label),
        blockedOn: () => this.localHolder(label)?.blockedOn(),
      }),
    };
  }

  /** Every so many switches, defer the next one to a macrotask so kicks, messages and timers get in. */
  private beforeResume(): boolean {
    if (++this.sinceIdle < SWITCHES_PER_MACROTASK) return false;
    this.sinceIdle = 0;
    setImmediate(() => {
      this.sched.fireDue(this.clock.now());
      this.sched.dispatch();
    });
    return true;
  }

  private idle(): boolean {
    this.sinceIdle = 0;
    this.sched.fireDue(this.clock.now());
    if (this.sched.runnableCount > 0) return true;
    this.arm();
    this.onIdle();
    return false;
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
    if (this.timeout !== undefined) clearTimeout(this.timeout);
    this.timeout = undefined;
    this.sched.halt();
  }

  private localHolder(label: string): Holder | undefined {
    const h = this.published.get(label);
    if (h !== undefined) return h;
    let byName: SchedTask | undefined;
    let count = 0;
    for (const t of this.sched.live) {
      if (t.label === label) return t;
      if (labelWithoutIds(t.label) === label) {
        byName = t;
        count++;
      }
    }
    return count === 1 ? byName : undefined;
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

function isRef(h: Holder): h is HolderRef {
  return typeof (h as Partial<HolderRef>).target === 'function';
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
