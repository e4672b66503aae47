/**
 * Xen shared I/O rings (xen/include/public/io/ring.h) over an ArrayBuffer or SharedArrayBuffer.
 *
 * The shared page holds four free-running u32 indices and an array of entries; each side keeps private
 * indices (front: req_prod_pvt, rsp_cons; back: rsp_prod_pvt, req_cons). All index arithmetic is modulo
 * 2^32 (`>>> 0`); a slot is `idx & (size - 1)`.
 *
 * The index words are the publication points between domains, so they are read and written with
 * Atomics (sequentially consistent: Atomics give the wmb/mb the C macros place around them). Entries are
 * plain DataView accesses, ordered by those index accesses.
 *
 * Multi-page rings: real multi-page rings are separate grant frames that the backend maps into one
 * virtually contiguous area. A SharedArrayBuffer cannot alias, so here the ring pages must be one
 * contiguous run of bytes: `SharedRing.fromPages` accepts a list of page views and checks they are
 * adjacent in one buffer (the frontend allocates its ring pages as one run, as Linux's alloc_pages_exact
 * does, and the backend's mapping of those grants yields views of the same frames).
 */

/** Xen's ring/hypercall page size (XEN_PAGE_SHIFT 12), whatever the guest page size. */
export const XEN_PAGE_SIZE = 4096;
/** Offset of ring[] in the sring: four indices, the 4-byte pvt union and __pad[44]. */
export const SRING_HEADER_BYTES = 64;
/** XENBUS_MAX_RING_GRANT_ORDER (Linux) = 4: at most 16 ring pages. */
export const RING_MAX_PAGES = 16;

/** Byte offsets of the sring header fields. */
export const SRING_REQ_PROD = 0;
export const SRING_REQ_EVENT = 4;
export const SRING_RSP_PROD = 8;
export const SRING_RSP_EVENT = 12;
export const SRING_PVT = 16;
export const SRING_PAD = 20;

// Word indices of the header fields in a Uint32Array over the sring.
const W_REQ_PROD = 0;
const W_REQ_EVENT = 1;
const W_RSP_PROD = 2;
const W_RSP_EVENT = 3;

/** __RD32: round a 32-bit unsigned value down to a power of two (0 stays 0). */
export function rd32(x: number): number {
  x >>>= 0;
  if (x === 0) return 0;
  return (0x80000000 >>> Math.clz32(x)) >>> 0;
}

/** __CONST_RING_SIZE: entries in a ring of `bytes` bytes (header included) with `entrySize`-byte entries. */
export function ringSize(bytes: number, entrySize: number): number {
  if (!Number.isInteger(entrySize) || entrySize <= 0) {
    throw new RangeError(`ringSize: entrySize must be a positive integer, got ${entrySize}`);
  }
  if (!Number.isInteger(bytes) || bytes < SRING_HEADER_BYTES + entrySize) {
    throw new RangeError(
      `ringSize: bytes must be an integer >= ${SRING_HEADER_BYTES + entrySize} (header + one entry), got ${bytes}`,
    );
  }
  return rd32(Math.floor((bytes - SRING_HEADER_BYTES) / entrySize));
}

/** The shared part of a ring (`struct <name>_sring`): header indices and entry slots. */
export class SharedRing {
  /** Whole ring region (header + entries); entries are read and written through this view. */
  readonly view: DataView;
  /** The same bytes, for bulk copies. */
  readonly bytes: Uint8Array;
  /** Number of entries (power of two). */
  readonly size: number;
  readonly entrySize: number;
  readonly pages: number;
  private readonly words: Uint32Array;
  private readonly mask: number;

