/**
 * A Xen bus_dma map (struct bus_dmamap_xen, Part A3/A4) with the state machine of the reference and
 * the holes of the 2018 code closed (B7):
 *
 *   created ─load→ loading ─→ loaded ─unload→ unloaded ─load→ loading ...
 *                     │  └─(refs short, may wait)→ deferred ─(free callback → task)→ loaded
 *                     └─(refs short, NOWAIT)→ back, ENOMEM        └─unload→ unloaded (ECANCELED)
 *   created | unloaded ─destroy→ destroyed
 *
 * - A load that finds grant references short returns EINPROGRESS; the grant free callback (or a ref
 *   coming back to the driver's pool) only *schedules* a task, which claims the refs, grants them and
 *   runs the client callback — exactly once, never inside the releasing caller's lock or stack (A5.5).
 * - Unload while deferred cancels the free callback and the pool waiter, holds nothing, and completes
 *   the client callback with ECANCELED (A5.1).
 * - Unload ends access with the atomic try-operation (XSA-396): a grant the backend still maps is put
 *   on the grant table's deferred list with its frame, which leaves the guest's allocator for good
 *   (`GuestMemory.surrender`) and goes back to Xen only once revoked. A tag created with
 *   `revoke: 'query-then-end'` behaves as the code before XSA-396 did instead (teardown.md §4 C11).
 */
import type { GrantFreeCallback } from '../grant-table.js';
import { GrantRefHead } from '../grant-table.js';
import { XEN_PAGE_SIZE } from '../ring.js';
import {
  BUS_DMA_NOWAIT,
  BUS_DMA_XEN_RO,
  BusDmaError,
  EBUSY,
  ECANCELED,
  EFBIG,
  EINPROGRESS,
  EINVAL,
  ENOMEM,
} from './constants.js';
import type { GuestBuffer } from './guest-memory.js';
import type { DmaTag } from './tag.js';

export type DmaMapState = 'created' | 'loading' | 'deferred' | 'loaded' | 'unloaded' | 'destroyed';

/** One loaded segment: a piece of one frame and the grant that lets the other end reach it. */
export interface DmaSegment {
  readonly mfn: number;
  /** Byte offset in the frame. */
  readonly offset: number;
  readonly length: number;
  readonly gref: number;
}

/** bus_dmamap_callback_t: segments on success (error 0), or an errno and no segments. */
export type DmaCallback = (segments: readonly DmaSegment[], error: number) => void;

interface PendingLoad {
  buffer: GuestBuffer;
  pieces: Array<{ mfn: number; offset: number; length: number }>;
  readonly: boolean;
  callback: DmaCallback;
  freeCallback: GrantFreeCallback;
  poolWaiter: () => void;
  /** A retry task is scheduled and has not run yet. */
  retryScheduled: boolean;
}

export class DmaMap {
  private stateValue: DmaMapState = 'created';
  private segs: DmaSegment[] = [];
  /** Where each ref came from, so unload returns it there. */
  private fromPool: boolean[] = [];
  private pending: PendingLoad | undefined;
  /** Grants that were still mapped at the last unload (now on the deferred list). */
  lastUnloadStillMapped = 0;

  constructor(
    readonly tag: DmaTag,
    readonly name: string,
    private readonly onDestroy: () => void,
  ) {}

  get state(): DmaMapState {
    return this.stateValue;
  }

  /** The loaded segments (xen_dmamap_get_grefs gives their refs). */
  get segments(): readonly DmaSegment[] {
    return this.segs;
  }

  get grefs(): number[] {
    return this.segs.map((s) => s.gref);
  }

  private setState(to: DmaMapState): void {
    const from = this.stateValue;
    this.stateValue = to;
    this.tag.env.trace.emit('busdma', 'map-state', { map: this.name, from, to });
  }

  /** Split a buffer into segments that each fit one page (and the tag's maxSegSize). */
  private split(buf: GuestBuffer): Array<{ mfn: number; offset: number; length: number }> {
    const t = this.tag;
    if (!Number.isInteger(buf.offset) || buf.offset < 0 || buf.offset >= XEN_PAGE_SIZE) {
      throw new BusDmaError(EINVAL, `${this.name}: buffer offset ${buf.offset} is not within the first page`);
    }
    if (!Number.isSafeInteger(buf.length) || buf.length < 1) {
      throw new BusDmaError(EINVAL, `${this.name}: buffer length ${buf.length} must be positive`);
    }
    if (buf.offset + buf.length > buf.frames.length * XEN_PAGE_SIZE) {
      throw new BusDmaError(
        EINVAL,
        `${this.name}: buffer of ${buf.length} bytes at offset ${buf.offset} overruns its ${buf.frames.length} frame(s)`,
      );
    }
    const out: Array<{ mfn: number; offset: number; length: number }> = [];
    let pos = buf.offset;
    const end = buf.offset + buf.length;
    while (pos < end) {
      const frame = Math.floor(pos / XEN_PAGE_SIZE);
      const inPage = pos % XEN_PAGE_SIZE;
      if (inPage % t.alignment !== 0) {
        throw new BusDmaError(
          EINVAL,
          `${this.name}: segment at byte ${inPage} of a page breaks alignment ${t.alignment}`,
        );
      }
      const length = Math.min(XEN_PAGE_SIZE - inPage, end - pos, t.maxSegSize);
      out.push({ mfn: buf.frames[frame], offset: inPage, length });
      pos += length;
    }
    return out;
  }

