/**
 * Cross-thread upcall delivery: each domid owns a 64-byte group of Int32 words in a SharedArrayBuffer
 * (its own cache line, so kicks to one domain do not bounce another's line):
 * - KICK: kicks so far; a kick adds one.
 * - SLEEP: how the owner waits, so a kicker calls Atomics.notify (costly when the waiter is a
 *   waitAsync promise) only when someone waits: AWAKE (the owner looks at KICK before it next waits),
 *   ASYNC (a waitAsync promise in its event loop), BLOCKED (Atomics.wait on KICK, briefly).
 * - POSTED: messages the main thread has posted to the owner, so a blocked owner is woken for them.
 * The futex rule (all Atomics are sequentially consistent): the waiter stores SLEEP, then looks at KICK
 * and POSTED; the kicker adds to KICK (POSTED), then looks at SLEEP. One of them sees the other.
 */
import { DOMID_FIRST_RESERVED } from './domain-boot.js';
import type { DomId, UpcallKicker } from './engine.js';

/** Int32 words per domid (64 bytes). */
const STRIDE = 16;
const KICK = 0;
const SLEEP = 1;
const POSTED = 2;

/**
 * Upper bound of the adaptive spin before Atomics.wait (µs of one core per idle period at most).
 * 0: measured on the 2-core bench machine under load, any spin (20 µs cap) lost more to stolen CPU
 * than it saved in notifies (stream 250-330 k/s spinning vs 300-430 k/s not; round trip 70-95 vs 60-78 µs).
 */
export const SPIN_MAX_US = 0;

export const AWAKE = 0;
export const ASYNC = 1;
export const BLOCKED = 2;

export function createKickBuffers(): { kicks: SharedArrayBuffer; present: SharedArrayBuffer } {
  return {
    kicks: new SharedArrayBuffer(DOMID_FIRST_RESERVED * STRIDE * 4),
    present: new SharedArrayBuffer(DOMID_FIRST_RESERVED * 4),
  };
}

/** Index of a domain's kick counter in the kicks array. */
export function kickIndex(domid: DomId): number {
  return domid * STRIDE + KICK;
}

/** The kick counter of `domid` (the watchdog compares it with the count the worker consumed). */
export function kickCount(kicks: Int32Array, domid: DomId): number {
  return Atomics.load(kicks, domid * STRIDE + KICK);
}

/** How the owner of `domid` waits now: AWAKE, ASYNC or BLOCKED. */
export function sleepState(kicks: Int32Array, domid: DomId): number {
  return Atomics.load(kicks, domid * STRIDE + SLEEP);
}

/** Reset a domain's words before its worker starts. */
export function resetKickWords(kicks: Int32Array, domid: DomId): void {
  const base = domid * STRIDE;
  Atomics.store(kicks, base + KICK, 0);
  Atomics.store(kicks, base + SLEEP, AWAKE);
  Atomics.store(kicks, base + POSTED, 0);
}

export function sharedKicker(kicks: Int32Array, present: Int32Array): UpcallKicker {
  return {
    kick(domid: DomId): void {
      if (
        !Number.isInteger(domid) ||
        domid < 0 ||
        domid >= present.length ||
        Atomics.load(present, domid) !== 1
      ) {
        throw new Error(`kick: no domain ${domid}`);
      }
      const base = domid * STRIDE;
      Atomics.add(kicks, base + KICK, 1);
      if (Atomics.load(kicks, base + SLEEP) !== AWAKE) Atomics.notify(kicks, base + KICK);
    },
  };
}

/**
 * The main thread posted a message to `domid`'s worker: count it, and wake the worker when it is
 * blocked in Atomics.wait (a worker asleep in its event loop gets the message event anyway).
 */
export function notePosted(kicks: Int32Array, domid: DomId): void {
  const base = domid * STRIDE;
  Atomics.add(kicks, base + POSTED, 1);
  if (Atomics.load(kicks, base + SLEEP) === BLOCKED) Atomics.notify(kicks, base + KICK);
}

// Atomics.waitAsync is in Node 20 but only in TypeScript's ES2024 lib; the project targets ES2023.
type WaitAsync = (
  a: Int32Array,
  index: number,
  value: number,
) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/**
 * The owner's side of its words, in its own worker. Kicks coalesce: `onKick` runs once for every
 * change of KICK it observes, however many kicks the change holds. Nothing here allocates per kick
 * except the waitAsync promise, and that only when the worker really sleeps in its event loop.
 */
