/**
 * Grant tables v1, Xen's side (xen/common/grant_table.c): shared entries in Xen-owned frames shared
 * with the granting domain, active entries with pin counters per granting domain, maptrack
 * handles per mapping domain, and the map / unmap / copy / setup_table / query_size operations with
 * their GNTST_* statuses.
 *
 * Locks: a domain's grant lock (DF_LOCK_GNT) covers its active entries, its table size and the
 * maptrack entries that point into it (Xen uses the active-entry lock for that); the maptrack lock
 * (DF_LOCK_MAPTRACK) covers a mapping domain's free list. The two are never held together, and
 * the memory lock is taken inside either. The shared entry flags are only changed with 16-bit
 * atomics, because the granting guest races on them without any lock.
 */
import { checkOpAddr, checkOpUint, opField } from './args.js';
import {
  ACTIVE_FRAMES_PER_GRANT_FRAME,
  ACTIVE_PER_FRAME,
  DOMID_SELF,
  DOMID_XEN,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTMAP_device_map,
  GNTMAP_host_map,
  GNTMAP_readonly,
  GNTPIN_devr_inc,
  GNTPIN_devw_inc,
  GNTPIN_devw_mask,
  GNTPIN_hstr_inc,
  GNTPIN_hstw_inc,
  GNTPIN_hstw_mask,
  GNTPIN_overflow_mask,
  GNTST_bad_copy_arg,
  GNTST_bad_dev_addr,
  GNTST_bad_domain,
  GNTST_bad_gntref,
  GNTST_bad_handle,
  GNTST_bad_page,
  GNTST_general_error,
  GNTST_no_space,
  GNTST_okay,
  GNTST_permission_denied,
  GRANT_ENTRIES_PER_FRAME,
  GTF_permit_access,
  GTF_reading,
  GTF_readonly,
  GTF_type_mask,
  GTF_writing,
  INITIAL_NR_GRANT_FRAMES,
  MAPTRACK_PER_FRAME,
  PAGE_SHIFT,
  PAGE_SIZE,
} from './layout.js';
import type { MachineMemory } from './memory.js';
import { ReadOnlyPage } from './readonly-page.js';
import {
  DF_DOMID,
  DF_LOCK_GNT,
  DF_LOCK_MAPTRACK,
  DF_MAX_GRANT_FRAMES,
  DF_MAX_MAPTRACK_FRAMES,
  DF_MT_HEAD,
  DF_MT_IN_USE,
  DF_MT_TAIL,
  DF_NR_GRANT_FRAMES,
  DF_NR_MAPTRACK_FRAMES,
  DF_PINNED_ACTIVE,
  DF_STATE,
  DS_ALIVE,
  DS_DYING,
  DS_FREE,
  type SharedState,
} from './shared-state.js';
import { spinLock, spinUnlock } from './spinlock.js';

/** Xen retries the flags CMPXCHG this many times before calling the entry unstable. */
const SET_STATUS_TRIES = 5;
const MT_NONE = -1;

export interface GnttabMapGrantRef {
  /** Where the mapper wants the page (a label here: no page tables are simulated). */
  hostAddr: number;
  flags: number;
  ref: number;
  dom: number;
  // OUT
  status?: number;
  handle?: number;
  devBusAddr?: number;
  /** The granter's frame: a writable view, or a ReadOnlyPage for GNTMAP_readonly. */
  page?: Uint8Array | ReadOnlyPage;
}

export interface GnttabUnmapGrantRef {
  /** Non-zero to remove the host mapping. */
  hostAddr: number;
  /** Non-zero to remove the device mapping; must then equal the frame's bus address. */
  devBusAddr: number;
  handle: number;
  status?: number;
}

export interface GnttabSetupTable {
  dom: number;
  nrFrames: number;
  status?: number;
  frameList?: number[];
}

export interface GnttabQuerySize {
  dom: number;
  nrFrames?: number;
  maxNrFrames?: number;
  status?: number;
}

export interface GnttabCopyPtr {
  /** u.ref when the flags say this side is a grant reference. */
  ref?: number;
  /** u.gmfn otherwise (the caller's own frame; gfn == mfn). */
  gmfn?: number;
  domid: number;
  offset: number;
}

