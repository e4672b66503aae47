/**
 * Backend-side validation of a decoded (private) blkif request, as Linux blkback does it
 * (drivers/block/xen-blkback/blkback.c: __do_block_io_op, dispatch_rw_block_io, xen_blkbk_parse_indirect,
 * xen_vbd_translate, dispatch_discard_io, dispatch_other_io). Pure: no I/O, no grant maps.
 *
 * The checks run in Linux's order, so the first failure named is the one Linux would hit:
 * operation -> indirect_op -> segment count -> each segment -> translate (read-only, range) -> alignment.
 */

import {
  BLKIF_DISCARD_SECURE,
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  BLKIF_SECTOR_SIZE,
  BLKIF_SECTORS_PER_PAGE,
  type BlkifRequest,
  type BlkifSegment,
} from './blkif.js';

/** What the backend knows about the virtual disk behind the ring. */
export interface BlkifDisk {
  /** Size in 512-byte sectors (the `sectors` key). */
  sectors: bigint | number;
  /** The vbd is read-only (mode lacks 'w'): writes, flushes and discards fail. */
  readOnly: boolean;
  /** Logical block size in bytes (the `sector-size` key): a power of two >= 512. */
  logicalBlockSize: number;
  /** feature-max-indirect-segments; 0 when the backend does not support BLKIF_OP_INDIRECT. */
  maxIndirectSegments: number;
  /** The disk has a write cache that can be flushed (feature-flush-cache). Default false. */
  flushCache?: boolean;
  /** WRITE_BARRIER supported (feature-barrier). Default: same as flushCache, as Linux blkback advertises. */
  barrier?: boolean;
  /** The disk supports discard (feature-discard). Default false. */
  discard?: boolean;
  /** The backend advertised discard-secure. Default false. */
  discardSecure?: boolean;
}

export type BlkifVerdict =
  | {
      ok: true;
      /** Total 512-byte sectors the request covers (0 for a pure flush). */
      nrSectors: bigint;
      /** Secure discard requested and allowed (discard only). */
      secure?: boolean;
    }
  | {
      ok: false;
      /** BLKIF_RSP_ERROR or BLKIF_RSP_EOPNOTSUPP. */
      status: number;
      reason: string;
    };

const U64_MASK = (1n << 64n) - 1n;

function fail(status: number, reason: string): BlkifVerdict {
  return { ok: false, status, reason };
}

/** A segment is valid iff first_sect <= last_sect < 8 (both inclusive, within one 4 KiB frame). */
export function segmentError(seg: BlkifSegment, index: number): string | undefined {
  if (seg.lastSect >= BLKIF_SECTORS_PER_PAGE || seg.lastSect < seg.firstSect) {
    return `segment ${index}: first_sect ${seg.firstSect} last_sect ${seg.lastSect} (need first_sect <= last_sect <= ${BLKIF_SECTORS_PER_PAGE - 1})`;
  }
  return undefined;
}

/** xen_vbd_translate: writes need a writable vbd; [sector, sector + n) must not wrap or pass the end. */
function translate(
  disk: BlkifDisk,
  write: boolean,
  sector: bigint,
  nrSectors: bigint,
  what: string,
): string | undefined {
  if (write && disk.readOnly) return `access denied: ${what} on a read-only vbd`;
  if (nrSectors !== 0n) {
    const end = (sector + nrSectors) & U64_MASK;
    if (end < sector) return `access denied: ${what} [${sector},+${nrSectors}) wraps past 2^64`;
    if (end > BigInt(disk.sectors)) {
      return `access denied: ${what} [${sector},${end}) beyond the disk end ${disk.sectors}`;
    }
  }
  return undefined;
}

function opName(op: number): string {
  switch (op) {
    case BLKIF_OP_READ:
      return 'READ';
    case BLKIF_OP_WRITE:
      return 'WRITE';
    case BLKIF_OP_WRITE_BARRIER:
      return 'WRITE_BARRIER';
    case BLKIF_OP_FLUSH_DISKCACHE:
      return 'FLUSH_DISKCACHE';
    default:
      return `op ${op}`;
  }
}

/**
 * Decide whether a backend accepts a request, and if not, the exact response status and why.
 *
 * For BLKIF_OP_INDIRECT pass the segments read once from the indirect pages (`decodeIndirectSegments`);
 * without them the segment checks are skipped, so the verdict then covers only the ring slot.
 * Flush/barrier/discard support is decided here from the disk's features; Linux learns it when the bio
 * completes with -EOPNOTSUPP, with the same resulting status.
 */
