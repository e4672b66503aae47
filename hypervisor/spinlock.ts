/**
 * A spinlock in one Int32 word of a SharedArrayBuffer, for the short multi-word updates the
 * hypervisor makes (active entries, maptrack, port tables) while several workers make hypercalls.
 *
 * The word holds 0 when free or the holder's token (one per Hypervisor instance, i.e. per thread).
 * Hypercalls never block, so holding a lock across anything but plain memory updates is a bug; a
 * thread that finds its own token in the word has re-entered and gets an error instead of spinning
 * forever (in the sim engine every domain shares one thread, so that would be a silent hang).
 */
export class SpinLockError extends Error {
  override readonly name = 'SpinLockError';
}

/**
 * `what` names the lock and `slot` (when >= 0) the domain slot it belongs to; the two are joined only
 * for an error, so the uncontended path builds no string.
 */
export function spinLock(words: Int32Array, index: number, token: number, what: string, slot = -1): void {
  if (Atomics.compareExchange(words, index, 0, token) === 0) return;
  let spins = 0;
  for (;;) {
    const holder = Atomics.load(words, index);
    if (holder === token)
      throw new SpinLockError(`${lockName(what, slot)}: lock re-entered by its holder (token ${token})`);
    if (holder === 0 && Atomics.compareExchange(words, index, 0, token) === 0) return;
    // Another thread holds it for a few memory updates; back off without sleeping for long.
    if (++spins % 1024 === 0) Atomics.wait(words, index, holder, 0);
  }
}

export function spinUnlock(words: Int32Array, index: number, token: number, what: string, slot = -1): void {
  const prev = Atomics.compareExchange(words, index, token, 0);
  if (prev !== token)
    throw new SpinLockError(`${lockName(what, slot)}: unlock by token ${token} but holder is ${prev}`);
}

function lockName(what: string, slot: number): string {
  return slot >= 0 ? `slot ${slot} ${what}` : what;
}
