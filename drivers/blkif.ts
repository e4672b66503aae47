/**
 * blkif wire format (xen/include/public/io/blkif.h, io/protocols.h): constants, the x86_64 and x86_32
 * request/response layouts, and codecs that read and write a ring slot (DataView + byte offset).
 *
 * Decoding reads each shared field exactly once and returns a plain object: that object is the private
 * copy all checks run on. Decoding never throws on hostile contents (any byte values decode); whether a
 * request is acceptable is decided by `validateRequest` (blkif-validate.ts).
 *
 * Encoding writes the request's fields one by one and leaves padding bytes as they were, as C code that
 * assigns `ring_req->field = ...` does; byte-for-byte comparisons against the C headers rely on this.
 *
 * u64 fields (id, sector_number, nr_sectors) are bigints: a hostile frontend may use all 64 bits and the
 * backend must echo `id` exactly.
 */

import { ringSize, XEN_PAGE_SIZE } from './ring.js';

export const BLKIF_OP_READ = 0;
export const BLKIF_OP_WRITE = 1;
export const BLKIF_OP_WRITE_BARRIER = 2;
export const BLKIF_OP_FLUSH_DISKCACHE = 3;
/** SLES device-specific packets; unsupported elsewhere (answered with EOPNOTSUPP). */
export const BLKIF_OP_RESERVED_1 = 4;
export const BLKIF_OP_DISCARD = 5;
export const BLKIF_OP_INDIRECT = 6;

export const BLKIF_RSP_OKAY = 0;
export const BLKIF_RSP_ERROR = -1;
export const BLKIF_RSP_EOPNOTSUPP = -2;

export const BLKIF_MAX_SEGMENTS_PER_REQUEST = 11;
export const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST = 8;
/** sizeof(struct blkif_request_segment): gref u32, first_sect u8, last_sect u8, 2 bytes padding. */
export const BLKIF_SEGMENT_SIZE = 8;
/** Segments per indirect page: 4096 / 8. */
export const BLKIF_SEGMENTS_PER_INDIRECT_PAGE = XEN_PAGE_SIZE / BLKIF_SEGMENT_SIZE;
/** Sector fields are always in 512-byte units, whatever the disk's sector-size. */
export const BLKIF_SECTOR_SIZE = 512;
/** Sectors per 4 KiB frame: last_sect must be below this. */
export const BLKIF_SECTORS_PER_PAGE = XEN_PAGE_SIZE / BLKIF_SECTOR_SIZE;
/** Linux blkback MAX_INDIRECT_SEGMENTS, advertised as feature-max-indirect-segments. */
export const LINUX_BLKBACK_MAX_INDIRECT_SEGMENTS = 256;

/** Bit 0 of the discard `flag`: secure erase (ignored unless the backend advertised discard-secure). */
export const BLKIF_DISCARD_SECURE = 1;

export const VDISK_CDROM = 0x1;
export const VDISK_REMOVABLE = 0x2;
export const VDISK_READONLY = 0x4;

export const XEN_IO_PROTO_ABI_X86_32 = 'x86_32-abi';
export const XEN_IO_PROTO_ABI_X86_64 = 'x86_64-abi';

/** Byte layout of one blkif ABI (natural C alignment of the public header structs). */
export interface BlkifAbi {
  readonly name: 'x86_64' | 'x86_32';
  /** The xenstore `protocol` string. */
  readonly protocol: string;
  /** sizeof(struct blkif_request). */
  readonly requestSize: number;
  /** sizeof(struct blkif_response). */
  readonly responseSize: number;
  /** Ring entry stride: max(request, response). */
  readonly entrySize: number;
  readonly discardSize: number;
  readonly indirectSize: number;
  /** Offset of `id` in request, discard and indirect requests (and u.other.id in Linux). */
  readonly offId: number;
  /** Offset of `sector_number` in request, discard and indirect requests. */
  readonly offSector: number;
  /** Offset of seg[0] in a read/write request. */
  readonly offSeg: number;
  /** Offset of nr_sectors in a discard request. */
  readonly offDiscardNrSectors: number;
  /** Offset of handle in an indirect request. */
  readonly offIndirectHandle: number;
  /** Offset of indirect_grefs[0] in an indirect request. */
  readonly offIndirectGrefs: number;
}

