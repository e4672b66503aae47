/**
 * A fault hook in EVTCHNOP_send (not in Xen): a scenario arms "drop the next `count` notifications to
 * domain D's port P (or any port of D)", and the send path swallows them after resolving the target,
 * before the pending bit is set. The sender sees success; the receiver never sees the event, so only a
 * timeout or a later send rescues it.
 *
 * The table lives in its own SharedArrayBuffer so every worker's hypervisor instance sees the same
 * arming: ENTRIES records of three int32 words [domid + 1 (0 = free), port (-1 = any), count left].
 * A record stays bound to its (domid, port) once claimed; arming it again adds to its count.
 */

export const EVTCHN_LOSS_ENTRIES = 16;
const WORDS = 3;
const ANY_PORT = -1;

export class EvtchnLossTable {
  readonly words: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(EVTCHN_LOSS_ENTRIES * WORDS * 4)) {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength !== EVTCHN_LOSS_ENTRIES * WORDS * 4) {
      throw new RangeError(
        `evtchn loss table: needs a SharedArrayBuffer of ${EVTCHN_LOSS_ENTRIES * WORDS * 4} bytes`,
      );
    }
    this.words = new Int32Array(buffer);
  }

  /** Drop the next `count` sends to `domid`'s `port` (every port when undefined); adds to an armed entry. */
  arm(domid: number, port: number | undefined, count: number): void {
    if (!Number.isInteger(domid) || domid < 0 || domid >= 0x7ff0) {
      throw new RangeError(`evtchn loss: domid ${domid} is not a domain id`);
    }
    if (port !== undefined && (!Number.isInteger(port) || port < 1)) {
      throw new RangeError(`evtchn loss: port ${port} is not an event-channel port (>= 1)`);
    }
    if (!Number.isInteger(count) || count < 1)
      throw new RangeError(`evtchn loss: count ${count} is not >= 1`);
    const p = port ?? ANY_PORT;
    const w = this.words;
    for (let i = 0; i < EVTCHN_LOSS_ENTRIES; i++) {
      const at = i * WORDS;
      if (Atomics.load(w, at) === domid + 1 && Atomics.load(w, at + 1) === p) {
        Atomics.add(w, at + 2, count);
        return;
      }
    }
    for (let i = 0; i < EVTCHN_LOSS_ENTRIES; i++) {
      const at = i * WORDS;
      // Claim a free record by its domid word; port 0 and count 0 match no send until both are set.
      if (Atomics.compareExchange(w, at, 0, domid + 1) !== 0) continue;
      Atomics.store(w, at + 1, p);
      Atomics.store(w, at + 2, count);
      return;
    }
    throw new RangeError(`evtchn loss: more than ${EVTCHN_LOSS_ENTRIES} armed faults`);
  }

  /** Sends still to be dropped for `domid` (on `port` when given: that port's and any-port entries). */
  pending(domid: number, port?: number): number {
    let n = 0;
    const w = this.words;
    for (let i = 0; i < EVTCHN_LOSS_ENTRIES; i++) {
      const at = i * WORDS;
      if (Atomics.load(w, at) !== domid + 1) continue;
      const p = Atomics.load(w, at + 1);
      if (port === undefined || p === ANY_PORT || p === port) n += Math.max(0, Atomics.load(w, at + 2));
    }
    return n;
  }

  /** Takes one drop for a send to `domid`'s `port`, if armed: true means the send is lost. */
  consume(domid: number, port: number): boolean {
    const w = this.words;
    for (const wanted of [port, ANY_PORT]) {
      for (let i = 0; i < EVTCHN_LOSS_ENTRIES; i++) {
        const at = i * WORDS;
        if (Atomics.load(w, at) !== domid + 1 || Atomics.load(w, at + 1) !== wanted) continue;
        for (;;) {
          const left = Atomics.load(w, at + 2);
          if (left <= 0) break;
          if (Atomics.compareExchange(w, at + 2, left, left - 1) === left) return true;
        }
      }
    }
    return false;
  }
}
