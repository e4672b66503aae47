/**
 * Timers of the runtime: a binary min-heap ordered by (time, insertion sequence), so ties fire in
 * the order they were armed. Cancelled timers are removed lazily (skipped when they reach the top).
 */
import type { Holder, Millis } from './engine.js';

/** `sleep`: scheduled work; `background`: housekeeping; `timeout`: a waiter giving up. */
export type TimerKind = 'sleep' | 'background' | 'timeout';

export interface Timer {
  readonly at: Millis;
  readonly seq: number;
  readonly kind: TimerKind;
  /** The task the timer belongs to (a sleeper or a waiter that may time out). */
  readonly owner: Holder | undefined;
  cancelled: boolean;
  fire(): void;
}

export class TimerHeap {
  private readonly heap: Timer[] = [];
  private cancelledCount = 0;

  get size(): number {
    return this.heap.length - this.cancelledCount;
  }

  push(timer: Timer): void {
    const h = this.heap;
    h.push(timer);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(timer, h[parent])) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = timer;
  }

  /** Mark a timer dead; it is dropped when it reaches the top (or on compaction). */
  cancel(timer: Timer): void {
    if (timer.cancelled) return;
    timer.cancelled = true;
    this.cancelledCount++;
    if (this.cancelledCount > 64 && this.cancelledCount * 2 > this.heap.length) this.compact();
  }

  /** The earliest live timer, or undefined. */
  peek(): Timer | undefined {
    const h = this.heap;
    while (h.length > 0 && h[0].cancelled) {
      this.popTop();
      this.cancelledCount--;
    }
    return h[0];
  }

  /** Remove and return the earliest live timer. */
  pop(): Timer | undefined {
    const top = this.peek();
    if (top !== undefined) this.popTop();
    return top;
  }

  /** Live timers, unordered (for snapshots and reports; not on the hot path). */
  live(): Timer[] {
    return this.heap.filter((t) => !t.cancelled);
  }

  private popTop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    let i = 0;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(h[r], h[l]) ? r : l;
      if (!before(h[c], last)) break;
      h[i] = h[c];
      i = c;
    }
    h[i] = last;
  }

  private compact(): void {
    const liveTimers = this.live();
    this.heap.length = 0;
    this.cancelledCount = 0;
    for (const t of liveTimers) this.push(t);
  }
}

function before(x: Timer, y: Timer): boolean {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq);
}

/** Real time scaled to virtual ms, shared by every thread through a common epoch. */
export class ScaledClock {
  /**
   * @param epoch absolute real ms (`performance.timeOrigin + performance.now()` in the main thread)
   * @param timeScale real ms per virtual ms (0.01: a virtual 5000 ms takes 50 real ms)
   */
  constructor(
    public epoch: number,
    readonly timeScale: number,
  ) {
    if (!(timeScale > 0) || !Number.isFinite(timeScale)) {
      throw new Error(`timeScale must be a positive finite number, got ${timeScale}`);
    }
  }

  static realNow(): number {
    return performance.timeOrigin + performance.now();
  }

  now(): number {
    return (ScaledClock.realNow() - this.epoch) / this.timeScale;
  }

  /** Real ms until virtual time `at` (never negative). */
  realDelay(at: number): number {
    return Math.max(0, (at - this.now()) * this.timeScale);
  }
}