/** x86_64: u64 aligned to 8, so a 4-byte hole follows `handle`. */
export const BLKIF_ABI_X86_64: BlkifAbi = Object.freeze({
  name: 'x86_64',
  protocol: XEN_IO_PROTO_ABI_X86_64,
  requestSize: 112,
  responseSize: 16,
  entrySize: 112,
  discardSize: 32,
  indirectSize: 64,
  offId: 8,
  offSector: 16,
  offSeg: 24,
  offDiscardNrSectors: 24,
  offIndirectHandle: 24,
  offIndirectGrefs: 28,
});

/** x86_32 (i386): u64 aligned to 4, no hole; the indirect request carries an explicit u64 pad at 56. */
export const BLKIF_ABI_X86_32: BlkifAbi = Object.freeze({
  name: 'x86_32',
  protocol: XEN_IO_PROTO_ABI_X86_32,
  requestSize: 108,
  responseSize: 12,
  entrySize: 108,
  discardSize: 28,
  indirectSize: 64,
  offId: 4,
  offSector: 12,
  offSeg: 20,
  offDiscardNrSectors: 20,
  offIndirectHandle: 20,
  offIndirectGrefs: 24,
});

// Response offsets are the same in both ABIs; only the size (16 / 12) differs.
const RSP_OFF_ID = 0;
const RSP_OFF_OPERATION = 8;
const RSP_OFF_STATUS = 10;

/** The ABI for a xenstore `protocol` value; throws naming the value when it is not an x86 blkif ABI. */
export function blkifAbiForProtocol(protocol: string): BlkifAbi {
  if (protocol === XEN_IO_PROTO_ABI_X86_64) return BLKIF_ABI_X86_64;
  if (protocol === XEN_IO_PROTO_ABI_X86_32) return BLKIF_ABI_X86_32;
  throw new Error(
    `blkif: unsupported protocol ${JSON.stringify(protocol)}; expected "${XEN_IO_PROTO_ABI_X86_64}" or "${XEN_IO_PROTO_ABI_X86_32}"`,
  );
}

/** Entries in a blkif ring of 2^pageOrder pages (order 0 -> 32, order 4 -> 512, both ABIs). */
export function blkifRingSize(abi: BlkifAbi, pageOrder: number): number {
  if (!Number.isInteger(pageOrder) || pageOrder < 0 || pageOrder > 4) {
    throw new RangeError(`blkifRingSize: ring-page-order must be an integer in 0..4, got ${pageOrder}`);
  }
  return ringSize(XEN_PAGE_SIZE << pageOrder, abi.entrySize);
}

/** Indirect pages needed for `nrSegments` segments (INDIRECT_PAGES in Linux): ceil(n / 512). */
export function indirectPagesFor(nrSegments: number): number {
  return Math.ceil(nrSegments / BLKIF_SEGMENTS_PER_INDIRECT_PAGE);
}

export interface BlkifSegment {
  /** Grant reference of the 4 KiB data frame. */
  gref: number;
  /** First 512-byte sector in the frame (inclusive). */
  firstSect: number;
  /** Last 512-byte sector in the frame (inclusive). */
  lastSect: number;
}

/** READ, WRITE, WRITE_BARRIER, FLUSH_DISKCACHE (struct blkif_request). */
export interface BlkifRwRequest {
  kind: 'rw';
  operation: number;
  /** As published by the frontend (u8); `segments` holds at most 11 of them. */
  nrSegments: number;
  handle: number;
  id: bigint;
  sectorNumber: bigint;
  segments: BlkifSegment[];
}