export interface GnttabCopy {
  source: GnttabCopyPtr;
  dest: GnttabCopyPtr;
  len: number;
  flags: number;
  status?: number;
}

/** Hooks into the domain table, which owns lifecycle (a dying granter dies with its last pin). */
export interface GrantTableHooks {
  lastPinDropped(slot: number): void;
}

interface CopyBuf {
  status: number;
  slot: number;
  frame: number;
  ref: number;
  readonly: boolean;
  isGrant: boolean;
}

/** Field names of a copy's two sides, made once (an error names e.g. "ops[2].dest.ref"). */
const COPY_FIELD_NAMES = {
  source: { domid: 'source.domid', offset: 'source.offset', ref: 'source.ref', gmfn: 'source.gmfn' },
  dest: { domid: 'dest.domid', offset: 'dest.offset', ref: 'dest.ref', gmfn: 'dest.gmfn' },
} as const;

export class GrantTables {
  hooks: GrantTableHooks = { lastPinDropped: () => {} };

  constructor(
    private readonly s: SharedState,
    private readonly mem: MachineMemory,
  ) {}

  // ---- layout helpers ----

  nrEntries(slot: number): number {
    return this.s.field(slot, DF_NR_GRANT_FRAMES) * GRANT_ENTRIES_PER_FRAME;
  }

  grantFrame(slot: number, i: number): number {
    return Atomics.load(this.s.dom, this.s.base(slot) + this.s.grantListAt + i);
  }

  /** Index into mem16 of a shared entry's flags (domid is the next u16). */
  private flagsIndex(slot: number, ref: number): number {
    const mfn = this.grantFrame(slot, ref >>> 9);
    return (mfn * PAGE_SIZE + (ref & 511) * 8) >>> 1;
  }

  /** Index into mem32 of an active entry: pin, domid, frame. */
  private activeIndex(slot: number, ref: number): number {
    const mfn = this.s.dom[this.s.base(slot) + this.s.activeListAt + (ref >>> 8)];
    return (mfn * PAGE_SIZE + (ref & 255) * 16) >>> 2;
  }

  /** Byte offset of a maptrack entry: ref u32 @0, flags u16 @4, domid u16 @6, vcpu u32 @8. */
  private maptrackOffset(slot: number, handle: number): number {
    const mfn =
      this.s.dom[this.s.base(slot) + this.s.maptrackListAt + Math.floor(handle / MAPTRACK_PER_FRAME)];
    return mfn * PAGE_SIZE + (handle % MAPTRACK_PER_FRAME) * 16;
  }

  maptrackLimit(slot: number): number {
    return this.s.field(slot, DF_NR_MAPTRACK_FRAMES) * MAPTRACK_PER_FRAME;
  }

  /** Current pin word of an active entry (for listings and tests). */
  activePin(slot: number, ref: number): number {
    if (ref >= this.nrEntries(slot)) return 0;
    return this.s.mem32[this.activeIndex(slot, ref)] >>> 0;
  }

  // ---- lifetime ----

  /** grant_table_init: limits, then the initial frame. Returns false if memory is short. */
  init(slot: number, domid: number, maxGrantFrames: number, maxMaptrackFrames: number): boolean {
    const s = this.s;
    s.setField(slot, DF_MAX_GRANT_FRAMES, maxGrantFrames);
    s.setField(slot, DF_NR_GRANT_FRAMES, 0);
    s.setField(slot, DF_MAX_MAPTRACK_FRAMES, maxMaptrackFrames);
    s.setField(slot, DF_NR_MAPTRACK_FRAMES, 0);
    s.setField(slot, DF_MT_HEAD, MT_NONE);
    s.setField(slot, DF_MT_TAIL, MT_NONE);
    s.setField(slot, DF_MT_IN_USE, 0);
    s.setField(slot, DF_PINNED_ACTIVE, 0);
    return this.grow(slot, domid, INITIAL_NR_GRANT_FRAMES);
  }

