/**
 * The guest kernel's grant table (Linux drivers/xen/grant-table.c, FreeBSD sys/xen/gnttab.c): the
 * granting side writes v1 entries in the frames Xen shares with it, and hands out grant references
 * from a free list that starts at ref 8, growing the table with GNTTABOP_setup_table up to the
 * maximum GNTTABOP_query_size reports.
 *
 * Entries are written exactly as Linux does: domid and frame first, then the flags with a release
 * store; revocation is a 16-bit CMPXCHG of the flags to 0 that fails while Xen has set GTF_reading
 * or GTF_writing (the backend still maps or copies the page). A revocation that fails in
 * `endForeignAccess` is deferred and retried once a second, keeping the page (XSA-396).
 */
import type { Env } from '../emulator/runtime/engine.js';
import { ENOMEM, ENOSPC } from '../hypervisor/errno.js';
import type { Hypercalls } from '../hypervisor/hypercall.js';
import {
  GNTST_okay,
  GNTTAB_NR_RESERVED_ENTRIES,
  GRANT_ENTRIES_PER_FRAME,
  GRANT_REF_INVALID,
  GTF_permit_access,
  GTF_reading,
  GTF_readonly,
  GTF_writing,
} from '../hypervisor/layout.js';

/** The hypercalls this code needs (a narrower seam makes unit tests easy). */
export type GrantHypercalls = Pick<Hypercalls, 'setupTable' | 'querySize' | 'page' | 'freePage'>;

/** GNTTAB_LIST_END. */
export const GNTTAB_LIST_END = GRANT_REF_INVALID;

/** A private chain of references taken with `allocGrantReferences` (Linux `grant_ref_t head`). */
export class GrantRefHead {
  head: number = GNTTAB_LIST_END;
}

/** Linux `struct gnttab_free_callback`: `fn` runs once `count` references are free. */
export interface GrantFreeCallback {
  fn: () => void;
  count: number;
  /** Set while queued (Linux `queued`). */
  queued?: boolean;
}

interface Deferred {
  ref: number;
  page: number | undefined;
  warnDelay: number;
}

export interface GrantTableOptions {
  /** For the deferred-revocation timer and kernel log lines; without it call `processDeferred()`. */
  env?: Env;
  /** Frames to set up at once (default: whatever Xen already gave, at least 1). */
  initialFrames?: number;
}

/** Linux retries deferred revocations once a second, up to 10 entries per pass. */
export const DEFERRED_INTERVAL_MS = 1000;
export const DEFERRED_PER_PASS = 10;
const DEFERRED_WARN_DELAY = 60;

export class GrantTable {
  private readonly hc: GrantHypercalls;
  private readonly env: Env | undefined;
  private flags: Uint16Array[] = [];
  private words: Uint32Array[] = [];
  private nrFrames = 0;
  readonly maxFrames: number;
  /** next[] threads the free list and private chains through the refs, as gnttab_list does. */
  private next: Uint32Array = new Uint32Array(0);
  private freeHead = GNTTAB_LIST_END;
  private freeCountValue = 0;
  private callbacks: GrantFreeCallback[] = [];
  private inCallbacks = false;
  private callbacksAgain = false;
  private readonly deferred: Deferred[] = [];
  private deferredTimer = false;

  constructor(hc: GrantHypercalls, options: GrantTableOptions = {}) {
    this.hc = hc;
    this.env = options.env;
    const q = hc.querySize();
    if (q.status !== GNTST_okay) throw new Error(`gnttab: query_size failed with status ${q.status}`);
    this.maxFrames = q.maxNrFrames as number;
    const want = Math.max(options.initialFrames ?? 1, q.nrFrames as number, 1);
    if (this.grow(want) !== 0) throw new Error(`gnttab: could not set up ${want} grant frame(s)`);
  }

  get nrGrantFrames(): number {
    return this.nrFrames;
  }

  get nrEntries(): number {
    return this.nrFrames * GRANT_ENTRIES_PER_FRAME;
  }

  /** gnttab_free_count. */
  get freeCount(): number {
    return this.freeCountValue;
  }

  get deferredCount(): number {
    return this.deferred.length;
  }

