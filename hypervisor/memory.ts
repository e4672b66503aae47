/**
 * Machine memory: 4 KiB frames in one SharedArrayBuffer, each owned by a domain, by Xen
 * (DOMID_XEN) or free. PV-style, a guest frame number is the machine frame number (gfn == mfn);
 * there is no p2m translation.
 *
 * A frame a foreign domain has mapped through a grant carries a reference; a domain that frees it
 * meanwhile only marks it pending, and it returns to the free pool when the last reference goes
 * (as Xen's put_page does), so the mapper never sees the page handed to someone else.
 *
 * The memory lock is always the innermost lock.
 *
 * Allocation hands out zeroed frames. A fresh SharedArrayBuffer is all zeros and the OS gives its pages
 * lazily, so a frame that was never handed out since the buffer was made is not scrubbed (nor touched):
 * FRAME_HANDED_OUT in its flags says it has been, and stays set across frees (and across machines,
 * when a closed machine's buffers are recycled: SharedState.recycle).
 */
import { ENOMEM, XenError } from './errno.js';
import { DOMID_XEN, PAGE_SIZE } from './layout.js';
import {
  DF_MAX_PAGES,
  DF_TOT_PAGES,
  FRAME_HANDED_OUT,
  FRAME_PENDING_FREE,
  H_FREE_TOP,
  H_LOCK_MEMORY,
  OWNER_FREE,
  SHARED_NONE,
  type SharedState,
} from './shared-state.js';
import { spinLock, spinUnlock } from './spinlock.js';

export { FRAME_HANDED_OUT };

/** Scrubbing copies from this (V8 fills a SharedArrayBuffer view a byte at a time; set() is a memcpy). */
const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

export class MachineMemory {
  constructor(private readonly s: SharedState) {}

  get totalFrames(): number {
    return this.s.limits.frames;
  }

  freeFrames(): number {
    return Atomics.load(this.s.ctl, H_FREE_TOP);
  }

  ownerOf(mfn: number): number {
    this.checkMfn(mfn, 'mfn');
    return Atomics.load(this.s.frameOwner, mfn);
  }

  /** Never handed out since the buffer was made: still all zeros, allocation need not scrub it. */
  isPristine(mfn: number): boolean {
    return (Atomics.load(this.s.frameFlags, mfn) & FRAME_HANDED_OUT) === 0;
  }

  isPendingFree(mfn: number): boolean {
    return (Atomics.load(this.s.frameFlags, mfn) & FRAME_PENDING_FREE) !== 0;
  }

  sharedWith(mfn: number): number {
    return Atomics.load(this.s.frameShared, mfn);
  }

  refs(mfn: number): number {
    return Atomics.load(this.s.frameRefs, mfn);
  }

  checkMfn(mfn: number, field: string): void {
    if (!Number.isInteger(mfn) || mfn < 0 || mfn >= this.s.limits.frames) {
      throw new XenError(-22, `${field} ${mfn} is not a machine frame (0..${this.s.limits.frames - 1})`);
    }
  }

  /**
   * Take `n` zeroed frames for a domain (slot accounts tot_pages against max_pages) or, with
   * slot -1, for Xen itself. Returns null when memory or the domain's allowance is short; nothing
   * is taken then.
   */
  alloc(owner: number, slot: number, n: number, sharedWith = SHARED_NONE): number[] | null {
    const s = this.s;
    const out: number[] = [];
    const dirty: number[] = [];
    spinLock(s.ctl, H_LOCK_MEMORY, s.token, 'memory');
    try {
      const top = s.ctl[H_FREE_TOP];
      if (top < n) return null;
      if (slot >= 0) {
        const tot = s.field(slot, DF_TOT_PAGES);
        if (tot + n > s.field(slot, DF_MAX_PAGES)) return null;
        s.setField(slot, DF_TOT_PAGES, tot + n);
      }
      for (let i = 0; i < n; i++) {
        const mfn = s.freeStack[top - 1 - i];
        s.frameOwner[mfn] = owner;
        s.frameRefs[mfn] = 0;
        if (s.frameFlags[mfn] & FRAME_HANDED_OUT) dirty.push(mfn);
        s.frameFlags[mfn] = FRAME_HANDED_OUT;
        s.frameShared[mfn] = sharedWith;
        out.push(mfn);
      }
      Atomics.store(s.ctl, H_FREE_TOP, top - n);
    } finally {
      spinUnlock(s.ctl, H_LOCK_MEMORY, s.token, 'memory');
    }
    // Scrub outside the lock: nobody else can reach these frames yet.
    for (const mfn of dirty) s.memory.set(ZERO_PAGE, mfn * PAGE_SIZE);
    return out;
  }

  allocXen(n: number, sharedWith = SHARED_NONE): number[] {
    const got = this.alloc(DOMID_XEN, -1, n, sharedWith);
    if (!got) throw new XenError(-ENOMEM, `Xen heap: ${n} frame(s) wanted, ${this.freeFrames()} free`);
    return got;
  }

  /**
   * Give a frame back. If foreign references remain it is only marked pending and freed by the
   * last `putRef`. `slot` is the owning domain's slot for tot_pages (-1 for Xen frames).
   */
  release(mfn: number, slot: number): void {
    const s = this.s;
    spinLock(s.ctl, H_LOCK_MEMORY, s.token, 'memory');
    try {
      if (s.frameRefs[mfn] > 0) {
        s.frameFlags[mfn] |= FRAME_PENDING_FREE;
        return;
      }
      this.freeLocked(mfn, slot);
    } finally {
      spinUnlock(s.ctl, H_LOCK_MEMORY, s.token, 'memory');
    }
  }

  /** A foreign mapping or copy takes a reference on the frame (get_page). */
  getRef(mfn: number): void {
    Atomics.add(this.s.frameRefs, mfn, 1);
  }

  /** Drop a reference; frees a pending-free frame on the last one. `slot` = owner's slot. */
  putRef(mfn: number, slot: number): void {
    const s = this.s;
    spinLock(s.ctl, H_LOCK_MEMORY, s.token, 'memory');
    try {
      const left = --s.frameRefs[mfn];
      if (left < 0) throw new Error(`putRef: frame ${mfn} reference count underflow`);
      if (left === 0 && s.frameFlags[mfn] & FRAME_PENDING_FREE) this.freeLocked(mfn, slot);
    } finally {
      spinUnlock(s.ctl, H_LOCK_MEMORY, s.token, 'memory');
    }
  }

  private freeLocked(mfn: number, slot: number): void {
    const s = this.s;
    if (s.frameOwner[mfn] === OWNER_FREE) throw new Error(`release: frame ${mfn} is already free`);
    s.frameOwner[mfn] = OWNER_FREE;
    s.frameFlags[mfn] = FRAME_HANDED_OUT;
    s.frameShared[mfn] = SHARED_NONE;
    const top = s.ctl[H_FREE_TOP];
    s.freeStack[top] = mfn;
    Atomics.store(s.ctl, H_FREE_TOP, top + 1);
    if (slot >= 0) s.setField(slot, DF_TOT_PAGES, s.field(slot, DF_TOT_PAGES) - 1);
  }

  /** A view of exactly one frame (the bytes are shared, not copied). */
  view(mfn: number): Uint8Array {
    return new Uint8Array(this.s.buffers.memory, mfn * PAGE_SIZE, PAGE_SIZE);
  }
}