  /**
   * bus_dmamap_load. Returns 0 (the callback has run, in this stack, as bus_dma does), EINPROGRESS
   * (the callback will run later from a task, exactly once), or an errno with nothing held and no
   * callback: EFBIG (too many segments), ENOMEM (refs short and BUS_DMA_NOWAIT).
   * Flags: BUS_DMA_NOWAIT, BUS_DMA_XEN_RO (grant read-only: the device only reads this memory).
   */
  load(buf: GuestBuffer, flags: number, callback: DmaCallback): number {
    if (this.stateValue !== 'created' && this.stateValue !== 'unloaded') {
      throw new BusDmaError(
        this.stateValue === 'destroyed' ? EINVAL : EBUSY,
        `${this.name}: load in state ${this.stateValue} (a map holds one load at a time)`,
      );
    }
    const pieces = this.split(buf);
    if (pieces.length > this.tag.maxSegments) return EFBIG;
    const readonly = (flags & BUS_DMA_XEN_RO) !== 0;
    const before = this.stateValue;
    this.setState('loading');
    if (this.grant(pieces, readonly)) {
      this.setState('loaded');
      callback(this.segs, 0);
      return 0;
    }
    if (flags & BUS_DMA_NOWAIT) {
      this.setState(before);
      return ENOMEM;
    }
    const p: PendingLoad = {
      buffer: buf,
      pieces,
      readonly,
      callback,
      freeCallback: { fn: () => {}, count: pieces.length },
      poolWaiter: () => this.scheduleRetry(p),
      retryScheduled: false,
    };
    this.pending = p;
    this.setState('deferred');
    this.armWaiters(p);
    return EINPROGRESS;
  }

  /** A promise-style load for tasks: waits (declared) through a deferral; throws BusDmaError on error. */
  async loadWait(buf: GuestBuffer, flags: number): Promise<readonly DmaSegment[]> {
    const env = this.tag.env;
    let result: { segs: readonly DmaSegment[]; error: number } | undefined;
    const q = env.waitQueue(`${this.name} load`);
    const rc = this.load(buf, flags, (segs, error) => {
      result = { segs, error };
      q.wakeAll();
    });
    if (rc !== 0 && rc !== EINPROGRESS)
      throw new BusDmaError(rc, `${this.name}: load failed with errno ${rc}`);
    if (!result) {
      await env.wait(q, () => result !== undefined, {
        what: `${this.split(buf).length} grant reference(s) for ${this.tag.name}`,
      });
    }
    const r = result!;
    if (r.error !== 0)
      throw new BusDmaError(r.error, `${this.name}: deferred load failed with errno ${r.error}`);
    return r.segs;
  }

  /** Claim refs for every piece and grant them; false (holding nothing) when refs are short. */
  private grant(pieces: Array<{ mfn: number; offset: number; length: number }>, readonly: boolean): boolean {
    const t = this.tag;
    let refs: number[] | undefined = t.pool?.claim(pieces.length);
    let fromPool = refs !== undefined;
    if (!refs) {
      const head = new GrantRefHead();
      if (t.gnttab.allocGrantReferences(pieces.length, head) !== 0) return false;
      refs = [];
      for (let i = 0; i < pieces.length; i++) refs.push(t.gnttab.claimGrantReference(head));
      fromPool = false;
    }
    this.segs = pieces.map((p, i) => {
      t.gnttab.grantForeignAccessRef(refs![i], t.domid, p.mfn, readonly);
      return { ...p, gref: refs![i] };
    });
    this.fromPool = pieces.map(() => fromPool);
    return true;
  }

  private armWaiters(p: PendingLoad): void {
    this.tag.gnttab.requestFreeCallback(p.freeCallback, () => this.scheduleRetry(p), p.pieces.length);
    this.tag.pool?.addWaiter(p.poolWaiter);
  }

  private disarmWaiters(p: PendingLoad): void {
    this.tag.gnttab.cancelFreeCallback(p.freeCallback);
    this.tag.pool?.removeWaiter(p.poolWaiter);
  }

