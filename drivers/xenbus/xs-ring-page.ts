/**
 * The xenstore interface page shared by a domain and xenstored (struct xenstore_domain_interface in
 * xs_wire.h, docs/misc/xenstore-ring.txt): two 1024-byte byte rings with free-running u32 indices.
 * Both sides use this one description, so the layout is written down once.
 *
 * Ordering: payload bytes are written before the producer index is published with a sequentially
 * consistent Atomics.store, and the consumer reads the index with Atomics.load before the bytes; that
 * stands in for the virt_wmb()/virt_mb() pairs of xenbus_comms.c and xenstored's domain.c.
 */

export const XENSTORE_RING_SIZE = 1024;

/** Byte offsets inside the page. */
export const XsRingOffset = {
  REQ: 0,
  RSP: 1024,
  REQ_CONS: 2048,
  REQ_PROD: 2052,
  RSP_CONS: 2056,
  RSP_PROD: 2060,
  SERVER_FEATURES: 2064,
  CONNECTION: 2068,
  ERROR: 2072,
  EVTCHN_PORT: 2076,
} as const;
/** First byte after the interface structure. */
export const XS_RING_INTERFACE_SIZE = 2080;

/** `server_features` bits. */
export const XENSTORE_SERVER_FEATURE_RECONNECTION = 1;
export const XENSTORE_SERVER_FEATURE_ERROR = 2;
export const XENSTORE_SERVER_FEATURE_WATCHDEPTH = 4;

/** `connection` field values. */
export const XENSTORE_CONNECTED = 0;
export const XENSTORE_RECONNECT = 1;

/** `error` field values. */
export const XENSTORE_ERROR_NONE = 0;
export const XENSTORE_ERROR_COMM = 1;
export const XENSTORE_ERROR_RINGIDX = 2;
export const XENSTORE_ERROR_PROTO = 3;

/** One direction of the page: where its bytes live and which indices guard them. */
export interface XsRingDirection {
  readonly name: 'req' | 'rsp';
  readonly data: number;
  readonly cons: number;
  readonly prod: number;
}

export const REQ_RING: XsRingDirection = {
  name: 'req',
  data: XsRingOffset.REQ,
  cons: XsRingOffset.REQ_CONS,
  prod: XsRingOffset.REQ_PROD,
};
export const RSP_RING: XsRingDirection = {
  name: 'rsp',
  data: XsRingOffset.RSP,
  cons: XsRingOffset.RSP_CONS,
  prod: XsRingOffset.RSP_PROD,
};

/** The indices of a direction are inconsistent (prod - cons > ring size): a buggy or hostile peer. */
export class XsRingIndexError extends Error {
  override readonly name = 'XsRingIndexError';
}

/** Typed access to one interface page (a view of guest memory, shared in the threads engine). */
export class XsRingPage {
  readonly bytes: Uint8Array;
  private readonly words: Uint32Array;

  constructor(page: Uint8Array) {
    if (page.byteLength < XS_RING_INTERFACE_SIZE) {
      throw new RangeError(
        `xenstore ring page: ${page.byteLength} bytes given, the interface needs ${XS_RING_INTERFACE_SIZE}`,
      );
    }
    if (page.byteOffset % 4 !== 0) {
      throw new RangeError(`xenstore ring page: byteOffset ${page.byteOffset} is not 4-byte aligned`);
    }
    this.bytes = page;
    this.words = new Uint32Array(page.buffer, page.byteOffset, XS_RING_INTERFACE_SIZE / 4);
  }

  load(offset: number): number {
    return Atomics.load(this.words, offset >> 2) >>> 0;
  }

  store(offset: number, value: number): void {
    Atomics.store(this.words, offset >> 2, value >>> 0);
  }

  /** Bytes the producer has published and the consumer not yet taken (throws on corrupt indices). */
  used(dir: XsRingDirection): number {
    const used = (this.load(dir.prod) - this.load(dir.cons)) >>> 0;
    if (used > XENSTORE_RING_SIZE) {
      throw new XsRingIndexError(
        `xenstore ${dir.name} ring: prod ${this.load(dir.prod)} - cons ${this.load(dir.cons)} = ${used} exceeds ${XENSTORE_RING_SIZE}`,
      );
    }
    return used;
  }

  /** Room left for the producer. */
  free(dir: XsRingDirection): number {
    return XENSTORE_RING_SIZE - this.used(dir);
  }

  /**
   * Producer side: copy as much of `src` as fits (across the wrap), then publish the new producer index.
   * Returns the number of bytes written (0 when full).
   */
  produce(dir: XsRingDirection, src: Uint8Array): number {
    const n = Math.min(this.free(dir), src.length);
    if (n === 0) return 0;
    const prod = this.load(dir.prod);
    const start = prod & (XENSTORE_RING_SIZE - 1);
    const first = Math.min(n, XENSTORE_RING_SIZE - start);
    this.bytes.set(src.subarray(0, first), dir.data + start);
    if (n > first) this.bytes.set(src.subarray(first, n), dir.data);
    this.store(dir.prod, prod + n);
    return n;
  }

  /**
   * Consumer side: copy out up to `max` published bytes (across the wrap), then publish the new consumer
   * index. Returns an empty array when nothing is waiting.
   */
  consume(dir: XsRingDirection, max = XENSTORE_RING_SIZE): Uint8Array {
    const n = Math.min(this.used(dir), max);
    if (n === 0) return new Uint8Array(0);
    const cons = this.load(dir.cons);
    const start = cons & (XENSTORE_RING_SIZE - 1);
    const first = Math.min(n, XENSTORE_RING_SIZE - start);
    const out = new Uint8Array(n);
    out.set(this.bytes.subarray(dir.data + start, dir.data + start + first), 0);
    if (n > first) out.set(this.bytes.subarray(dir.data, dir.data + (n - first)), first);
    this.store(dir.cons, cons + n);
    return out;
  }
}