/** DISCARD (struct blkif_request_discard). */
export interface BlkifDiscardRequest {
  kind: 'discard';
  operation: number;
  flag: number;
  handle: number;
  id: bigint;
  sectorNumber: bigint;
  nrSectors: bigint;
}

/** INDIRECT (struct blkif_request_indirect); the segments live in the pages named by indirectGrefs. */
export interface BlkifIndirectRequest {
  kind: 'indirect';
  operation: number;
  indirectOp: number;
  /** u16 as published; indirectGrefs holds min(8, ceil(nrSegments / 512)) refs. */
  nrSegments: number;
  id: bigint;
  sectorNumber: bigint;
  handle: number;
  indirectGrefs: number[];
}

/** Any other operation: only `id` is meaningful (Linux's u.other.id), so the backend can answer it. */
export interface BlkifOtherRequest {
  kind: 'other';
  operation: number;
  id: bigint;
}

export type BlkifRequest = BlkifRwRequest | BlkifDiscardRequest | BlkifIndirectRequest | BlkifOtherRequest;

export interface BlkifResponse {
  id: bigint;
  operation: number;
  /** BLKIF_RSP_* (s16). */
  status: number;
}

function checkUint(field: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`blkif encode: ${field} must be an integer in 0..${max}, got ${value}`);
  }
}

const U64_MAX = (1n << 64n) - 1n;

function checkU64(field: string, value: bigint): void {
  if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
    throw new RangeError(`blkif encode: ${field} must be a bigint in 0..2^64-1, got ${String(value)}`);
  }
}

/** Read one 8-byte segment descriptor. */
export function decodeSegment(view: DataView, offset: number): BlkifSegment {
  return {
    gref: view.getUint32(offset, true),
    firstSect: view.getUint8(offset + 4),
    lastSect: view.getUint8(offset + 5),
  };
}

/** Write one segment descriptor's fields (the 2 padding bytes are left untouched). */
export function encodeSegment(view: DataView, offset: number, seg: BlkifSegment): void {
  checkUint('segment.gref', seg.gref, 0xffffffff);
  checkUint('segment.firstSect', seg.firstSect, 0xff);
  checkUint('segment.lastSect', seg.lastSect, 0xff);
  view.setUint32(offset, seg.gref, true);
  view.setUint8(offset + 4, seg.firstSect);
  view.setUint8(offset + 5, seg.lastSect);
}

/**
 * Decode a request slot (or a private copy of one). Each field is read once; `operation` decides the
 * layout, and for read/write only min(nr_segments, 11) segments, for indirect only
 * min(8, ceil(nr_segments / 512)) grefs are read, as Linux blkback copies them. Never throws on contents.
 */
export function decodeRequest(view: DataView, offset: number, abi: BlkifAbi): BlkifRequest {
  const operation = view.getUint8(offset);
  switch (operation) {
    case BLKIF_OP_READ:
    case BLKIF_OP_WRITE:
    case BLKIF_OP_WRITE_BARRIER:
    case BLKIF_OP_FLUSH_DISKCACHE: {
      const nrSegments = view.getUint8(offset + 1);
      const n = Math.min(nrSegments, BLKIF_MAX_SEGMENTS_PER_REQUEST);
      const segments: BlkifSegment[] = new Array(n);
      for (let i = 0; i < n; i++)
        segments[i] = decodeSegment(view, offset + abi.offSeg + i * BLKIF_SEGMENT_SIZE);
      return {
        kind: 'rw',
        operation,
        nrSegments,
        handle: view.getUint16(offset + 2, true),
        id: view.getBigUint64(offset + abi.offId, true),
        sectorNumber: view.getBigUint64(offset + abi.offSector, true),
        segments,
      };
    }
    case BLKIF_OP_DISCARD:
      return {
        kind: 'discard',
        operation,
        flag: view.getUint8(offset + 1),
        handle: view.getUint16(offset + 2, true),
        id: view.getBigUint64(offset + abi.offId, true),
        sectorNumber: view.getBigUint64(offset + abi.offSector, true),
        nrSectors: view.getBigUint64(offset + abi.offDiscardNrSectors, true),
      };
    case BLKIF_OP_INDIRECT: {
      const nrSegments = view.getUint16(offset + 2, true);
      const pages = indirectPagesFor(nrSegments);
      const n = Math.min(pages, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST);
      const indirectGrefs: number[] = new Array(n);
      for (let i = 0; i < n; i++)
        indirectGrefs[i] = view.getUint32(offset + abi.offIndirectGrefs + i * 4, true);
      return {
        kind: 'indirect',
        operation,
        indirectOp: view.getUint8(offset + 1),
        nrSegments,
        id: view.getBigUint64(offset + abi.offId, true),
        sectorNumber: view.getBigUint64(offset + abi.offSector, true),
        handle: view.getUint16(offset + abi.offIndirectHandle, true),
        indirectGrefs,
      };
    }
    default:
      return { kind: 'other', operation, id: view.getBigUint64(offset + abi.offId, true) };
  }
}

