/**
 * All hypervisor state, in SharedArrayBuffers so every worker of the threads engine attaches to the
 * same machine. This file owns the word layout; the services (memory, domains, grant tables, event
 * channels) read and write through it.
 *
 * Buffers:
 * - `memory`   machine frames, 4 KiB each. Xen's own pages (grant frames, active entries, maptrack,
 *              port tables, shared_info) are frames here too, owned by DOMID_XEN.
 * - `frames`   per-frame metadata: owner, reference count, flags, shared-with domid, free stack.
 * - `control`  header words (limits, global locks, allocator top, domid rover) and domid -> slot.
 * - `domains`  one fixed-size record per domain slot (fields DF_*, then frame lists).
 */
import { DOMID_FIRST_RESERVED, NR_VIRQS, PAGE_SIZE } from './layout.js';

export interface HypervisorBuffers {
  memory: SharedArrayBuffer;
  frames: SharedArrayBuffer;
  control: SharedArrayBuffer;
  domains: SharedArrayBuffer;
  [name: string]: SharedArrayBuffer;
}

export interface HostLimits {
  frames: number;
  maxDomains: number;
  /** Host-wide cap on grant frames per domain (opt_max_grant_frames). */
  maxGrantFrames: number;
  /** Host-wide cap on maptrack frames per domain (opt_max_maptrack_frames). */
  maxMaptrackFrames: number;
}

const MAGIC = 0x58656e31; // "Xen1"

// control header
export const H_MAGIC = 0;
export const H_LOCK_DOMAINS = 1;
export const H_LOCK_MEMORY = 2;
export const H_FRAMES = 3;
export const H_MAX_DOMAINS = 4;
export const H_MAX_GRANT_FRAMES = 5;
export const H_MAX_MAPTRACK_FRAMES = 6;
export const H_FREE_TOP = 7;
export const H_NEXT_DOMID = 8;
export const H_NEXT_TOKEN = 9;
export const H_GLOBAL_VIRQ_BASE = 10; // NR_VIRQS words: domid bound to each global VIRQ, -1 none
/** Host-wide counter of event-channel port allocations: each gets a serial for trace flow ids. */
export const H_NEXT_EVTCHN_SERIAL = H_GLOBAL_VIRQ_BASE + NR_VIRQS;
const HEADER_WORDS = H_NEXT_EVTCHN_SERIAL + 1;

// per-frame metadata regions (Int32 words)
export const OWNER_FREE = -1;
export const FRAME_PENDING_FREE = 1;
/** Owned at least once since the buffer was made, so it may hold data (memory.ts scrubs it on alloc). */
export const FRAME_HANDED_OUT = 2;
export const SHARED_NONE = -1;

// domain record fields
export const DF_LOCK_GNT = 0;
export const DF_LOCK_MAPTRACK = 1;
export const DF_LOCK_EVTCHN = 2;
export const DF_STATE = 3;
export const DF_GEN = 4;
export const DF_DOMID = 5;
export const DF_FLAGS = 6;
export const DF_PAUSE_COUNT = 7;
export const DF_SHUTDOWN_REASON = 8;
export const DF_ABI64 = 9;
export const DF_VCPUS = 10;
export const DF_MAX_GRANT_FRAMES = 11;
export const DF_NR_GRANT_FRAMES = 12;
export const DF_MAX_MAPTRACK_FRAMES = 13;
export const DF_NR_MAPTRACK_FRAMES = 14;
export const DF_MT_HEAD = 15;
export const DF_MT_TAIL = 16;
export const DF_MT_IN_USE = 17;
export const DF_MAX_EVTCHNS = 18;
export const DF_EVTCHN_FRAMES = 19;
export const DF_SHARED_INFO_MFN = 20;
export const DF_TOT_PAGES = 21;
export const DF_MAX_PAGES = 22;
export const DF_PINNED_ACTIVE = 23;
export const DF_KICKS = 24;
export const DF_VIRQ_BASE = 25; // NR_VIRQS words: port bound to each VIRQ on vCPU 0, 0 none
const DF_FIXED = DF_VIRQ_BASE + NR_VIRQS;

export const DS_FREE = 0;
export const DS_ALIVE = 1;
export const DS_DYING = 2;

