/**
 * How kernel code blocks a task, with Linux's two sleep states kept apart:
 * - uninterruptible (D, `wait_event`, `mutex_lock`): nothing but the condition ends it, SIGKILL included;
 * - interruptible (S, `wait_event_interruptible`, select, accept, waitpid): a fatal signal ends it at once
 *   by throwing `TaskKilled` through the syscall.
 * Every wait is an `Env.wait` with its description and holders, so the runtime's wait-for graph sees it.
 */
import type { Env, Millis, Mutex, Task, WaitOptions, WaitQueue, WaitResult } from '../runtime/engine.js';
import { TaskKilled } from './signals.js';

export type SleepState = 'D' | 'S';

/** Tells the wait layer whether a task's process is dying (undefined for kernel threads). */
export interface FatalSignalSource {
  fatalPending(task: Task): { pid: number; reason: string } | undefined;
}

interface Sleeping {
  state: SleepState;
  queue: WaitQueue | undefined;
  what: string;
}

export class KernelWaits {
  private readonly sleeping = new Map<number, Sleeping>();
  private signals: FatalSignalSource | undefined;
  constructor(private readonly env: Env) {}

  setSignalSource(source: FatalSignalSource): void {
    this.signals = source;
  }

  /** wait_event(): uninterruptible, no timeout unless given. */
  async waitUninterruptible(q: WaitQueue, cond: () => boolean, options: WaitOptions): Promise<WaitResult> {
    const task = this.env.current();
    this.sleeping.set(task.id, { state: 'D', queue: q, what: options.what });
    try {
      return await this.env.wait(q, cond, options);
    } finally {
      this.sleeping.delete(task.id);
    }
  }

  /** wait_event_interruptible(_timeout)(): a fatal signal throws TaskKilled instead of returning. */
  async waitInterruptible(q: WaitQueue, cond: () => boolean, options: WaitOptions): Promise<WaitResult> {
    const task = this.env.current();
    this.checkFatal(task);
    this.sleeping.set(task.id, { state: 'S', queue: q, what: options.what });
    let result: WaitResult;
    try {
      result = await this.env.wait(q, () => cond() || this.fatalOf(task) !== undefined, options);
    } finally {
      this.sleeping.delete(task.id);
    }
    this.checkFatal(task);
    return result;
  }

  /** mutex_lock(): uninterruptible. */
  async lock(m: Mutex, what?: string): Promise<void> {
    const task = this.env.current();
    this.sleeping.set(task.id, { state: 'D', queue: undefined, what: what ?? m.name });
    try {
      await m.lock(what);
    } finally {
      this.sleeping.delete(task.id);
    }
  }

  /**
   * nanosleep()/msleep() as a plain engine sleep (so stall detection sees a timer, not a blocked wait).
   * Simplification: a fatal signal during an interruptible sleep takes effect when the sleep ends.
   */
  async sleep(ms: Millis, options: { interruptible: boolean; what?: string }): Promise<void> {
    const task = this.env.current();
    const what = options.what ?? `sleep ${ms} ms`;
    if (options.interruptible) this.checkFatal(task);
    this.sleeping.set(task.id, { state: options.interruptible ? 'S' : 'D', queue: undefined, what });
    try {
      await this.env.sleep(ms, { what });
    } finally {
      this.sleeping.delete(task.id);
    }
    if (options.interruptible) this.checkFatal(task);
  }

  /** Throws TaskKilled when the current task's process has a fatal signal pending (a scheduling point). */
  checkpoint(): void {
    this.checkFatal(this.env.current());
  }

  /** Wakes `task` if it sleeps interruptibly, so it notices its fatal signal. */
  interrupt(task: Task): void {
    const s = this.sleeping.get(task.id);
    if (s === undefined || s.state !== 'S') return;
    s.queue?.wakeAll();
  }

  /** D or S for a blocked task that blocked through this layer; undefined otherwise. */
  sleepStateOf(task: Task): { state: SleepState; what: string } | undefined {
    const s = this.sleeping.get(task.id);
    return s === undefined ? undefined : { state: s.state, what: s.what };
  }

  private fatalOf(task: Task): { pid: number; reason: string } | undefined {
    return this.signals?.fatalPending(task);
  }

  private checkFatal(task: Task): void {
    const fatal = this.fatalOf(task);
    if (fatal !== undefined) throw new TaskKilled(fatal.pid, fatal.reason);
  }
}