  /** gnttab_grow_table; caller holds the grant lock (or owns the slot during creation). */
  private grow(slot: number, domid: number, req: number): boolean {
    const s = this.s;
    const base = s.base(slot);
    const cur = s.field(slot, DF_NR_GRANT_FRAMES);
    if (req <= cur) return true;
    const need = req - cur;
    const shared = this.mem.alloc(DOMID_XEN, -1, need, domid);
    if (!shared) return false;
    const active = this.mem.alloc(DOMID_XEN, -1, need * ACTIVE_FRAMES_PER_GRANT_FRAME);
    if (!active) {
      for (const f of shared) this.mem.release(f, -1);
      return false;
    }
    for (let i = 0; i < need; i++) {
      s.dom[base + s.activeListAt + (cur + i) * 2] = active[2 * i];
      s.dom[base + s.activeListAt + (cur + i) * 2 + 1] = active[2 * i + 1];
      s.dom[base + s.grantListAt + cur + i] = shared[i];
    }
    // Publish the size last: readers bound refs by it.
    s.setField(slot, DF_NR_GRANT_FRAMES, req);
    return true;
  }

  /** Free every Xen frame of a dead domain's grant table and maptrack. */
  teardown(slot: number): void {
    const s = this.s;
    const base = s.base(slot);
    const nr = s.field(slot, DF_NR_GRANT_FRAMES);
    for (let i = 0; i < nr; i++) {
      this.mem.release(s.dom[base + s.grantListAt + i], -1);
      this.mem.release(s.dom[base + s.activeListAt + 2 * i], -1);
      this.mem.release(s.dom[base + s.activeListAt + 2 * i + 1], -1);
    }
    const mt = s.field(slot, DF_NR_MAPTRACK_FRAMES);
    for (let i = 0; i < mt; i++) this.mem.release(s.dom[base + s.maptrackListAt + i], -1);
    s.setField(slot, DF_NR_GRANT_FRAMES, 0);
    s.setField(slot, DF_NR_MAPTRACK_FRAMES, 0);
  }

  /**
   * gnttab_release_mappings: a dying domain drops every mapping it holds of others' grants.
   */
  releaseMappings(slot: number): void {
    const limit = this.maptrackLimit(slot);
    for (let h = 0; h < limit; h++) {
      const off = this.maptrackOffset(slot, h);
      if (Atomics.load(this.s.mem16, (off + 4) >>> 1) === 0) continue;
      const op: GnttabUnmapGrantRef = { hostAddr: 1, devBusAddr: 0, handle: h };
      this.unmapOne(slot, op, true);
    }
  }

  // ---- lookups ----

  /** Resolve and lock a domain's grant lock; returns the slot or -1 if there is no such domain. */
  private lockGnt(domid: number): number {
    const s = this.s;
    const slot = s.slotOf(domid);
    if (slot < 0) return -1;
    spinLock(s.dom, s.base(slot) + DF_LOCK_GNT, s.token, 'grant table', slot);
    // The slot may have been recycled between lookup and lock.
    if (s.field(slot, DF_STATE) === DS_FREE || s.field(slot, DF_DOMID) !== domid) {
      this.unlockGnt(slot);
      return -1;
    }
    return slot;
  }

  private unlockGnt(slot: number): void {
    spinUnlock(this.s.dom, this.s.base(slot) + DF_LOCK_GNT, this.s.token, 'grant table', slot);
  }

  // ---- maptrack ----