export const DFL_PRIVILEGED = 1;
export const DFL_SHUTDOWN = 2;
export const DFL_BLOCKED = 4;

/**
 * Port-table frames per domain: 4096 ports / 256 entries of 16 bytes. Words 0-1 are the channel
 * (event-channel.ts); words 2-3 the allocation serial and send count that trace flow ids derive from.
 */
export const EVTCHN_ENTRY_SIZE = 16;
export const EVTCHN_PER_FRAME = PAGE_SIZE / EVTCHN_ENTRY_SIZE;
export const MAX_EVTCHN_FRAMES = 16;

let localTokens = 0;

/**
 * Buffers of closed machines, kept for the next `allocate` with the same limits in this thread (sim
 * runs build one machine after another). A fresh machine memory costs a page fault per page on first
 * touch; a recycled one keeps its pages, and the frames a run handed out keep FRAME_HANDED_OUT, so
 * allocation scrubs them as it scrubs any frame that may hold data.
 */
const recycledBuffers: HypervisorBuffers[] = [];
const MAX_RECYCLED = 2;

export class SharedState {
  readonly buffers: HypervisorBuffers;
  readonly limits: HostLimits;
  readonly memory: Uint8Array;
  readonly mem16: Uint16Array;
  readonly mem32: Int32Array;
  readonly ctl: Int32Array;
  readonly frameOwner: Int32Array;
  readonly frameRefs: Int32Array;
  readonly frameFlags: Int32Array;
  readonly frameShared: Int32Array;
  readonly freeStack: Int32Array;
  readonly dom: Int32Array;
  /** Words per domain record. */
  readonly stride: number;
  readonly grantListAt: number;
  readonly activeListAt: number;
  readonly maptrackListAt: number;
  readonly evtchnListAt: number;
  /** This instance's lock token (one instance per thread). */
  readonly token: number;

  private constructor(buffers: HypervisorBuffers, limits: HostLimits) {
    this.buffers = buffers;
    this.limits = limits;
    this.memory = new Uint8Array(buffers.memory);
    this.mem16 = new Uint16Array(buffers.memory);
    this.mem32 = new Int32Array(buffers.memory);
    this.ctl = new Int32Array(buffers.control);
    const n = limits.frames;
    this.frameOwner = new Int32Array(buffers.frames, 0, n);
    this.frameRefs = new Int32Array(buffers.frames, 4 * n, n);
    this.frameFlags = new Int32Array(buffers.frames, 8 * n, n);
    this.frameShared = new Int32Array(buffers.frames, 12 * n, n);
    this.freeStack = new Int32Array(buffers.frames, 16 * n, n);
    this.dom = new Int32Array(buffers.domains);
    this.grantListAt = DF_FIXED;
    this.activeListAt = this.grantListAt + limits.maxGrantFrames;
    this.maptrackListAt = this.activeListAt + 2 * limits.maxGrantFrames;
    this.evtchnListAt = this.maptrackListAt + limits.maxMaptrackFrames;
    this.stride = this.evtchnListAt + MAX_EVTCHN_FRAMES;
    // Tokens must differ between threads; the counter lives in shared memory. The local counter
    // keeps two instances in one thread apart as well (they would otherwise look re-entrant).
    this.token = (Atomics.add(this.ctl, H_NEXT_TOKEN, 1) + 1) * 256 + (++localTokens % 256);
  }