  private log(message: string): void {
    this.env?.trace.log('gnttab', message);
  }

  // ---------------- table growth ----------------

  /** Map frames up to `frames` and thread the new refs onto the free list. 0 or -errno. */
  private grow(frames: number): number {
    if (frames > this.maxFrames) return -ENOSPC;
    const st = this.hc.setupTable(frames);
    if (st.status !== GNTST_okay || !st.frameList) return -ENOMEM;
    const oldEntries = this.nrEntries;
    for (let i = this.nrFrames; i < frames; i++) {
      const view = this.hc.page(st.frameList[i]);
      this.flags.push(new Uint16Array(view.buffer, view.byteOffset, view.byteLength / 2));
      this.words.push(new Uint32Array(view.buffer, view.byteOffset, view.byteLength / 4));
    }
    this.nrFrames = frames;
    const next = new Uint32Array(this.nrEntries);
    next.set(this.next);
    this.next = next;
    // New refs go on the free list in ascending order; the reserved ones never do.
    const first = Math.max(oldEntries, GNTTAB_NR_RESERVED_ENTRIES);
    for (let ref = this.nrEntries - 1; ref >= first; ref--) this.putFree(ref);
    return 0;
  }

  /** gnttab_expand: enough frames for `needed` more refs, up to the maximum. */
  private expand(needed: number): number {
    const extra = Math.ceil(needed / GRANT_ENTRIES_PER_FRAME);
    if (this.nrFrames + extra > this.maxFrames) {
      this.log(`gnttab_expand: ${this.nrFrames} + ${extra} frames exceeds the maximum ${this.maxFrames}`);
      return -ENOSPC;
    }
    return this.grow(this.nrFrames + extra);
  }

  // ---------------- free list ----------------

  private putFree(ref: number): void {
    this.next[ref] = this.freeHead;
    this.freeHead = ref;
    this.freeCountValue++;
  }

  /** get_free_entries: take `count` refs off the free list as a chain; first ref or -errno. */
  private takeFree(count: number): number {
    if (this.freeCountValue < count) {
      const rc = this.expand(count - this.freeCountValue);
      if (rc < 0) return rc;
    }
    const first = this.freeHead;
    let last = first;
    for (let i = 1; i < count; i++) last = this.next[last];
    this.freeHead = this.next[last];
    this.next[last] = GNTTAB_LIST_END;
    this.freeCountValue -= count;
    return first;
  }

  private checkRef(ref: number, what: string): void {
    if (!Number.isInteger(ref) || ref < GNTTAB_NR_RESERVED_ENTRIES || ref >= this.nrEntries) {
      throw new RangeError(
        `${what}: ref ${ref} is not a guest grant reference (${GNTTAB_NR_RESERVED_ENTRIES}..${this.nrEntries - 1})`,
      );
    }
  }

  /** One free reference, or -ENOSPC when the table cannot grow further. */
  allocGrantReference(): number {
    const ref = this.takeFree(1);
    return ref < 0 ? -ENOSPC : ref;
  }

  /** gnttab_free_grant_reference: return one ref and run the free callbacks. */
  freeGrantReference(ref: number): void {
    this.checkRef(ref, 'freeGrantReference');
    this.putFree(ref);
    this.checkFreeCallbacks();
  }

  /** gnttab_alloc_grant_references: `count` refs as a private chain; 0 or -ENOSPC. */
  allocGrantReferences(count: number, head: GrantRefHead): number {
    if (!Number.isInteger(count) || count < 0 || count > 0xffff) {
      throw new RangeError(`allocGrantReferences: count must be a u16, got ${count}`);
    }
    if (count === 0) {
      head.head = GNTTAB_LIST_END;
      return 0;
    }
    const first = this.takeFree(count);
    if (first < 0) return -ENOSPC;
    head.head = first;
    return 0;
  }

  /** gnttab_claim_grant_reference: pop a ref from the chain, or -ENOSPC if it is empty. */
  claimGrantReference(head: GrantRefHead): number {
    const g = head.head;
    if (g === GNTTAB_LIST_END) return -ENOSPC;
    head.head = this.next[g];
    return g;
  }

