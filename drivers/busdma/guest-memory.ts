/**
 * A guest kernel's page allocator over the frames Xen gives it (XENMEM_populate_physmap through
 * `hc.allocPages`). Drivers need runs of *adjacent* frames: a multi-page ring must be one contiguous
 * run (Linux uses alloc_pages_exact), and a DMA buffer that spans several pages is easiest to view as
 * one Uint8Array when its frames are adjacent in machine memory.
 *
 * Frames whose grant could not be revoked (the backend still maps them) are *surrendered*: they leave
 * this allocator for good and are freed to Xen by the grant table's deferred list once revoked
 * (XSA-396), so they can never be handed out again while a backend can reach them. With page
 * poisoning on (Linux page_poison=1) a freed frame that is written before it is handed out again is
 * reported, which is how a backend writing through a grant the guest failed to revoke shows (C11).
 *
 * Zeroing is skipped only for frames known to be zero: those Xen just gave us (it hands out scrubbed
 * frames, hypervisor/memory.ts) that this allocator has not handed out since. A frame freed here is
 * never known zero again (its user, or a backend through a grant, may have written it).
 */
import { Buffer } from 'node:buffer';
import type { Hypercalls } from '../../hypervisor/hypercall.js';
import { XEN_PAGE_SIZE } from '../ring.js';

export type MemoryHypercalls = Pick<Hypercalls, 'allocPages' | 'freePage' | 'page'>;

/** A buffer in guest memory: `length` bytes starting `offset` bytes into frames[0], over adjacent frames. */
export interface GuestBuffer {
  readonly frames: readonly number[];
  readonly offset: number;
  readonly length: number;
}

export interface AllocOptions {
  /** Zero the frames (default true). */
  zero?: boolean;
}

/** Linux PAGE_POISON: what a freed page is filled with under page_poison=1. */
export const PAGE_POISON = 0xaa;

/** What the poison check found in a frame being handed out again (mm/page_poison.c). */
export interface PoisonCorruption {
  mfn: number;
  /** Byte offsets in the frame of the first and last byte that is no longer PAGE_POISON. */
  first: number;
  last: number;
  /** Up to 16 bytes from `first`, as found. */
  bytes: Uint8Array;
}

export interface GuestMemoryOptions {
  /**
   * page_poison=1: fill every frame freed here with PAGE_POISON and check it when handed out again;
   * a write into a free frame (use after free, or another domain writing through a mapping the guest
   * no longer accounts for) is reported to this callback.
   */
  onPoisonCorruption?: (c: PoisonCorruption) => void;
}

/** freeState values. */
const POISONED = 1;
const KNOWN_ZERO = 2;

export class GuestMemoryError extends Error {
  override readonly name = 'GuestMemoryError';
}

/** Runs of poison and of zero bytes in ordinary memory to copy and compare from (grown on demand). */
let poisonBytes = Buffer.alloc(16 * XEN_PAGE_SIZE, PAGE_POISON);
let zeroBytes = Buffer.alloc(16 * XEN_PAGE_SIZE);
function poisonOf(bytes: number): Buffer {
  if (bytes > poisonBytes.length) poisonBytes = Buffer.alloc(bytes, PAGE_POISON);
  return poisonBytes.subarray(0, bytes);
}
let zeroPage = zeroBytes.subarray(0, XEN_PAGE_SIZE);
function zeroOf(bytes: number): Buffer {
  // One page is the common case (persistent grants, single frames): no view made per call.
  if (bytes === XEN_PAGE_SIZE) return zeroPage;
  if (bytes > zeroBytes.length) {
    zeroBytes = Buffer.alloc(bytes);
    zeroPage = zeroBytes.subarray(0, XEN_PAGE_SIZE);
  }
  return zeroBytes.subarray(0, bytes);
}

/** How many frames to ask Xen for at once when the pool has no suitable run. */
const GROW_CHUNK = 64;
/** Give up finding an adjacent run after this many grow attempts (fragmented host memory). */
const MAX_GROW_TRIES = 8;

export class GuestMemory {
  /** Frames this allocator owns and has not handed out, kept sorted. */
  private free: number[] = [];
  /** In-use flags by mfn (a byte map, grown on demand: a Set's hashing showed in the I/O profile). */
  private inUse = new Uint8Array(0);
  private inUseCount = 0;
  /** Some frame this allocator got from Xen, to tell whether a view lies in machine memory. */
  private probeFrame = -1;
  private readonly surrendered = new Set<number>();
  /**
   * Per free frame (byte map by mfn): POISONED when filled with PAGE_POISON at free and not handed out
   * since, KNOWN_ZERO when fresh from Xen and not handed out since, else 0 (contents unknown).
   */
  private freeState = new Uint8Array(0);
  private readonly onPoisonCorruption: ((c: PoisonCorruption) => void) | undefined;

  constructor(
    private readonly hc: MemoryHypercalls,
    options: GuestMemoryOptions = {},
  ) {
    this.onPoisonCorruption = options.onPoisonCorruption;
  }

  get pagePoisoning(): boolean {
    return this.onPoisonCorruption !== undefined;
  }