  static allocate(limits: HostLimits): SharedState {
    const n = limits.frames;
    const stride0 = DF_FIXED + 3 * limits.maxGrantFrames + limits.maxMaptrackFrames + MAX_EVTCHN_FRAMES;
    const reused = takeRecycled(limits);
    const buffers: HypervisorBuffers = reused ?? {
      memory: new SharedArrayBuffer(n * PAGE_SIZE),
      frames: new SharedArrayBuffer(5 * 4 * n),
      control: new SharedArrayBuffer(4 * (HEADER_WORDS + DOMID_FIRST_RESERVED)),
      domains: new SharedArrayBuffer(4 * stride0 * limits.maxDomains),
    };
    const ctl = new Int32Array(buffers.control);
    if (reused !== undefined) {
      ctl.fill(0);
      new Int32Array(buffers.domains).fill(0);
    }
    ctl[H_FRAMES] = n;
    ctl[H_MAX_DOMAINS] = limits.maxDomains;
    ctl[H_MAX_GRANT_FRAMES] = limits.maxGrantFrames;
    ctl[H_MAX_MAPTRACK_FRAMES] = limits.maxMaptrackFrames;
    ctl.fill(-1, H_GLOBAL_VIRQ_BASE, H_GLOBAL_VIRQ_BASE + NR_VIRQS);
    ctl.fill(-1, HEADER_WORDS);
    const s = new SharedState(buffers, limits);
    s.frameOwner.fill(OWNER_FREE);
    s.frameShared.fill(SHARED_NONE);
    if (reused !== undefined) {
      s.frameRefs.fill(0);
      for (let i = 0; i < n; i++) s.frameFlags[i] &= FRAME_HANDED_OUT;
    }
    // Free stack pops low frames first so traces show small, stable mfns.
    for (let i = 0; i < n; i++) s.freeStack[i] = n - 1 - i;
    ctl[H_FREE_TOP] = n;
    Atomics.store(ctl, H_MAGIC, MAGIC);
    return s;
  }

  /**
   * The machine these buffers hold is closed for good (no thread uses them any more): keep them for the
   * next `allocate` with the same limits in this thread.
   */
  static recycle(buffers: HypervisorBuffers): void {
    if (recycledBuffers.length >= MAX_RECYCLED) return;
    if (recycledBuffers.some((b) => b.memory === buffers.memory)) {
      throw new Error('SharedState.recycle: these buffers were already recycled');
    }
    const { memory, frames, control, domains } = buffers;
    recycledBuffers.push({ memory, frames, control, domains });
  }

  static attach(buffers: HypervisorBuffers): SharedState {
    for (const name of ['memory', 'frames', 'control', 'domains'] as const) {
      if (!(buffers[name] instanceof SharedArrayBuffer)) {
        throw new TypeError(`Hypervisor.attach: buffers.${name} must be a SharedArrayBuffer`);
      }
    }
    const ctl = new Int32Array(buffers.control);
    if (Atomics.load(ctl, H_MAGIC) !== MAGIC) {
      throw new TypeError('Hypervisor.attach: buffers.control does not hold a hypervisor (bad magic)');
    }
    return new SharedState(buffers, {
      frames: ctl[H_FRAMES],
      maxDomains: ctl[H_MAX_DOMAINS],
      maxGrantFrames: ctl[H_MAX_GRANT_FRAMES],
      maxMaptrackFrames: ctl[H_MAX_MAPTRACK_FRAMES],
    });
  }

  /** Index of a domain record's first word. */
  base(slot: number): number {
    return slot * this.stride;
  }

  /** Slot of a live or dying domain, or -1. */
  slotOf(domid: number): number {
    if (!Number.isInteger(domid) || domid < 0 || domid >= DOMID_FIRST_RESERVED) return -1;
    return Atomics.load(this.ctl, HEADER_WORDS + domid);
  }

  setSlot(domid: number, slot: number): void {
    Atomics.store(this.ctl, HEADER_WORDS + domid, slot);
  }

  field(slot: number, f: number): number {
    return Atomics.load(this.dom, slot * this.stride + f);
  }

  setField(slot: number, f: number, v: number): void {
    Atomics.store(this.dom, slot * this.stride + f, v);
  }

  /** Byte offset of a machine frame in `memory`. */
  frameOffset(mfn: number): number {
    return mfn * PAGE_SIZE;
  }
}

/** Recycled buffers of exactly these limits (taken out of the pool), if any. */
function takeRecycled(limits: HostLimits): HypervisorBuffers | undefined {
  const i = recycledBuffers.findIndex((b) => {
    const ctl = new Int32Array(b.control);
    return (
      ctl[H_FRAMES] === limits.frames &&
      ctl[H_MAX_DOMAINS] === limits.maxDomains &&
      ctl[H_MAX_GRANT_FRAMES] === limits.maxGrantFrames &&
      ctl[H_MAX_MAPTRACK_FRAMES] === limits.maxMaptrackFrames
    );
  });
  return i < 0 ? undefined : recycledBuffers.splice(i, 1)[0];
}