  /**
   * @param buffer the memory holding the ring pages
   * @param byteOffset start of the first ring page (a multiple of 4, page-aligned in practice)
   * @param pages number of 4 KiB ring pages, 1..16
   * @param entrySize bytes per entry: max(sizeof request, sizeof response)
   */
  constructor(buffer: ArrayBufferLike, byteOffset: number, pages: number, entrySize: number) {
    if (!Number.isInteger(pages) || pages < 1 || pages > RING_MAX_PAGES) {
      throw new RangeError(`SharedRing: pages must be an integer in 1..${RING_MAX_PAGES}, got ${pages}`);
    }
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 4 !== 0) {
      throw new RangeError(`SharedRing: byteOffset must be a non-negative multiple of 4, got ${byteOffset}`);
    }
    const byteLength = pages * XEN_PAGE_SIZE;
    if (byteOffset + byteLength > buffer.byteLength) {
      throw new RangeError(
        `SharedRing: ${pages} page(s) at byteOffset ${byteOffset} exceed the buffer (${buffer.byteLength} bytes)`,
      );
    }
    this.size = ringSize(byteLength, entrySize);
    this.entrySize = entrySize;
    this.pages = pages;
    this.mask = this.size - 1;
    this.view = new DataView(buffer, byteOffset, byteLength);
    this.bytes = new Uint8Array(buffer, byteOffset, byteLength);
    this.words = new Uint32Array(buffer, byteOffset, SRING_HEADER_BYTES / 4);
  }

  /** A ring over page views that must be adjacent 4 KiB views of one buffer, in order. */
  static fromPages(pages: readonly Uint8Array[], entrySize: number): SharedRing {
    if (pages.length < 1 || pages.length > RING_MAX_PAGES) {
      throw new RangeError(`SharedRing.fromPages: need 1..${RING_MAX_PAGES} pages, got ${pages.length}`);
    }
    const first = pages[0];
    for (let i = 0; i < pages.length; i++) {
      const p = pages[i];
      if (p.byteLength !== XEN_PAGE_SIZE) {
        throw new RangeError(
          `SharedRing.fromPages: page ${i} is ${p.byteLength} bytes, expected ${XEN_PAGE_SIZE}`,
        );
      }
      if (p.buffer !== first.buffer || p.byteOffset !== first.byteOffset + i * XEN_PAGE_SIZE) {
        throw new RangeError(
          `SharedRing.fromPages: page ${i} (byteOffset ${p.byteOffset}) is not adjacent to page ${i - 1} in the same buffer; ` +
            'ring pages must be one contiguous run of frames',
        );
      }
    }
    return new SharedRing(first.buffer, first.byteOffset, pages.length, entrySize);
  }

  /** Byte offset in `view` of the entry for free-running index `idx` (RING_GET_REQUEST/RESPONSE). */
  slot(idx: number): number {
    return SRING_HEADER_BYTES + (idx & this.mask) * this.entrySize;
  }

  get reqProd(): number {
    return Atomics.load(this.words, W_REQ_PROD);
  }
  set reqProd(v: number) {
    Atomics.store(this.words, W_REQ_PROD, v >>> 0);
  }
  get reqEvent(): number {
    return Atomics.load(this.words, W_REQ_EVENT);
  }
  set reqEvent(v: number) {
    Atomics.store(this.words, W_REQ_EVENT, v >>> 0);
  }
  get rspProd(): number {
    return Atomics.load(this.words, W_RSP_PROD);
  }
  set rspProd(v: number) {
    Atomics.store(this.words, W_RSP_PROD, v >>> 0);
  }
  get rspEvent(): number {
    return Atomics.load(this.words, W_RSP_EVENT);
  }
  set rspEvent(v: number) {
    Atomics.store(this.words, W_RSP_EVENT, v >>> 0);
  }

  /** SHARED_RING_INIT: prods 0, events 1, pvt and __pad zeroed; entries are left as they are. */
  init(): void {
    this.bytes.fill(0, SRING_PVT, SRING_HEADER_BYTES);
    Atomics.store(this.words, W_REQ_PROD, 0);
    Atomics.store(this.words, W_RSP_PROD, 0);
    Atomics.store(this.words, W_REQ_EVENT, 1);
    Atomics.store(this.words, W_RSP_EVENT, 1);
  }

  /** Copy the entry at `idx` into `dest` (RING_COPY_*): the slot is read exactly once. */
  copySlot(idx: number, dest: Uint8Array, destOffset = 0): Uint8Array {
    if (destOffset < 0 || destOffset + this.entrySize > dest.byteLength) {
      throw new RangeError(
        `copySlot: destination needs ${this.entrySize} bytes at offset ${destOffset}, has ${dest.byteLength}`,
      );
    }
    // A byte loop rather than subarray().set(): no allocation on the intake path.
    const src = this.bytes;
    const start = this.slot(idx);
    for (let i = 0; i < this.entrySize; i++) dest[destOffset + i] = src[start + i];
    return dest;
  }
}

