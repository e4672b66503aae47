/**
 * Cross-thread upcall delivery: one Int32 kick word per domid in a SharedArrayBuffer. A kick adds one
 * and notifies; the target worker waits on its word with Atomics.waitAsync and runs its upcall.
 */
import { DOMID_FIRST_RESERVED } from './domain-boot.js';
import type { DomId, UpcallKicker } from './engine.js';

export function createKickBuffers(): { kicks: SharedArrayBuffer; present: SharedArrayBuffer } {
  return {
    kicks: new SharedArrayBuffer(DOMID_FIRST_RESERVED * 4),
    present: new SharedArrayBuffer(DOMID_FIRST_RESERVED * 4),
  };
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
      Atomics.add(kicks, domid, 1);
      Atomics.notify(kicks, domid);
    },
  };
}

// Atomics.waitAsync is in Node 20 but only in TypeScript's ES2024 lib; the project targets ES2023.
type WaitAsync = (
  a: Int32Array,
  index: number,
  value: number,
) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/**
 * Call `onKick` after each change of this domain's word (changes in between coalesce). `from` is the
 * value already handled (default: the current one); a word already past it kicks at once.
 */
export function watchKicks(
  kicks: Int32Array,
  domid: DomId,
  onKick: (value: number) => void,
  from?: number,
): () => number {
  let seen = from ?? Atomics.load(kicks, domid);
  const loop = (): void => {
    const r = waitAsync(kicks, domid, seen);
    if (r.async) r.value.then(check);
    else queueMicrotask(check);
  };
  const check = (): void => {
    const v = Atomics.load(kicks, domid);
    if (v !== seen) {
      seen = v;
      onKick(v);
    }
    loop();
  };
  loop();
  return () => seen;
}