  get freeFrames(): number {
    return this.free.length;
  }

  get usedFrames(): number {
    return this.inUseCount;
  }

  get surrenderedFrames(): number {
    return this.surrendered.size;
  }

  /** A 4 KiB view of one of our frames. */
  page(mfn: number): Uint8Array {
    return this.hc.page(mfn);
  }

  /**
   * `n` adjacent frames (ascending mfns), zeroed unless `zero: false` (a buffer its user overwrites
   * whole, like alloc_pages without __GFP_ZERO). Throws GuestMemoryError when impossible.
   */
  allocRun(n: number, options: AllocOptions = {}): number[] {
    if (!Number.isInteger(n) || n < 1)
      throw new RangeError(`allocRun: n must be a positive integer, got ${n}`);
    for (let tries = 0; ; tries++) {
      const at = this.findRun(n);
      if (at >= 0) {
        const run = n === 1 ? [this.takeOne(at)] : this.free.splice(at, n);
        for (const f of run) this.markInUse(f);
        this.prepare(run, options.zero ?? true);
        return run;
      }
      if (tries >= MAX_GROW_TRIES) {
        throw new GuestMemoryError(`no run of ${n} adjacent frames after ${tries} allocations from Xen`);
      }
      let got: number[];
      try {
        got = this.hc.allocPages(Math.max(n, GROW_CHUNK));
      } catch (e) {
        try {
          got = this.hc.allocPages(n);
        } catch {
          throw new GuestMemoryError(`cannot get ${n} frame(s) from Xen: ${(e as Error).message}`);
        }
      }
      if (this.probeFrame < 0 && got.length > 0) this.probeFrame = got[0];
      this.growFreeState(Math.max(...got));
      for (const f of got) this.freeState[f] = KNOWN_ZERO;
      this.free.push(...got);
      this.free.sort((a, b) => a - b);
    }
  }

  /** free[at], taken out of the sorted free list (the head without shifting the whole array). */
  private takeOne(at: number): number {
    return at === 0 ? this.free.shift()! : this.free.splice(at, 1)[0]!;
  }

  /**
   * A run leaving the pool: the poison check on frames freed poisoned (check_poison_mem), then zeroing
   * when asked, of the frames not known to be zero already. Adjacent frames needing zeroing are zeroed
   * in one copy.
   */
  private prepare(run: readonly number[], zero: boolean): void {
    const state = this.freeState;
    let poisoned = 0;
    let known = 0;
    for (const f of run) {
      const st = state[f];
      if (st === POISONED) poisoned++;
      else if (st === KNOWN_ZERO) known++;
    }
    if (poisoned > 0) this.checkPoison(run, poisoned === run.length);
    if (zero && known < run.length) {
      if (known === 0) this.zeroFrames(run[0]!, run.length);
      else {
        // Mixed: one copy per stretch of frames not known zero (adjacent, as the whole run is).
        let from = -1;
        for (let i = 0; i <= run.length; i++) {
          const needs = i < run.length && state[run[i]!] !== KNOWN_ZERO;
          if (needs && from < 0) from = i;
          else if (!needs && from >= 0) {
            this.zeroFrames(run[from]!, i - from);
            from = -1;
          }
        }
      }
    }
    for (const f of run) if (f < state.length) state[f] = 0;
  }

  private growFreeState(maxMfn: number): void {
    if (maxMfn < this.freeState.length) return;
    const grown = new Uint8Array(Math.max(maxMfn + 1, this.freeState.length * 2, 1024));
    grown.set(this.freeState);
    this.freeState = grown;
  }

  /** Allocate a buffer of `length` bytes at `offset` in its first frame, over adjacent frames. */
  allocBuffer(length: number, offset = 0, options: AllocOptions = {}): GuestBuffer {
    if (!Number.isSafeInteger(length) || length < 1) {
      throw new RangeError(`allocBuffer: length must be a positive integer, got ${length}`);
    }
    if (!Number.isInteger(offset) || offset < 0 || offset >= XEN_PAGE_SIZE) {
      throw new RangeError(`allocBuffer: offset must be 0..${XEN_PAGE_SIZE - 1}, got ${offset}`);
    }
    const frames = this.allocRun(Math.ceil((offset + length) / XEN_PAGE_SIZE), options);
    return { frames, offset, length };
  }

  /** Give frames back to the pool (surrendered ones stay with the grant table's deferred list). */
  freeRun(frames: readonly number[]): void {
    if (this.isPlainRun(frames)) {
      // An ascending run of our in-use frames: no free frame lies inside it, so one insertion keeps
      // the free list sorted (instead of one array shift per frame).
      for (const f of frames) this.clearInUse(f);
      if (this.onPoisonCorruption) this.poisonRun(frames);
      this.free.splice(lowerBound(this.free, frames[0]), 0, ...frames);
      return;
    }
    for (const f of frames) {
      if (this.surrendered.has(f)) continue;
      if (!this.isInUse(f)) throw new RangeError(`freeRun: frame ${f} is not allocated here`);
      this.clearInUse(f);
      if (this.onPoisonCorruption) this.poisonRun([f]);
      const at = lowerBound(this.free, f);
      this.free.splice(at, 0, f);
    }
  }