export class KickWatcher {
  /**
   * Real µs to spin on the kick word before blocking (adaptive: up to SPIN_MAX_US while kicks come
   * that soon, halved each time none does; 0 disables spinning).
   */
  spinUs = 0;
  /** The most the adaptive spin may grow to (µs); 0 never spins. */
  spinMaxUs = SPIN_MAX_US;
  private readonly kickAt: number;
  private readonly sleepAt: number;
  private readonly postedAt: number;
  private seenKicks: number;
  /** A waitAsync promise is outstanding (it cannot be cancelled; any notify settles it). */
  private asyncPending = false;
  private readonly onAsync = (): void => {
    this.asyncPending = false;
    // Still in ASYNC mode (the thread has not gone idle another way since): take the kick and wait
    // again at once, as the thread may stay idle (no upcall handler) or be busy until its next idle.
    this.poll(); // in the event loop, onKick's wake dispatches at once
    if (Atomics.load(this.kicks, this.sleepAt) === ASYNC) this.waitInLoop();
  };

  /**
   * @param onKick called with the new counter value after each observed change
   * @param messagesTaken messages this worker has received so far (POSTED ahead of it means pending)
   * @param from the counter value already handled (default: the current one)
   */
  constructor(
    private readonly kicks: Int32Array,
    domid: DomId,
    private readonly onKick: (value: number) => void,
    private readonly messagesTaken: () => number,
    from?: number,
  ) {
    const base = domid * STRIDE;
    this.kickAt = base + KICK;
    this.sleepAt = base + SLEEP;
    this.postedAt = base + POSTED;
    this.seenKicks = from ?? Atomics.load(kicks, this.kickAt);
  }

  /** The counter value last handed to `onKick`. */
  get seen(): number {
    return this.seenKicks;
  }

  /** Take a kick that has arrived (no blocking). True when one was taken. */
  poll(): boolean {
    const v = Atomics.load(this.kicks, this.kickAt);
    if (v === this.seenKicks) return false;
    this.seenKicks = v;
    this.onKick(v);
    return true;
  }

  /** A message from the main thread is posted but not yet received (only the event loop delivers it). */
  messagePending(): boolean {
    return Atomics.load(this.kicks, this.postedAt) !== this.messagesTaken();
  }

  /**
   * Poll for up to `spins` loads, then block the thread in Atomics.wait for up to `ms` real ms.
   * Returns 'kick' (taken), 'message' (one is pending: go to the event loop) or 'timeout'.
   */
  block(ms: number): 'kick' | 'message' | 'timeout' {
    const k = this.kicks;
    const seen = this.seenKicks;
    const start = performance.now();
    const spinUs = Math.min(this.spinUs, ms * 1000);
    if (spinUs > 0) {
      // A spinning thread stays AWAKE: the kicker skips Atomics.notify, the costly half of a wake.
      for (let i = 1; ; i++) {
        if (Atomics.load(k, this.kickAt) !== seen) {
          this.adapt((performance.now() - start) * 1000);
          return this.poll() ? 'kick' : 'timeout';
        }
        if ((i & 63) === 0 && (performance.now() - start) * 1000 >= spinUs) break;
      }
    }
    Atomics.store(k, this.sleepAt, BLOCKED);
    if (Atomics.load(k, this.postedAt) !== this.messagesTaken()) {
      Atomics.store(k, this.sleepAt, AWAKE);
      return 'message';
    }
    Atomics.wait(k, this.kickAt, seen, ms - (performance.now() - start));
    Atomics.store(k, this.sleepAt, AWAKE);
    if (this.poll()) {
      this.adapt((performance.now() - start) * 1000);
      return 'kick';
    }
    this.adapt(Number.POSITIVE_INFINITY);
    return this.messagePending() ? 'message' : 'timeout';
  }

  /** A kick came `us` after the thread went idle: spin about twice that next time, if affordable. */
  private adapt(us: number): void {
    if (us <= this.spinMaxUs) this.spinUs = Math.min(this.spinMaxUs, Math.max(this.spinUs, 2 * us));
    else this.spinUs = this.spinUs < 1 ? 0 : this.spinUs / 2;
  }

  /**
   * The worker goes back to its event loop with nothing to do: from now on a kick settles the
   * waitAsync promise. True when a kick was already there (taken at once; do not sleep yet).
   */
  sleep(): boolean {
    Atomics.store(this.kicks, this.sleepAt, ASYNC);
    if (this.poll()) {
      Atomics.store(this.kicks, this.sleepAt, AWAKE);
      return true;
    }
    // An outstanding promise still waits (registered at an older value, but only a notify settles it).
    if (this.asyncPending || !this.waitInLoop()) return false;
    Atomics.store(this.kicks, this.sleepAt, AWAKE);
    return true;
  }

  /**
   * Have a waitAsync promise outstanding (SLEEP stays ASYNC); a kick that arrives before it is
   * registered is taken here, and then the result is true.
   */
  private waitInLoop(): boolean {
    let took = false;
    for (;;) {
      const r = waitAsync(this.kicks, this.kickAt, this.seenKicks);
      if (r.async) {
        this.asyncPending = true;
        r.value.then(this.onAsync);
        return took;
      }
      took = this.poll() || took;
    }
  }
}