/** Notify rule of RING_PUSH_*_AND_CHECK_NOTIFY: (u32)(new - event) < (u32)(new - old), i.e. event in (old, new]. */
export function mustNotify(oldProd: number, newProd: number, event: number): boolean {
  return (newProd - event) >>> 0 < (newProd - oldProd) >>> 0;
}

/** The frontend's half (`struct <name>_front_ring`): produces requests, consumes responses. */
export class FrontRing {
  readonly sring: SharedRing;
  readonly size: number;
  private _reqProdPvt = 0;
  private _rspCons = 0;

  private constructor(sring: SharedRing, index: number) {
    this.sring = sring;
    this.size = sring.size;
    this._reqProdPvt = index >>> 0;
    this._rspCons = index >>> 0;
  }

  /** XEN_FRONT_RING_INIT: SHARED_RING_INIT then FRONT_RING_INIT. Only the frontend initialises the page. */
  static init(sring: SharedRing): FrontRing {
    sring.init();
    return new FrontRing(sring, 0);
  }

  /** FRONT_RING_ATTACH(r, s, i): private indices set to `index`; the shared page is not touched. */
  static attach(sring: SharedRing, index: number): FrontRing {
    return new FrontRing(sring, index);
  }

  /** Next request index to fill (req_prod_pvt). */
  get reqProdPvt(): number {
    return this._reqProdPvt;
  }
  set reqProdPvt(v: number) {
    this._reqProdPvt = v >>> 0;
  }
  /** Next response index to consume (rsp_cons). */
  get rspCons(): number {
    return this._rspCons;
  }
  set rspCons(v: number) {
    this._rspCons = v >>> 0;
  }

  /** RING_FREE_REQUESTS. */
  freeRequests(): number {
    return (this.size - ((this._reqProdPvt - this._rspCons) >>> 0)) >>> 0;
  }

  /** RING_FULL. */
  full(): boolean {
    return this.freeRequests() === 0;
  }

  /** XEN_RING_NR_UNCONSUMED_RESPONSES (Xen's RING_HAS_UNCONSUMED_RESPONSES returns this count). */
  unconsumedResponses(): number {
    return (this.sring.rspProd - this._rspCons) >>> 0;
  }

  /** RING_GET_REQUEST: byte offset of the request slot in `sring.view`. */
  requestSlot(idx: number): number {
    return this.sring.slot(idx);
  }

  /** RING_GET_RESPONSE: byte offset of the response slot in `sring.view`. */
  responseSlot(idx: number): number {
    return this.sring.slot(idx);
  }

  /** RING_COPY_RESPONSE: copy the slot once into private memory; checks then run on the copy. */
  copyResponse(
    idx: number,
    dest: Uint8Array = new Uint8Array(this.sring.entrySize),
    destOffset = 0,
  ): Uint8Array {
    return this.sring.copySlot(idx, dest, destOffset);
  }

  /** RING_PUSH_REQUESTS: publish req_prod_pvt. */
  pushRequests(): void {
    this.sring.reqProd = this._reqProdPvt;
  }

  /** RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: publish, then notify iff req_event lies in (old, new]. */
  pushRequestsAndCheckNotify(): boolean {
    const oldProd = this.sring.reqProd;
    const newProd = this._reqProdPvt;
    this.sring.reqProd = newProd;
    return mustNotify(oldProd, newProd, this.sring.reqEvent);
  }

  /**
   * RING_FINAL_CHECK_FOR_RESPONSES: the unconsumed count; when zero, ask to be notified of the very next
   * response (rsp_event = rsp_cons + 1) and check again, closing the race with a concurrent push.
   */
  finalCheckForResponses(): number {
    const n = this.unconsumedResponses();
    if (n !== 0) return n;
    this.sring.rspEvent = this._rspCons + 1;
    return this.unconsumedResponses();
  }