  /** get_maptrack_handle: FIFO free list, grown a frame at a time up to the limit. */
  private getHandle(slot: number): number {
    const s = this.s;
    const lockAt = s.base(slot) + DF_LOCK_MAPTRACK;
    spinLock(s.dom, lockAt, s.token, 'maptrack', slot);
    try {
      let head = s.field(slot, DF_MT_HEAD);
      if (head === MT_NONE) {
        const nr = s.field(slot, DF_NR_MAPTRACK_FRAMES);
        if (nr >= s.field(slot, DF_MAX_MAPTRACK_FRAMES)) return MT_NONE;
        const got = this.mem.alloc(DOMID_XEN, -1, 1);
        if (!got) return MT_NONE;
        s.dom[s.base(slot) + s.maptrackListAt + nr] = got[0];
        s.setField(slot, DF_NR_MAPTRACK_FRAMES, nr + 1);
        const first = nr * MAPTRACK_PER_FRAME;
        for (let i = 0; i < MAPTRACK_PER_FRAME; i++) {
          const h = first + i;
          const next = i === MAPTRACK_PER_FRAME - 1 ? MT_NONE : h + 1;
          s.mem32[this.maptrackOffset(slot, h) >>> 2] = next;
        }
        s.setField(slot, DF_MT_HEAD, first);
        s.setField(slot, DF_MT_TAIL, first + MAPTRACK_PER_FRAME - 1);
        head = first;
      }
      const next = s.mem32[this.maptrackOffset(slot, head) >>> 2];
      s.setField(slot, DF_MT_HEAD, next);
      if (next === MT_NONE) s.setField(slot, DF_MT_TAIL, MT_NONE);
      s.setField(slot, DF_MT_IN_USE, s.field(slot, DF_MT_IN_USE) + 1);
      return head;
    } finally {
      spinUnlock(s.dom, lockAt, s.token, 'maptrack', slot);
    }
  }

  /** put_maptrack_handle: to the tail, so a handle is not reused at once. */
  private putHandle(slot: number, handle: number): void {
    const s = this.s;
    const lockAt = s.base(slot) + DF_LOCK_MAPTRACK;
    spinLock(s.dom, lockAt, s.token, 'maptrack', slot);
    try {
      const off = this.maptrackOffset(slot, handle);
      Atomics.store(s.mem16, (off + 4) >>> 1, 0);
      s.mem32[off >>> 2] = MT_NONE;
      const tail = s.field(slot, DF_MT_TAIL);
      if (tail === MT_NONE) s.setField(slot, DF_MT_HEAD, handle);
      else s.mem32[this.maptrackOffset(slot, tail) >>> 2] = handle;
      s.setField(slot, DF_MT_TAIL, handle);
      s.setField(slot, DF_MT_IN_USE, s.field(slot, DF_MT_IN_USE) - 1);
    } finally {
      spinUnlock(s.dom, lockAt, s.token, 'maptrack', slot);
    }
  }

  maptrackInUse(slot: number): number {
    return this.s.field(slot, DF_MT_IN_USE);
  }

  // ---- pinning (shared by map and copy) ----

  /**
   * _set_status_v1: set GTF_reading (+GTF_writing) in the shared entry with a bounded CMPXCHG
   * loop. Unpinned entries must be permit_access for `ldomid`; write pins need !GTF_readonly.
   * Xen CMPXCHGs flags and domid as one 32-bit word; we CAS the 16-bit flags and read the domid
   * beside them (a guest that rewrites domid under a live grant is already broken).
   */
  private setStatus(fi: number, pinned: boolean, readonly: boolean, ldomid: number): number {
    const m = this.s.mem16;
    let cur = Atomics.load(m, fi);
    for (let tries = 1; ; tries++) {
      if (!pinned && ((cur & GTF_type_mask) !== GTF_permit_access || Atomics.load(m, fi + 1) !== ldomid)) {
        return GNTST_general_error;
      }
      let next = cur | GTF_reading;
      if (!readonly) {
        if (cur & GTF_readonly) return GNTST_general_error;
        next |= GTF_writing;
      }
      const prev = Atomics.compareExchange(m, fi, cur, next);
      if (prev === cur) return GNTST_okay;
      if (tries === SET_STATUS_TRIES) return GNTST_general_error;
      cur = prev;
    }
  }