  /** kernel_poison_pages: the run's adjacent frames get PAGE_POISON in one fill. */
  private poisonRun(run: readonly number[]): void {
    const first = this.hc.page(run[0]!);
    const bytes = run.length * XEN_PAGE_SIZE;
    new Uint8Array(first.buffer, first.byteOffset, bytes).set(poisonOf(bytes));
    this.growFreeState(run[run.length - 1]!);
    for (const f of run) this.freeState[f] = POISONED;
  }

  /**
   * check_poison_mem on each frame of `run` that was poisoned when freed: one memcmp over the run
   * against poison when every frame was (the usual case), frame by frame otherwise.
   */
  private checkPoison(run: readonly number[], allPoisoned: boolean): void {
    if (allPoisoned) {
      const first = this.hc.page(run[0]!);
      const bytes = run.length * XEN_PAGE_SIZE;
      if (poisonOf(bytes).equals(Buffer.from(first.buffer, first.byteOffset, bytes))) return;
      for (const f of run) this.checkFrame(f);
      return;
    }
    for (const f of run) if (this.freeState[f] === POISONED) this.checkFrame(f);
  }

  private checkFrame(f: number): void {
    const page = this.hc.page(f);
    if (poisonOf(XEN_PAGE_SIZE).equals(Buffer.from(page.buffer, page.byteOffset, XEN_PAGE_SIZE))) return;
    let first = 0;
    while (page[first] === PAGE_POISON) first++;
    let last = XEN_PAGE_SIZE - 1;
    while (page[last] === PAGE_POISON) last--;
    this.onPoisonCorruption!({
      mfn: f,
      first,
      last,
      bytes: page.slice(first, Math.min(first + 16, last + 1)),
    });
  }

  freeBuffer(buf: GuestBuffer): void {
    this.freeRun(buf.frames);
  }

  /**
   * A frame whose grant is still mapped by a backend: it must never be reused. It leaves this pool;
   * whoever defers its revocation frees it to Xen afterwards.
   */
  surrender(mfn: number): void {
    if (!this.isInUse(mfn)) throw new RangeError(`surrender: frame ${mfn} is not allocated here`);
    this.clearInUse(mfn);
    this.surrendered.add(mfn);
  }

  isSurrendered(mfn: number): boolean {
    return this.surrendered.has(mfn);
  }

  /** One view over the whole buffer (its frames are adjacent in machine memory). */
  view(buf: GuestBuffer): Uint8Array {
    const first = this.hc.page(buf.frames[0]);
    return new Uint8Array(first.buffer, first.byteOffset + buf.offset, buf.length);
  }

  /**
   * The buffer a view lies in, when the view is over our own frames in machine memory; undefined for
   * any other memory (the caller then bounces the data through pages of its own).
   */
  bufferOf(view: Uint8Array): GuestBuffer | undefined {
    if (view.length === 0 || this.inUseCount === 0) return undefined;
    const probe = this.hc.page(this.probeFrame);
    if (view.buffer !== probe.buffer) return undefined;
    const first = Math.floor(view.byteOffset / XEN_PAGE_SIZE);
    const last = Math.floor((view.byteOffset + view.length - 1) / XEN_PAGE_SIZE);
    const frames: number[] = [];
    for (let f = first; f <= last; f++) {
      if (!this.isInUse(f)) return undefined;
      frames.push(f);
    }
    return { frames, offset: view.byteOffset - first * XEN_PAGE_SIZE, length: view.length };
  }

  private isInUse(f: number): boolean {
    return f < this.inUse.length && this.inUse[f] === 1;
  }

  private markInUse(f: number): void {
    if (f >= this.inUse.length) {
      const grown = new Uint8Array(Math.max(f + 1, this.inUse.length * 2, 1024));
      grown.set(this.inUse);
      this.inUse = grown;
    }
    this.inUse[f] = 1;
    this.inUseCount++;
  }

  private clearInUse(f: number): void {
    this.inUse[f] = 0;
    this.inUseCount--;
  }

  /** Ascending adjacent frames, all in use here (none surrendered). */
  private isPlainRun(frames: readonly number[]): boolean {
    if (frames.length === 0) return false;
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i];
      if ((i > 0 && f !== frames[i - 1] + 1) || !this.isInUse(f)) return false;
    }
    return true;
  }

  /**
   * Zeroes `count` adjacent frames from `mfn` with one copy rather than a page view per frame. A copy
   * from ordinary memory, not fill(): V8 fills a SharedArrayBuffer view byte by byte, ten times slower.
   */
  private zeroFrames(mfn: number, count: number): void {
    const first = this.hc.page(mfn);
    const bytes = count * XEN_PAGE_SIZE;
    new Uint8Array(first.buffer, first.byteOffset, bytes).set(zeroOf(bytes));
  }

  private findRun(n: number): number {
    let start = 0;
    for (let i = 1; i <= this.free.length; i++) {
      if (i - start >= n) return start;
      if (i < this.free.length && this.free[i] !== this.free[i - 1] + 1) start = i;
    }
    return -1;
  }
}

function lowerBound(a: readonly number[], v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