/**
 * Write a request into a slot, field by field (padding untouched). Values out of their C field's range
 * throw a RangeError naming the field; nothing is written in that case.
 */
export function encodeRequest(view: DataView, offset: number, abi: BlkifAbi, req: BlkifRequest): void {
  checkUint('operation', req.operation, 0xff);
  checkU64('id', req.id);
  switch (req.kind) {
    case 'rw': {
      checkUint('nrSegments', req.nrSegments, 0xff);
      checkUint('handle', req.handle, 0xffff);
      checkU64('sectorNumber', req.sectorNumber);
      if (req.segments.length > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
        throw new RangeError(
          `blkif encode: segments has ${req.segments.length} entries; a direct request holds at most ${BLKIF_MAX_SEGMENTS_PER_REQUEST}`,
        );
      }
      for (const s of req.segments) {
        checkUint('segment.gref', s.gref, 0xffffffff);
        checkUint('segment.firstSect', s.firstSect, 0xff);
        checkUint('segment.lastSect', s.lastSect, 0xff);
      }
      view.setUint8(offset, req.operation);
      view.setUint8(offset + 1, req.nrSegments);
      view.setUint16(offset + 2, req.handle, true);
      view.setBigUint64(offset + abi.offId, req.id, true);
      view.setBigUint64(offset + abi.offSector, req.sectorNumber, true);
      for (let i = 0; i < req.segments.length; i++) {
        encodeSegment(view, offset + abi.offSeg + i * BLKIF_SEGMENT_SIZE, req.segments[i]);
      }
      return;
    }
    case 'discard':
      checkUint('flag', req.flag, 0xff);
      checkUint('handle', req.handle, 0xffff);
      checkU64('sectorNumber', req.sectorNumber);
      checkU64('nrSectors', req.nrSectors);
      view.setUint8(offset, req.operation);
      view.setUint8(offset + 1, req.flag);
      view.setUint16(offset + 2, req.handle, true);
      view.setBigUint64(offset + abi.offId, req.id, true);
      view.setBigUint64(offset + abi.offSector, req.sectorNumber, true);
      view.setBigUint64(offset + abi.offDiscardNrSectors, req.nrSectors, true);
      return;
    case 'indirect': {
      checkUint('indirectOp', req.indirectOp, 0xff);
      checkUint('nrSegments', req.nrSegments, 0xffff);
      checkUint('handle', req.handle, 0xffff);
      checkU64('sectorNumber', req.sectorNumber);
      if (req.indirectGrefs.length > BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST) {
        throw new RangeError(
          `blkif encode: indirectGrefs has ${req.indirectGrefs.length} entries; at most ${BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST}`,
        );
      }
      for (const g of req.indirectGrefs) checkUint('indirectGrefs[]', g, 0xffffffff);
      view.setUint8(offset, req.operation);
      view.setUint8(offset + 1, req.indirectOp);
      view.setUint16(offset + 2, req.nrSegments, true);
      view.setBigUint64(offset + abi.offId, req.id, true);
      view.setBigUint64(offset + abi.offSector, req.sectorNumber, true);
      view.setUint16(offset + abi.offIndirectHandle, req.handle, true);
      for (let i = 0; i < req.indirectGrefs.length; i++) {
        view.setUint32(offset + abi.offIndirectGrefs + i * 4, req.indirectGrefs[i], true);
      }
      return;
    }
    case 'other':
      view.setUint8(offset, req.operation);
      view.setBigUint64(offset + abi.offId, req.id, true);
      return;
  }
}