  /**
   * Pin `ref` of the granter (grant lock held): the checks and updates common to map_grant_ref and
   * acquire_grant_for_copy. `inc` is the GNTPIN_* increment. Returns a status; on success the
   * frame (act->frame) is in `out.frame` and a page reference is taken.
   */
  private pin(
    rslot: number,
    rdomid: number,
    ref: number,
    ldomid: number,
    readonly: boolean,
    inc: number,
    out: { frame: number },
  ): number {
    const s = this.s;
    if (ref >= this.nrEntries(rslot)) return GNTST_bad_gntref;
    // A dying granter's pages can no longer be referenced (get_page fails): could_not_pin.
    if (s.field(rslot, DF_STATE) !== DS_ALIVE) return GNTST_general_error;
    const ai = this.activeIndex(rslot, ref);
    const fi = this.flagsIndex(rslot, ref);
    const pin = s.mem32[ai] >>> 0;
    if (pin !== 0 && (s.mem32[ai + 1] !== ldomid || (pin & GNTPIN_overflow_mask) !== 0)) {
      return GNTST_general_error;
    }
    if (pin === 0 || (!readonly && (pin & (GNTPIN_hstw_mask | GNTPIN_devw_mask)) === 0)) {
      const st = this.setStatus(fi, pin !== 0, readonly, ldomid);
      if (st !== GNTST_okay) return st;
      if (pin === 0) {
        const frame = s.mem32[(fi >>> 1) + 1] >>> 0;
        if (frame >= s.limits.frames || this.mem.ownerOf(frame) !== rdomid || this.mem.isPendingFree(frame)) {
          // Undo what _set_status did (unlock_out_clear).
          Atomics.and(s.mem16, fi, ~(GTF_reading | GTF_writing) & 0xffff);
          return GNTST_bad_page;
        }
        s.mem32[ai + 1] = ldomid;
        s.mem32[ai + 2] = frame;
        s.setField(rslot, DF_PINNED_ACTIVE, s.field(rslot, DF_PINNED_ACTIVE) + 1);
      }
    }
    s.mem32[ai] = (pin + inc) | 0;
    out.frame = s.mem32[ai + 2] >>> 0;
    this.mem.getRef(out.frame);
    return GNTST_okay;
  }

  /**
   * Drop pins (grant lock held) and clear GTF_writing / GTF_reading when the last writer / the
   * last pin goes (unmap_common_complete, release_grant_for_copy). Returns true when this was the
   * granter's last pinned entry.
   */
  private dropPins(rslot: number, ref: number, dec: number, readonly: boolean): boolean {
    const s = this.s;
    const ai = this.activeIndex(rslot, ref);
    const fi = this.flagsIndex(rslot, ref);
    const pin = ((s.mem32[ai] >>> 0) - dec) >>> 0;
    s.mem32[ai] = pin | 0;
    let clear = 0;
    if ((pin & (GNTPIN_devw_mask | GNTPIN_hstw_mask)) === 0 && !readonly) clear |= GTF_writing;
    if (pin === 0) clear |= GTF_reading;
    if (clear) Atomics.and(s.mem16, fi, ~clear & 0xffff);
    if (pin !== 0) return false;
    const left = s.field(rslot, DF_PINNED_ACTIVE) - 1;
    s.setField(rslot, DF_PINNED_ACTIVE, left);
    return left === 0;
  }

  private afterUnpin(rslot: number, lastPin: boolean): void {
    if (lastPin && this.s.field(rslot, DF_STATE) === DS_DYING) this.hooks.lastPinDropped(rslot);
  }

  // ---- GNTTABOP_map_grant_ref ----

  checkMap(op: GnttabMapGrantRef, index: number): void {
    checkOpAddr(op.hostAddr, index, 'hostAddr');
    checkOpUint(op.flags, 32, index, 'flags');
    checkOpUint(op.ref, 32, index, 'ref');
    checkOpUint(op.dom, 16, index, 'dom');
  }

