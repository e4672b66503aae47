/**
 * Readiness for select()/poll(). Linux puts a selecting task on every file's wait queue; here every
 * file that changes readiness wakes one per-domain poll queue and each selecting task re-checks its own
 * descriptors. The outcome is the same; only the number of spurious wake-ups differs.
 */
import type { Env, WaitQueue } from '../runtime/engine.js';

export interface Readiness {
  /** POLLIN (or POLLHUP/POLLERR, which select() also reports as readable). */
  readable: boolean;
  /** POLLOUT (or POLLERR: a write would fail at once, e.g. EPIPE). */
  writable: boolean;
}

export class PollHub {
  readonly queue: WaitQueue;

  constructor(env: Env) {
    this.queue = env.waitQueue('poll/select');
  }

  /** wake_up_interruptible(&file's wait queue) for any file: selecting tasks re-check their sets. */
  wake(): void {
    this.queue.wakeAll();
  }
}