  /** gnttab_release_grant_reference: push a ref back onto the private chain. */
  releaseGrantReference(head: GrantRefHead, ref: number): void {
    this.checkRef(ref, 'releaseGrantReference');
    this.next[ref] = head.head;
    head.head = ref;
  }

  /** gnttab_free_grant_references: give a whole private chain back, then run the callbacks. */
  freeGrantReferences(head: GrantRefHead): void {
    let ref = head.head;
    head.head = GNTTAB_LIST_END;
    while (ref !== GNTTAB_LIST_END) {
      const nextRef = this.next[ref];
      this.putFree(ref);
      ref = nextRef;
    }
    this.checkFreeCallbacks();
  }

  emptyGrantReferences(head: GrantRefHead): boolean {
    return head.head === GNTTAB_LIST_END;
  }

  /**
   * gnttab_request_free_callback: run `cb.fn` once `count` refs are free (at once if they already
   * are). A callback already queued is left as it is.
   */
  requestFreeCallback(cb: GrantFreeCallback, fn: () => void, count: number): void {
    if (cb.queued) return;
    cb.fn = fn;
    cb.count = count;
    cb.queued = true;
    this.callbacks.unshift(cb);
    this.checkFreeCallbacks();
  }

  /** gnttab_cancel_free_callback. */
  cancelFreeCallback(cb: GrantFreeCallback): void {
    const i = this.callbacks.indexOf(cb);
    if (i >= 0) this.callbacks.splice(i, 1);
    cb.queued = false;
  }

  /**
   * do_free_callbacks: each callback whose count is now satisfied is unlinked and called; the rest
   * stay queued. A callback may itself free or request; that pass runs after this one instead of
   * nesting (Linux holds a non-recursive lock here, so its callbacks only schedule work).
   */
  private checkFreeCallbacks(): void {
    if (this.inCallbacks) {
      this.callbacksAgain = true;
      return;
    }
    this.inCallbacks = true;
    try {
      do {
        this.callbacksAgain = false;
        const list = this.callbacks;
        this.callbacks = [];
        const keep: GrantFreeCallback[] = [];
        for (const cb of list) {
          if (!cb.queued) continue; // cancelled by an earlier callback of this pass
          if (cb.count <= this.freeCountValue) {
            cb.queued = false;
            cb.fn();
          } else {
            keep.push(cb);
          }
        }
        // Callbacks requested during the pass were put on the new list; keep them in front.
        this.callbacks = this.callbacks.concat(keep);
      } while (this.callbacksAgain);
    } finally {
      this.inCallbacks = false;
    }
  }

  // ---------------- entries ----------------

  private flagsOf(ref: number): { f: Uint16Array; i: number } {
    return {
      f: this.flags[Math.floor(ref / GRANT_ENTRIES_PER_FRAME)],
      i: (ref % GRANT_ENTRIES_PER_FRAME) * 4,
    };
  }

  /** gnttab_grant_foreign_access_ref: domid and frame first, then flags (release store). */
  grantForeignAccessRef(ref: number, domid: number, frame: number, readonly: boolean): void {
    this.checkRef(ref, 'grantForeignAccessRef');
    if (!Number.isInteger(domid) || domid < 0 || domid > 0xffff) {
      throw new RangeError(`grantForeignAccessRef: domid must be a u16, got ${domid}`);
    }
    if (!Number.isInteger(frame) || frame < 0 || frame > 0xffffffff) {
      throw new RangeError(`grantForeignAccessRef: frame must be a u32, got ${frame}`);
    }
    const { f, i } = this.flagsOf(ref);
    const w = this.words[Math.floor(ref / GRANT_ENTRIES_PER_FRAME)];
    f[i + 1] = domid;
    w[(i >> 1) + 1] = frame;
    Atomics.store(f, i, GTF_permit_access | (readonly ? GTF_readonly : 0));
  }

  /** gnttab_grant_foreign_access: allocate a ref and grant it; the ref or -ENOSPC. */
  grantForeignAccess(domid: number, frame: number, readonly: boolean): number {
    const ref = this.allocGrantReference();
    if (ref < 0) return ref;
    this.grantForeignAccessRef(ref, domid, frame, readonly);
    return ref;
  }