  mapOne(lslot: number, ldomid: number, op: GnttabMapGrantRef): void {
    op.handle = undefined;
    op.devBusAddr = undefined;
    op.page = undefined;
    if ((op.flags & (GNTMAP_device_map | GNTMAP_host_map)) === 0) {
      op.status = GNTST_bad_gntref;
      return;
    }
    if (this.s.slotOf(op.dom) < 0) {
      op.status = GNTST_bad_domain;
      return;
    }
    const handle = this.getHandle(lslot);
    if (handle === MT_NONE) {
      op.status = GNTST_no_space;
      return;
    }
    const readonly = (op.flags & GNTMAP_readonly) !== 0;
    let inc = 0;
    if (op.flags & GNTMAP_device_map) inc += readonly ? GNTPIN_devr_inc : GNTPIN_devw_inc;
    if (op.flags & GNTMAP_host_map) inc += readonly ? GNTPIN_hstr_inc : GNTPIN_hstw_inc;
    const rslot = this.lockGnt(op.dom);
    if (rslot < 0) {
      this.putHandle(lslot, handle);
      op.status = GNTST_bad_domain;
      return;
    }
    const out = { frame: 0 };
    let status: number;
    try {
      status = this.pin(rslot, op.dom, op.ref, ldomid, readonly, inc, out);
      if (status === GNTST_okay) {
        // Flags last: every maptrack reader checks them first.
        const off = this.maptrackOffset(lslot, handle);
        this.s.mem32[off >>> 2] = op.ref;
        this.s.mem16[(off + 6) >>> 1] = op.dom;
        this.s.mem32[(off + 8) >>> 2] = 0;
        Atomics.store(this.s.mem16, (off + 4) >>> 1, op.flags & 0xffff);
      }
    } finally {
      this.unlockGnt(rslot);
    }
    if (status !== GNTST_okay) {
      this.putHandle(lslot, handle);
      op.status = status;
      return;
    }
    const view = this.mem.view(out.frame);
    op.status = GNTST_okay;
    op.handle = handle;
    op.devBusAddr = out.frame * 2 ** PAGE_SHIFT;
    op.page = readonly ? new ReadOnlyPage(view) : view;
  }

  // ---- GNTTABOP_unmap_grant_ref ----

  checkUnmap(op: GnttabUnmapGrantRef, index: number): void {
    checkOpAddr(op.hostAddr, index, 'hostAddr');
    checkOpAddr(op.devBusAddr, index, 'devBusAddr');
    checkOpUint(op.handle, 32, index, 'handle');
  }

  /** `release` = gnttab_release_mappings (drop both kinds of mapping regardless of addresses). */
  unmapOne(lslot: number, op: GnttabUnmapGrantRef, release = false): void {
    const s = this.s;
    if (op.handle >= this.maptrackLimit(lslot)) {
      op.status = GNTST_bad_handle;
      return;
    }
    const off = this.maptrackOffset(lslot, op.handle);
    const fIdx = (off + 4) >>> 1;
    if (Atomics.load(s.mem16, fIdx) === 0) {
      op.status = GNTST_bad_handle;
      return;
    }
    const dom = s.mem16[(off + 6) >>> 1];
    const ref = s.mem32[off >>> 2] >>> 0;
    const rslot = this.lockGnt(dom);
    if (rslot < 0) {
      // Cannot happen while the pin keeps the granter dying; report rather than corrupt.
      op.status = GNTST_bad_handle;
      return;
    }
    let done = 0;
    let lastPin = false;
    let freeHandle = false;
    try {
      // Re-check under the lock that guards this mapping against a racing unmap.
      const flags = Atomics.load(s.mem16, fIdx);
      if (flags === 0 || s.mem16[(off + 6) >>> 1] !== dom || s.mem32[off >>> 2] >>> 0 !== ref) {
        op.status = GNTST_bad_handle;
        return;
      }
      if (ref >= this.nrEntries(rslot)) {
        op.status = GNTST_bad_handle;
        return;
      }
      const ai = this.activeIndex(rslot, ref);
      const frame = s.mem32[ai + 2] >>> 0;
      const busAddr = frame * 2 ** PAGE_SHIFT;
      if (!release && op.devBusAddr !== 0 && flags & GNTMAP_device_map && op.devBusAddr !== busAddr) {
        op.status = GNTST_bad_dev_addr;
        return;
      }
      let left = flags;
      // host_addr is not checked against page tables: none are simulated.
      if ((release || op.hostAddr !== 0) && flags & GNTMAP_host_map) {
        left &= ~GNTMAP_host_map;
        done |= GNTMAP_host_map;
      }
      if ((release || op.devBusAddr !== 0) && flags & GNTMAP_device_map) {
        left &= ~GNTMAP_device_map;
        done |= GNTMAP_device_map;
      }
      const readonly = (flags & GNTMAP_readonly) !== 0;
      if (done) {
        let dec = 0;
        if (done & GNTMAP_device_map) dec += readonly ? GNTPIN_devr_inc : GNTPIN_devw_inc;
        if (done & GNTMAP_host_map) dec += readonly ? GNTPIN_hstr_inc : GNTPIN_hstw_inc;
        lastPin = this.dropPins(rslot, ref, dec, readonly);
      }
      if ((left & (GNTMAP_host_map | GNTMAP_device_map)) === 0) {
        // The page reference belongs to the maptrack entry and goes with its last mapping.
        // Clear its flags while still under the lock, so a racing unmap sees a bad handle.
        Atomics.store(s.mem16, fIdx, 0);
        freeHandle = true;
        this.mem.putRef(frame, rslot);
      } else if (done) {
        Atomics.store(s.mem16, fIdx, left);
      }
      op.status = GNTST_okay;
    } finally {
      this.unlockGnt(rslot);
    }
    if (freeHandle) this.putHandle(lslot, op.handle);
    this.afterUnpin(rslot, lastPin);
  }