  /** Called from whoever freed refs (maybe holding their locks): only schedule the retry. */
  private scheduleRetry(p: PendingLoad): void {
    if (this.pending !== p || p.retryScheduled) return;
    p.retryScheduled = true;
    this.disarmWaiters(p);
    this.tag.env.spawn(
      `busdma-retry`,
      async () => {
        p.retryScheduled = false;
        if (this.pending !== p) return; // unloaded meanwhile: the cancel already completed it
        if (!this.grant(p.pieces, p.readonly)) {
          this.armWaiters(p); // someone else took the refs first: keep waiting
          return;
        }
        this.pending = undefined;
        this.setState('loaded');
        p.callback(this.segs, 0);
      },
      { component: 'busdma' },
    );
  }

  /**
   * bus_dmamap_unload. Loaded: end access on each grant; a ref ends up back in the pool or the global
   * list, or — still mapped by the other end — on the deferred list with its frame surrendered.
   * Returns how many grants were still mapped. Deferred: cancel the wait and complete the client
   * callback with ECANCELED from a task. Created/unloaded: nothing to do.
   */
  unload(): number {
    const t = this.tag;
    switch (this.stateValue) {
      case 'destroyed':
        throw new BusDmaError(EINVAL, `${this.name}: unload after destroy`);
      case 'created':
      case 'unloaded':
        return 0;
      case 'deferred': {
        const p = this.pending!;
        this.pending = undefined;
        this.disarmWaiters(p);
        this.setState('unloaded');
        t.env.spawn('busdma-cancel', async () => p.callback([], ECANCELED), { component: 'busdma' });
        return 0;
      }
      case 'loading':
        throw new BusDmaError(EBUSY, `${this.name}: unload while loading`);
      case 'loaded':
        break;
    }
    if (t.revoke === 'query-then-end') return this.unloadQueryThenEnd();
    const failed: DmaSegment[] = [];
    this.segs.forEach((s, i) => {
      if (t.gnttab.endForeignAccessRef(s.gref)) {
        if (this.fromPool[i]) t.pool!.release(s.gref);
        else t.gnttab.freeGrantReference(s.gref);
        return;
      }
      failed.push(s);
    });
    // The backend still maps these: never reuse their frames until revoked (XSA-396). A frame with
    // two such grants is not handed to either (the first revocation would free it under the second):
    // it stays surrendered, leaked rather than reused, as Linux does when it cannot defer.
    for (const s of failed) {
      if (!t.memory.isSurrendered(s.mfn)) t.memory.surrender(s.mfn);
      const shared = failed.filter((o) => o.mfn === s.mfn).length > 1;
      t.gnttab.endForeignAccess(s.gref, shared ? undefined : s.mfn);
    }
    const stillMapped = failed.length;
    this.segs = [];
    this.fromPool = [];
    this.lastUnloadStillMapped = stillMapped;
    this.setState('unloaded');
    return stillMapped;
  }

  /**
   * Unload as blkfront did before XSA-396 (Linux abf1fd5919d6^): gnttab_query_foreign_access() first;
   * a grant that reads mapped is left granted (Linux kept it, ref live, on rinfo->grants), one that
   * reads unmapped gets gnttab_end_foreign_access(ref, 0, 0UL), which defers the ref alone when the
   * backend mapped it after the query. Neither holds the frame: the caller frees it for reuse while the
   * backend may still reach it. Returns how many grants read mapped.
   * Simplification: the refs left granted are not reused (Linux ended them at blkif_free); and nothing
   * runs between the query and the end here (one synchronous pass), so the window the backend used on
   * another CPU is not interleaved — what remains is the page freed while still mapped.
   */
  private unloadQueryThenEnd(): number {
    const t = this.tag;
    let mapped = 0;
    this.segs.forEach((s, i) => {
      if (t.gnttab.queryForeignAccess(s.gref) !== 0) {
        mapped++;
        return;
      }
      if (t.gnttab.endForeignAccessRef(s.gref)) {
        if (this.fromPool[i]) t.pool!.release(s.gref);
        else t.gnttab.freeGrantReference(s.gref);
        return;
      }
      t.gnttab.endForeignAccess(s.gref);
    });
    this.segs = [];
    this.fromPool = [];
    this.lastUnloadStillMapped = mapped;
    this.setState('unloaded');
    return mapped;
  }

  /** bus_dmamap_destroy: EBUSY while loaded or deferred. */
  destroy(): void {
    if (this.stateValue === 'destroyed') return;
    if (this.stateValue === 'loaded' || this.stateValue === 'deferred' || this.stateValue === 'loading') {
      throw new BusDmaError(EBUSY, `${this.name}: destroy while ${this.stateValue}; unload first`);
    }
    this.setState('destroyed');
    this.onDestroy();
  }
}