  /** RING_RESPONSE_PROD_OVERFLOW: a backend published more responses than can exist (hostile backend). */
  responseProdOverflow(prod: number): boolean {
    return (prod - this._rspCons) >>> 0 > this.size;
  }
}

/** The backend's half (`struct <name>_back_ring`): consumes requests, produces responses. */
export class BackRing {
  readonly sring: SharedRing;
  readonly size: number;
  private _rspProdPvt = 0;
  private _reqCons = 0;

  private constructor(sring: SharedRing, index: number) {
    this.sring = sring;
    this.size = sring.size;
    this._rspProdPvt = index >>> 0;
    this._reqCons = index >>> 0;
  }

  /** BACK_RING_INIT (attach at 0). The backend never initialises the shared page. */
  static init(sring: SharedRing): BackRing {
    return new BackRing(sring, 0);
  }

  /** BACK_RING_ATTACH(r, s, i); Linux blkback attaches at the current shared rsp_prod to rejoin a live ring. */
  static attach(sring: SharedRing, index: number): BackRing {
    return new BackRing(sring, index);
  }

  /** Next response index to fill (rsp_prod_pvt). */
  get rspProdPvt(): number {
    return this._rspProdPvt;
  }
  set rspProdPvt(v: number) {
    this._rspProdPvt = v >>> 0;
  }
  /** Next request index to consume (req_cons). */
  get reqCons(): number {
    return this._reqCons;
  }
  set reqCons(v: number) {
    this._reqCons = v >>> 0;
  }

  /**
   * XEN_RING_NR_UNCONSUMED_REQUESTS: min(req_prod - req_cons, free response slots), so a hostile
   * req_prod never makes the backend consume requests it could not answer.
   */
  unconsumedRequests(): number {
    const req = (this.sring.reqProd - this._reqCons) >>> 0;
    const rsp = (this.size - ((this._reqCons - this._rspProdPvt) >>> 0)) >>> 0;
    return Math.min(req, rsp);
  }

  /** RING_GET_REQUEST: byte offset of the request slot in `sring.view`. */
  requestSlot(idx: number): number {
    return this.sring.slot(idx);
  }

  /** RING_GET_RESPONSE: byte offset of the response slot in `sring.view`. */
  responseSlot(idx: number): number {
    return this.sring.slot(idx);
  }

  /**
   * RING_COPY_REQUEST: copy the slot once into private memory (XSA-155); validate only the copy, since
   * the frontend may rewrite the slot at any time. Pass a reusable `dest` on the hot path.
   */
  copyRequest(
    idx: number,
    dest: Uint8Array = new Uint8Array(this.sring.entrySize),
    destOffset = 0,
  ): Uint8Array {
    return this.sring.copySlot(idx, dest, destOffset);
  }

  /** RING_PUSH_RESPONSES: publish rsp_prod_pvt. */
  pushResponses(): void {
    this.sring.rspProd = this._rspProdPvt;
  }

  /** RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: publish, then notify iff rsp_event lies in (old, new]. */
  pushResponsesAndCheckNotify(): boolean {
    const oldProd = this.sring.rspProd;
    const newProd = this._rspProdPvt;
    this.sring.rspProd = newProd;
    return mustNotify(oldProd, newProd, this.sring.rspEvent);
  }

  /** RING_FINAL_CHECK_FOR_REQUESTS: count; when zero set req_event = req_cons + 1 and check again. */
  finalCheckForRequests(): number {
    const n = this.unconsumedRequests();
    if (n !== 0) return n;
    this.sring.reqEvent = this._reqCons + 1;
    return this.unconsumedRequests();
  }

  /** RING_REQUEST_CONS_OVERFLOW: loop guard; consuming `cons` would overrun unanswered requests. */
  requestConsOverflow(cons: number): boolean {
    return (cons - this._rspProdPvt) >>> 0 >= this.size;
  }

  /** RING_REQUEST_PROD_OVERFLOW: the frontend published more requests than can exist (hostile frontend). */
  requestProdOverflow(prod: number): boolean {
    return (prod - this._rspProdPvt) >>> 0 > this.size;
  }
}
