/**
 * xenwatch: the one task per domain that runs every xenstore watch callback, in arrival order (Linux
 * drivers/xen/xenbus/xenbus_xs.c, xenwatch_thread). A callback that sleeps therefore stalls every other
 * watch of every device of every guest the domain serves; that is the mechanism behind the C8
 * teardown stall and the 2012 residual race, so it is modelled exactly: one queue, one task, one mutex.
 *
 * XSA-349: a guest can rewrite a node dom0 watches faster than xenwatch drains it. Each watch counts its
 * pending events (nr_pending); `willHandle` may refuse an event (xenbus_backend refuses while one is
 * pending) and, beyond Linux, every watch has a bound on pending events past which events are discarded
 * with a log line. Handlers re-read the node, so a dropped duplicate loses nothing.
 *
 * An event queued with a trace flow id emits `watch-callback` (component "xenwatch") right before its
 * callback runs, ending the flow xenstored's `watch-fire` started.
 */
import {
  type DomId,
  type Env,
  type Mutex,
  type Task,
  traceWanted,
  type WaitFor,
  type WaitQueue,
} from '../../emulator/runtime/engine.js';

export type WatchCallback = (path: string, token: string) => void | Promise<void>;

export interface WatchOptions {
  /** Return false to drop an event before it is queued (Linux xenbus_watch.will_handle). */
  willHandle?: (watch: XenbusWatch, path: string, token: string) => boolean;
  /** Events beyond this many pending are discarded (defaults to the xenwatch's limit). */
  maxPending?: number;
}

/** One registered watch (struct xenbus_watch). */
export class XenbusWatch {
  /** Events queued for this watch and not yet run (nr_pending). */
  nrPending = 0;
  /** Events dropped by the pending bound since registration. */
  discarded = 0;
  /** Set by the client when registered: the token sent to xenstored. */
  token = '';
  /** False once unregistered; events for it are no longer queued. */
  active = false;

  constructor(
    readonly node: string,
    readonly callback: WatchCallback,
    readonly options: WatchOptions = {},
  ) {}
}

interface WatchEvent {
  readonly watch: XenbusWatch;
  readonly path: string;
  readonly token: string;
  /** Trace flow id of the WATCH_EVENT (drivers/xenbus/watch-flow.ts), when it came from xenstored. */
  readonly flow: number | undefined;
}

export interface XenwatchOptions {
  /** Task name (Linux: "xenwatch"). */
  name?: string;
  /**
   * Per-watch bound on pending events (XSA-349). Linux leaves ordinary watches unbounded and relies on
   * will_handle; we also bound them so a flood cannot exhaust the emulator.
   */
  maxPendingPerWatch?: number;
}

export const DEFAULT_MAX_PENDING_PER_WATCH = 256;

/** Name of the xenwatch task of a domain's kernel (Linux's kthread is "xenwatch"). */
export const XENWATCH_TASK_NAME = 'xenwatch';

/**
 * How another party names domain `domain`'s xenwatch in the engine's holder directory
 * (`holders.ref(...)`): the only live task of that name there, e.g. "dom0/xenwatch".
 */
export function xenwatchHolderLabel(domain: DomId): string {
  return `dom${domain}/${XENWATCH_TASK_NAME}`;
}

/** Where an event stands in xenwatch: its callback is running, or it waits in the queue. */
export type WatchEventPlace = 'running' | 'queued';

export class Xenwatch {
  readonly name: string;
  readonly maxPendingPerWatch: number;
  private readonly events: WatchEvent[] = [];
  private head = 0;
  private readonly queue: WaitQueue;
  /** Held while a callback runs (xenwatch_mutex), so unregistering can wait for it. */
  readonly mutex: Mutex;
  private taskRef: Task | undefined;
  private runningEvent: WatchEvent | undefined;
  /** Events discarded by the bound, over all watches. */
  discardedTotal = 0;

  constructor(
    private readonly env: Env,
    options: XenwatchOptions = {},
  ) {
    this.name = options.name ?? XENWATCH_TASK_NAME;
    this.maxPendingPerWatch = options.maxPendingPerWatch ?? DEFAULT_MAX_PENDING_PER_WATCH;
    if (!Number.isInteger(this.maxPendingPerWatch) || this.maxPendingPerWatch < 1) {
      throw new RangeError(
        `xenwatch maxPendingPerWatch: ${this.maxPendingPerWatch} is not a positive integer`,
      );
    }
    this.queue = env.waitQueue(`${this.name} events`);
    this.mutex = env.mutex(`${this.name}_mutex`);
  }

  /** The xenwatch task (after start()). */
  get task(): Task | undefined {
    return this.taskRef;
  }

  /** Events queued and not yet started. */
  get pending(): number {
    return this.events.length - this.head;
  }