  // ---- GNTTABOP_copy ----

  checkCopy(op: GnttabCopy, index: number): void {
    checkOpUint(op.flags, 16, index, 'flags');
    checkOpUint(op.len, 16, index, 'len');
    this.checkCopySide(op, index, 'source', (op.flags & GNTCOPY_source_gref) !== 0);
    this.checkCopySide(op, index, 'dest', (op.flags & GNTCOPY_dest_gref) !== 0);
  }

  private checkCopySide(op: GnttabCopy, index: number, side: 'source' | 'dest', isGref: boolean): void {
    const p = op[side];
    if (typeof p !== 'object' || p === null)
      throw new RangeError(`${opField(index, side)} must be an object`);
    const names = COPY_FIELD_NAMES[side];
    checkOpUint(p.domid, 16, index, names.domid);
    checkOpUint(p.offset, 16, index, names.offset);
    if (isGref) checkOpUint(p.ref, 32, index, names.ref);
    else checkOpUint(p.gmfn, 32, index, names.gmfn);
  }

  copyOne(lslot: number, ldomid: number, op: GnttabCopy): void {
    const srcGref = (op.flags & GNTCOPY_source_gref) !== 0;
    const dstGref = (op.flags & GNTCOPY_dest_gref) !== 0;
    // gnttab_copy_lock_domains: only DOMID_SELF may be addressed by frame.
    if ((op.source.domid !== DOMID_SELF && !srcGref) || (op.dest.domid !== DOMID_SELF && !dstGref)) {
      op.status = GNTST_permission_denied;
      return;
    }
    const srcDom = op.source.domid === DOMID_SELF ? ldomid : op.source.domid;
    const dstDom = op.dest.domid === DOMID_SELF ? ldomid : op.dest.domid;
    if (this.s.slotOf(srcDom) < 0 || this.s.slotOf(dstDom) < 0) {
      op.status = GNTST_bad_domain;
      return;
    }
    const src = this.claim(srcDom, op.source, srcGref, true, ldomid, lslot);
    if (src.status !== GNTST_okay) {
      op.status = src.status;
      return;
    }
    const dst = this.claim(dstDom, op.dest, dstGref, false, ldomid, lslot);
    if (dst.status !== GNTST_okay) {
      this.releaseBuf(src);
      op.status = dst.status;
      return;
    }
    if (op.source.offset + op.len > PAGE_SIZE || op.dest.offset + op.len > PAGE_SIZE) {
      op.status = GNTST_bad_copy_arg;
    } else {
      // len 0 copies nothing; the grants were still validated like any other copy.
      const from = src.frame * PAGE_SIZE + op.source.offset;
      this.s.memory.copyWithin(dst.frame * PAGE_SIZE + op.dest.offset, from, from + op.len);
      op.status = GNTST_okay;
    }
    this.releaseBuf(dst);
    this.releaseBuf(src);
  }

