/**
 * Requests of the tapdev queue: a bio is split into ring-sized parts (at most BLKTAP_SEGMENT_MAX bio_vecs,
 * as blk_queue_max_segments limits a request), each part becomes one `struct blktap_request` on the ring
 * with one segment per bio_vec. The bio ends when its last part ends; the first error wins.
 * Simplification: segment pages are views of the bio's own data (the pages blkback mapped) rather than
 * pool pages the driver bounces through, so tapdisk reads and writes the guest's bytes directly.
 */
import type { Bio } from '../../emulator/kernel/block-device.js';
import { SECTOR_SIZE } from '../../emulator/kernel/block-device.js';
import { type BLKTAP_OP_READ, type BLKTAP_OP_WRITE, BLKTAP_SEGMENT_MAX } from './abi.js';

/** One bio waiting in (or going through) the tapdev request queue. */
export interface QueuedBio {
  readonly bio: Bio;
  /** Parts not yet put on the ring (read/write), or none for a flush (a drain barrier). */
  readonly parts: BioPart[];
  /** Parts still outstanding (queued or on the ring). */
  outstanding: number;
  /** First error seen (negative errno), 0 when all went well so far. */
  error: number;
}

export interface BioPart {
  readonly owner: QueuedBio;
  /** First sector of this part. */
  readonly sector: number;
  /** One view per segment: the bio's vecs, each at most one page. */
  readonly segments: Uint8Array[];
}

/** `struct blktap_request`: a part on the ring under slot `usrIdx`. */
export interface BlktapRequest {
  readonly usrIdx: number;
  readonly operation: typeof BLKTAP_OP_READ | typeof BLKTAP_OP_WRITE;
  readonly part: BioPart;
  /** Virtual time of submission (request->time). */
  readonly time: number;
}

/** Splits a read or write bio into parts of at most 11 vecs, each vec a segment. */
export function queueBio(bio: Bio): QueuedBio {
  const q: QueuedBio = { bio, parts: [], outstanding: 0, error: 0 };
  if (bio.op === 'flush' || bio.op === 'discard') return q;
  const vecs = bio.vecs;
  let sector = bio.sector;
  for (let i = 0; i < vecs.length; i += BLKTAP_SEGMENT_MAX) {
    const segments = vecs.slice(i, i + BLKTAP_SEGMENT_MAX);
    q.parts.push({ owner: q, sector, segments });
    for (const s of segments) sector += s.length / SECTOR_SIZE;
  }
  q.outstanding = q.parts.length;
  return q;
}

/** Ends one part; ends the bio when it was the last outstanding one. Returns true if the bio ended. */
export function endPart(part: BioPart, error: number): boolean {
  const q = part.owner;
  if (error !== 0 && q.error === 0) q.error = error;
  q.outstanding--;
  if (q.outstanding > 0) return false;
  q.bio.end(q.error);
  return true;
}

/** Sectors a segment view covers (first_sect is always 0 here: the view starts at its vec's first byte). */
export function segmentSectors(seg: Uint8Array): number {
  return seg.length / SECTOR_SIZE;
}