/** Decode a response slot (or a private copy); each field read once. Offsets are the same in both ABIs. */
export function decodeResponse(view: DataView, offset: number): BlkifResponse {
  return {
    id: view.getBigUint64(offset + RSP_OFF_ID, true),
    operation: view.getUint8(offset + RSP_OFF_OPERATION),
    status: view.getInt16(offset + RSP_OFF_STATUS, true),
  };
}

/** Write a response in place, field by field as Linux blkback's make_response does (padding untouched). */
export function encodeResponse(
  view: DataView,
  offset: number,
  id: bigint,
  operation: number,
  status: number,
): void {
  checkU64('id', id);
  checkUint('operation', operation, 0xff);
  if (!Number.isInteger(status) || status < -0x8000 || status > 0x7fff) {
    throw new RangeError(`blkif encode: status must be an s16 integer, got ${status}`);
  }
  view.setBigUint64(offset + RSP_OFF_ID, id, true);
  view.setUint8(offset + RSP_OFF_OPERATION, operation);
  view.setInt16(offset + RSP_OFF_STATUS, status, true);
}

/**
 * Write segments into indirect pages (each a DataView over one 4 KiB page), 512 per page in order.
 * Throws if the pages cannot hold them.
 */
export function encodeIndirectSegments(pages: readonly DataView[], segments: readonly BlkifSegment[]): void {
  const need = indirectPagesFor(segments.length);
  if (need > pages.length) {
    throw new RangeError(
      `encodeIndirectSegments: ${segments.length} segments need ${need} page(s), got ${pages.length}`,
    );
  }
  for (let i = 0; i < need; i++) {
    if (pages[i].byteLength < XEN_PAGE_SIZE) {
      throw new RangeError(
        `encodeIndirectSegments: page ${i} is ${pages[i].byteLength} bytes, expected ${XEN_PAGE_SIZE}`,
      );
    }
  }
  for (let i = 0; i < segments.length; i++) {
    const page = pages[(i / BLKIF_SEGMENTS_PER_INDIRECT_PAGE) | 0];
    encodeSegment(page, (i % BLKIF_SEGMENTS_PER_INDIRECT_PAGE) * BLKIF_SEGMENT_SIZE, segments[i]);
  }
}

/**
 * Read `nrSegments` segments from indirect pages (xen_blkbk_parse_indirect reads each once). Reads at
 * most what the pages hold; the caller has already bounded nrSegments by its advertised maximum.
 */
export function decodeIndirectSegments(pages: readonly DataView[], nrSegments: number): BlkifSegment[] {
  if (!Number.isInteger(nrSegments) || nrSegments < 0) {
    throw new RangeError(
      `decodeIndirectSegments: nrSegments must be a non-negative integer, got ${nrSegments}`,
    );
  }
  const capacity = pages.length * BLKIF_SEGMENTS_PER_INDIRECT_PAGE;
  const n = Math.min(nrSegments, capacity);
  const out: BlkifSegment[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const page = pages[(i / BLKIF_SEGMENTS_PER_INDIRECT_PAGE) | 0];
    out[i] = decodeSegment(page, (i % BLKIF_SEGMENTS_PER_INDIRECT_PAGE) * BLKIF_SEGMENT_SIZE);
  }
  return out;
}