  /** gnttab_copy_claim_buf: acquire_grant_for_copy for a gref, an owned frame otherwise. */
  private claim(
    domid: number,
    p: GnttabCopyPtr,
    isGref: boolean,
    readonly: boolean,
    ldomid: number,
    lslot: number,
  ): CopyBuf {
    const buf: CopyBuf = { status: GNTST_okay, slot: -1, frame: 0, ref: 0, readonly, isGrant: isGref };
    if (!isGref) {
      const mfn = p.gmfn as number;
      if (mfn >= this.s.limits.frames || this.mem.ownerOf(mfn) !== ldomid || this.mem.isPendingFree(mfn)) {
        buf.status = GNTST_bad_page;
        return buf;
      }
      buf.frame = mfn;
      buf.slot = lslot;
      this.mem.getRef(mfn);
      return buf;
    }
    const rslot = this.lockGnt(domid);
    if (rslot < 0) {
      buf.status = GNTST_bad_domain;
      return buf;
    }
    try {
      const out = { frame: 0 };
      buf.status = this.pin(
        rslot,
        domid,
        p.ref as number,
        ldomid,
        readonly,
        readonly ? GNTPIN_hstr_inc : GNTPIN_hstw_inc,
        out,
      );
      buf.slot = rslot;
      buf.frame = out.frame;
      buf.ref = p.ref as number;
    } finally {
      this.unlockGnt(rslot);
    }
    return buf;
  }

  private releaseBuf(buf: CopyBuf): void {
    if (!buf.isGrant) {
      this.mem.putRef(buf.frame, buf.slot);
      return;
    }
    spinLock(this.s.dom, this.s.base(buf.slot) + DF_LOCK_GNT, this.s.token, 'grant copy release');
    let last: boolean;
    try {
      last = this.dropPins(buf.slot, buf.ref, buf.readonly ? GNTPIN_hstr_inc : GNTPIN_hstw_inc, buf.readonly);
      this.mem.putRef(buf.frame, buf.slot);
    } finally {
      this.unlockGnt(buf.slot);
    }
    this.afterUnpin(buf.slot, last);
  }

  // ---- GNTTABOP_setup_table / GNTTABOP_query_size ----

  checkSetup(op: GnttabSetupTable, index: number): void {
    checkOpUint(op.dom, 16, index, 'dom');
    checkOpUint(op.nrFrames, 32, index, 'nrFrames');
  }

  setupOne(ldomid: number, privileged: boolean, op: GnttabSetupTable): void {
    op.frameList = undefined;
    const dom = op.dom === DOMID_SELF ? ldomid : op.dom;
    if (this.s.slotOf(dom) < 0) {
      op.status = GNTST_bad_domain;
      return;
    }
    if (dom !== ldomid && !privileged) {
      op.status = GNTST_permission_denied;
      return;
    }
    const slot = this.lockGnt(dom);
    if (slot < 0) {
      op.status = GNTST_bad_domain;
      return;
    }
    try {
      if (op.nrFrames > this.s.field(slot, DF_MAX_GRANT_FRAMES)) {
        op.status = GNTST_general_error;
        return;
      }
      if (op.nrFrames > this.s.field(slot, DF_NR_GRANT_FRAMES) && !this.grow(slot, dom, op.nrFrames)) {
        op.status = GNTST_general_error;
        return;
      }
      const list: number[] = [];
      for (let i = 0; i < op.nrFrames; i++) list.push(this.grantFrame(slot, i));
      op.frameList = list;
      op.status = GNTST_okay;
    } finally {
      this.unlockGnt(slot);
    }
  }

  checkQuery(op: GnttabQuerySize, index: number): void {
    checkOpUint(op.dom, 16, index, 'dom');
  }

  queryOne(ldomid: number, privileged: boolean, op: GnttabQuerySize): void {
    const dom = op.dom === DOMID_SELF ? ldomid : op.dom;
    const slot = this.s.slotOf(dom);
    if (slot < 0) {
      op.status = GNTST_bad_domain;
      return;
    }
    if (dom !== ldomid && !privileged) {
      op.status = GNTST_permission_denied;
      return;
    }
    op.nrFrames = this.s.field(slot, DF_NR_GRANT_FRAMES);
    op.maxNrFrames = this.s.field(slot, DF_MAX_GRANT_FRAMES);
    op.status = GNTST_okay;
  }

  /** Active entry frame/ref check for tests and listings: ACTIVE_PER_FRAME entries per frame. */
  static readonly activePerFrame = ACTIVE_PER_FRAME;
}