  /** The watch whose callback is running now, if any. */
  get running(): XenbusWatch | undefined {
    return this.runningEvent?.watch;
  }

  /**
   * The first event for which `match(watch, path)` holds: the running one, else the oldest queued one.
   * For wait-for reports: which callback the system is waiting on xenwatch to run.
   */
  findEvent(match: (watch: XenbusWatch, path: string) => boolean): WatchEventPlace | undefined {
    const running = this.runningEvent;
    if (running !== undefined && match(running.watch, running.path)) return 'running';
    for (let i = this.head; i < this.events.length; i++) {
      const ev = this.events[i]!;
      if (match(ev.watch, ev.path)) return 'queued';
    }
    return undefined;
  }

  /**
   * A wait on something only this xenwatch can do (run a callback): its holder is the xenwatch task,
   * whose own wait (a sleeping callback, say) continues a stall chain.
   */
  waitFor(what: string): WaitFor {
    return { what, holders: () => (this.taskRef === undefined ? [] : [this.taskRef]) };
  }

  start(): Task {
    if (this.taskRef) throw new Error(`${this.name}: already started`);
    this.taskRef = this.env.spawn(this.name, () => this.loop(), { daemon: true, component: 'xenwatch' });
    return this.taskRef;
  }

  /** True when the caller is the xenwatch task itself (callbacks must not wait for themselves). */
  isCurrent(): boolean {
    return this.taskRef !== undefined && this.env.current() === this.taskRef;
  }

  /**
   * Queue an event for `watch` (xs_watch_msg). Returns false when it was dropped: the watch is gone,
   * its willHandle refused, or its pending bound is reached.
   */
  queueEvent(watch: XenbusWatch, path: string, token: string, flow?: number): boolean {
    if (!watch.active) return false;
    if (watch.options.willHandle && !watch.options.willHandle(watch, path, token)) return false;
    const limit = watch.options.maxPending ?? this.maxPendingPerWatch;
    if (watch.nrPending >= limit) {
      if (watch.discarded === 0 || watch.discarded % limit === 0) {
        this.env.trace.log(
          'xenwatch',
          `${this.name}: ${watch.nrPending} events pending for watch ${watch.node}; discarding event for ${path} (XSA-349 bound ${limit})`,
        );
      }
      watch.discarded++;
      this.discardedTotal++;
      return false;
    }
    this.events.push({ watch, path, token, flow });
    watch.nrPending++;
    this.queue.wakeAll();
    return true;
  }

  /**
   * After a watch is unregistered: wait for a running callback to finish (unless we are xenwatch) and
   * drop the watch's queued events (the tail of unregister_xenbus_watch).
   */
  async cancel(watch: XenbusWatch): Promise<void> {
    watch.active = false;
    const self = this.isCurrent();
    if (!self) await this.mutex.lock(`${this.name} to finish the callback for ${watch.node}`);
    try {
      if (watch.nrPending > 0) {
        const kept: WatchEvent[] = [];
        for (let i = this.head; i < this.events.length; i++) {
          const ev = this.events[i]!;
          if (ev.watch !== watch) kept.push(ev);
        }
        this.events.length = 0;
        this.head = 0;
        this.events.push(...kept);
        watch.nrPending = 0;
      }
    } finally {
      if (!self) this.mutex.unlock();
    }
  }

  private async loop(): Promise<void> {
    for (;;) {
      await this.env.wait(this.queue, () => this.pending > 0, { what: 'xenstore watch events' });
      await this.mutex.lock(`${this.name}_mutex`);
      const ev = this.shift();
      if (ev) {
        ev.watch.nrPending--;
        this.runningEvent = ev;
        if (ev.flow !== undefined && traceWanted(this.env.trace, 'xenwatch', 'watch-callback')) {
          this.env.trace.emit('xenwatch', 'watch-callback', {
            path: ev.path,
            token: ev.token,
            flow: ev.flow,
          });
        }
        try {
          await ev.watch.callback(ev.path, ev.token);
        } catch (e) {
          // A callback must not kill xenwatch (Linux callbacks return void); say what failed.
          this.env.trace.log(
            'xenwatch',
            `${this.name}: callback for watch ${ev.watch.node} (event ${ev.path}) failed: ${(e as Error).message}`,
          );
        } finally {
          this.runningEvent = undefined;
        }
      }
      this.mutex.unlock();
    }
  }

  private shift(): WatchEvent | undefined {
    if (this.head >= this.events.length) return undefined;
    const ev = this.events[this.head++];
    if (this.head > 1024 && this.head * 2 > this.events.length) {
      this.events.splice(0, this.head);
      this.head = 0;
    }
    return ev;
  }
}