  /** Raw flags of an entry (for diagnostics and tests). */
  entryFlags(ref: number): number {
    this.checkRef(ref, 'entryFlags');
    const { f, i } = this.flagsOf(ref);
    return Atomics.load(f, i);
  }

  /** gnttab_query_foreign_access: non-zero while the grantee maps or copies the page. */
  queryForeignAccess(ref: number): number {
    return this.entryFlags(ref) & (GTF_reading | GTF_writing);
  }

  /**
   * gnttab_end_foreign_access_ref (v1): CMPXCHG the flags to 0 only while neither GTF_reading nor
   * GTF_writing is set. True on success; false while the entry is in use.
   */
  endForeignAccessRef(ref: number): boolean {
    this.checkRef(ref, 'endForeignAccessRef');
    const { f, i } = this.flagsOf(ref);
    let flags = Atomics.load(f, i);
    for (;;) {
      if (flags & (GTF_reading | GTF_writing)) {
        this.log(`g.e. ${hex(ref)} still in use!`);
        return false;
      }
      const prev = Atomics.compareExchange(f, i, flags, 0);
      if (prev === flags) return true;
      flags = prev;
    }
  }

  /** gnttab_try_end_foreign_access: end access and free the ref only if that worked. */
  tryEndForeignAccess(ref: number): boolean {
    const ok = this.endForeignAccessRef(ref);
    if (ok) this.freeGrantReference(ref);
    return ok;
  }

  /**
   * gnttab_end_foreign_access(ref, page): on success free the ref (and the page, if given); while
   * the grantee still uses it, defer both and retry from a timer. The page stays allocated until
   * the revocation succeeds, so the grantee can never reach memory reused for something else.
   */
  endForeignAccess(ref: number, page?: number): void {
    if (this.tryEndForeignAccess(ref)) {
      if (page !== undefined) this.hc.freePage(page);
      return;
    }
    this.deferred.push({ ref, page, warnDelay: DEFERRED_WARN_DELAY });
    this.log(`deferring g.e. ${hex(ref)}${page !== undefined ? ` (pfn ${hex(page)})` : ''}`);
    this.armDeferredTimer();
  }

  /**
   * gnttab_handle_deferred: retry up to DEFERRED_PER_PASS entries; returns how many remain.
   */
  processDeferred(): number {
    const n = Math.min(DEFERRED_PER_PASS, this.deferred.length);
    for (let k = 0; k < n; k++) {
      const entry = this.deferred.shift() as Deferred;
      if (this.tryEndForeignAccess(entry.ref)) {
        if (entry.page !== undefined) this.hc.freePage(entry.page);
        continue;
      }
      if (--entry.warnDelay === 0) this.log(`g.e. ${hex(entry.ref)} still pending`);
      this.deferred.push(entry);
    }
    return this.deferred.length;
  }

  private armDeferredTimer(): void {
    const env = this.env;
    if (!env || this.deferredTimer) return;
    this.deferredTimer = true;
    env.spawn(
      'gnttab-deferred',
      async () => {
        try {
          while (this.deferred.length > 0) {
            await env.sleep(DEFERRED_INTERVAL_MS, {
              what: 'gnttab deferred revocation retry',
              background: true,
            });
            this.processDeferred();
          }
        } finally {
          this.deferredTimer = false;
        }
      },
      { daemon: true, component: 'gnttab' },
    );
  }

  /**
   * Make a live grant read-only (a CMPXCHG that sets GTF_readonly only while GTF_writing is clear)
   * or writable again (an atomic clear). False when the grantee has it mapped writable.
   */
  setReadonly(ref: number, readonly: boolean): boolean {
    this.checkRef(ref, 'setReadonly');
    const { f, i } = this.flagsOf(ref);
    if (!readonly) {
      Atomics.and(f, i, ~GTF_readonly & 0xffff);
      return true;
    }
    let flags = Atomics.load(f, i);
    for (;;) {
      if (flags & GTF_writing) return false;
      const prev = Atomics.compareExchange(f, i, flags, flags | GTF_readonly);
      if (prev === flags) return true;
      flags = prev;
    }
  }
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