export function validateRequest(
  req: BlkifRequest,
  disk: BlkifDisk,
  indirectSegments?: readonly BlkifSegment[],
): BlkifVerdict {
  const lbsSectors = BigInt(Math.max(1, disk.logicalBlockSize / BLKIF_SECTOR_SIZE));
  switch (req.kind) {
    case 'other':
      return fail(BLKIF_RSP_EOPNOTSUPP, `unknown operation ${req.operation}`);

    case 'discard': {
      // dispatch_discard_io: translate as a write first, then the disk's discard support.
      const err = translate(disk, true, req.sectorNumber, req.nrSectors, 'DISCARD');
      if (err) return fail(BLKIF_RSP_ERROR, err);
      if (!disk.discard) return fail(BLKIF_RSP_EOPNOTSUPP, 'discard not supported by the disk');
      // Secure erase only if the frontend asked and the backend advertised discard-secure.
      const secure = (disk.discardSecure ?? false) && (req.flag & BLKIF_DISCARD_SECURE) !== 0;
      return { ok: true, nrSectors: req.nrSectors, secure };
    }

    case 'indirect':
    case 'rw': {
      let op: number;
      let nseg: number;
      let segments: readonly BlkifSegment[] | undefined;
      if (req.kind === 'indirect') {
        // A backend that never advertised feature-max-indirect-segments treats op 6 as unknown.
        if (disk.maxIndirectSegments <= 0)
          return fail(BLKIF_RSP_EOPNOTSUPP, 'indirect requests not supported');
        op = req.indirectOp;
        if (op !== BLKIF_OP_READ && op !== BLKIF_OP_WRITE) {
          return fail(
            BLKIF_RSP_ERROR,
            `Invalid indirect operation (${op}): indirect_op must be READ or WRITE`,
          );
        }
        nseg = req.nrSegments;
        if (nseg === 0 || nseg > disk.maxIndirectSegments) {
          return fail(
            BLKIF_RSP_ERROR,
            `Bad number of segments in request (${nseg}): indirect needs 1..${disk.maxIndirectSegments}`,
          );
        }
        if (indirectSegments !== undefined && indirectSegments.length !== nseg) {
          return fail(
            BLKIF_RSP_ERROR,
            `indirect request has nr_segments ${nseg} but ${indirectSegments.length} segments were read`,
          );
        }
        segments = indirectSegments;
      } else {
        op = req.operation;
        nseg = req.nrSegments;
        const flush = op === BLKIF_OP_FLUSH_DISKCACHE || op === BLKIF_OP_WRITE_BARRIER;
        if ((nseg === 0 && !flush) || nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
          return fail(
            BLKIF_RSP_ERROR,
            `Bad number of segments in request (${nseg}): ${opName(op)} needs ${flush ? 0 : 1}..${BLKIF_MAX_SEGMENTS_PER_REQUEST}`,
          );
        }
        segments = req.segments;
      }

      let nrSectors = 0n;
      const segSectors: number[] = [];
      if (segments !== undefined) {
        for (let i = 0; i < segments.length; i++) {
          const err = segmentError(segments[i], i);
          if (err) return fail(BLKIF_RSP_ERROR, err);
          const n = segments[i].lastSect - segments[i].firstSect + 1;
          segSectors.push(n);
          nrSectors += BigInt(n);
        }
      }

      const write = op !== BLKIF_OP_READ;
      const terr = translate(disk, write, req.sectorNumber, nrSectors, opName(op));
      if (terr) return fail(BLKIF_RSP_ERROR, terr);

      // Every segment (and the start) must be a whole number of logical blocks.
      for (let i = 0; i < segSectors.length; i++) {
        if (((req.sectorNumber | BigInt(segSectors[i])) & (lbsSectors - 1n)) !== 0n) {
          return fail(
            BLKIF_RSP_ERROR,
            `Misaligned I/O request: sector_number ${req.sectorNumber} / segment ${i} of ${segSectors[i]} sectors not a multiple of ${disk.logicalBlockSize} bytes`,
          );
        }
      }

      if (op === BLKIF_OP_FLUSH_DISKCACHE && !disk.flushCache) {
        return fail(BLKIF_RSP_EOPNOTSUPP, 'flush diskcache op failed, not supported');
      }
      if (op === BLKIF_OP_WRITE_BARRIER && !(disk.barrier ?? disk.flushCache ?? false)) {
        return fail(BLKIF_RSP_EOPNOTSUPP, 'write barrier op failed, not supported');
      }
      return { ok: true, nrSectors };
    }
  }
}
