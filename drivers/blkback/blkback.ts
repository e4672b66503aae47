/**
 * The blkback data path for one request (Linux blkback.c: dispatch_rw_block_io, dispatch_discard_io,
 * dispatch_other_io, xen_blkbk_parse_indirect, xen_blkbk_map, __end_block_io_op,
 * xen_blkbk_unmap_and_respond). Works only on the private copy the ring thread took; every failure is a
 * response with Linux's status and a (rate-limited) log line, never an exception.
 *
 * Grants: data pages are mapped read-only for writes to disk and read-write for reads (persistent
 * grants are always read-write and kept in a bounded per-ring cache); indirect pages are mapped
 * read-only, read once and unmapped. A map failure is sticky for the request, and exactly the handles
 * that were mapped are unmapped (XSA-362/365/371). Grants are unmapped before the response is posted.
 * Each segment is its own bio over its own page (no merging across grant-mapped pages, XSA-229).
 */
import type { Bio, BioOp } from '../../emulator/kernel/block-device.js';
import { traceWanted } from '../../emulator/runtime/engine.js';
import type { ReadOnlyPage } from '../../hypervisor/readonly-page.js';
import {
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  BLKIF_RSP_OKAY,
  BLKIF_SECTOR_SIZE,
  type BlkifRequest,
  type BlkifSegment,
  decodeIndirectSegments,
} from '../blkif.js';
import { validateRequest } from '../blkif-validate.js';
import { E, hex8 } from './common.js';
import type { PersistentGrant } from './persistent-grants.js';
import type { BlkifRing } from './ring-thread.js';

/** One mapped data segment of a request (Linux struct grant_page + seg_buf). */
interface MappedSeg {
  gref: number;
  /** Grant handle when mapped for this request only; -1 (BLKBACK_INVALID_HANDLE) otherwise. */
  handle: number;
  persistent: PersistentGrant | undefined;
  page: Uint8Array | ReadOnlyPage | undefined;
  firstSect: number;
  nsec: number;
}

/** struct pending_req: what a request holds between dispatch and response. */
export interface PendingReq {
  readonly id: bigint;
  /** The operation echoed in the response (indirect_op for BLKIF_OP_INDIRECT). */
  readonly operation: number;
  status: number;
  pendcnt: number;
  readonly segs: MappedSeg[];
  readonly sector: bigint;
  readonly nrSects: bigint;
  readonly started: number;
}

const OP_NAMES = ['read', 'write', 'write_barrier', 'flush_diskcache', 'reserved_1', 'discard', 'indirect'];

function opName(op: number): string {
  return OP_NAMES[op] ?? `op${op}`;
}

/**
 * Dispatch one request copied out of the ring. Returns true when it failed, which ends the current pass
 * of __do_block_io_op (the final check then resumes it), as Linux's `goto done` does.
 */
export async function dispatchRequest(ring: BlkifRing, req: BlkifRequest): Promise<boolean> {
  switch (req.kind) {
    case 'rw':
    case 'indirect':
      return dispatchRw(ring, req);
    case 'discard':
      ring.freeReq();
      return dispatchDiscard(ring, req);
    case 'other':
      // dispatch_other_io: unknown operations (incl. RESERVED_1) get EOPNOTSUPP echoing u.other.id.
      ring.freeReq();
      traceReq(ring, 'start', req.operation, 0n, 0n, req.id);
      ring.warn.log(`xen-blkback: ${ring.label}: unknown operation ${req.operation} (id ${req.id})`);
      respond(ring, req.id, req.operation, BLKIF_RSP_EOPNOTSUPP, 0n, 0n);
      return true;
  }
}

function traceReq(
  ring: BlkifRing,
  phase: 'start' | 'end',
  op: number,
  sector: bigint,
  nr: bigint,
  id: bigint,
  status?: number,
): void {
  const trace = ring.blkif.ctx.env.trace;
  if (!traceWanted(trace, 'blkback', 'blk-req')) return; // a filtered trace: build nothing per request
  trace.emit('blkback', 'blk-req', {
    phase,
    ring: ring.label,
    id: id.toString(),
    op: opName(op),
    sector: sector.toString(),
    nr_sectors: nr.toString(),
    ...(status === undefined ? {} : { status }),
  });
}

function respond(ring: BlkifRing, id: bigint, op: number, status: number, sector: bigint, nr: bigint): void {
  ring.makeResponse(id, op, status);
  traceReq(ring, 'end', op, sector, nr, id, status);
}

/** fail_response: ERROR (or EOPNOTSUPP), free the pending_req, back off 1 ms (msleep(1)). */
async function rejectRequest(
  ring: BlkifRing,
  id: bigint,
  op: number,
  status: number,
  reason: string,
  sector: bigint,
): Promise<true> {
  ring.warn.log(`xen-blkback: ${ring.label}: ${reason}`);
  respond(ring, id, op, status, sector, 0n);
  ring.freeReq();
  await ring.blkif.ctx.env.sleep(1, { what: 'blkback back-off after a failed request' });
  return true;
}

function failResponse(
  ring: BlkifRing,
  id: bigint,
  op: number,
  reason: string,
  sector: bigint,
): Promise<true> {
  return rejectRequest(ring, id, op, BLKIF_RSP_ERROR, reason, sector);
}

async function dispatchRw(
  ring: BlkifRing,
  req: BlkifRequest & { kind: 'rw' | 'indirect' },
): Promise<boolean> {
  const { ctx } = ring.blkif;
  const vbd = ring.blkif.vbd!;
  const indirect = req.kind === 'indirect';
  const op = indirect ? req.indirectOp : req.operation;
  const disk = vbd.disk(ctx.behaviour.indirect);
  // Everything the ring slot alone decides (op, indirect_op, segment count, read-only, range...).
  const first = validateRequest(req, disk);
  if (!first.ok) {
    // Refused before its segments were known: the trace says 0 sectors, as the response does.
    traceReq(ring, 'start', op, req.sectorNumber, 0n, req.id);
    return rejectRequest(ring, req.id, op, first.status, first.reason, req.sectorNumber);
  }
  // A direct request's segments are in the slot; an indirect one's are counted once read below.
  if (!indirect) traceReq(ring, 'start', op, req.sectorNumber, first.nrSectors, req.id);

  switch (op) {
    case BLKIF_OP_READ:
      ring.stats.rd_req++;
      break;
    case BLKIF_OP_WRITE:
      ring.stats.wr_req++;
      break;
    default:
      ring.stats.f_req++;
  }

  let segments: readonly BlkifSegment[];
  if (req.kind === 'indirect') {
    const parsed = parseIndirect(ring, req.indirectGrefs, req.nrSegments);
    if (typeof parsed === 'string') {
      traceReq(ring, 'start', op, req.sectorNumber, 0n, req.id);
      return failResponse(ring, req.id, op, parsed, req.sectorNumber);
    }
    segments = parsed;
    const verdict = validateRequest(req, disk, segments);
    traceReq(ring, 'start', op, req.sectorNumber, verdict.ok ? verdict.nrSectors : 0n, req.id);
    if (!verdict.ok) return rejectRequest(ring, req.id, op, verdict.status, verdict.reason, req.sectorNumber);
  } else {
    segments = req.segments;
  }
  const nrSects = sumSectors(segments);

  // WRITE_BARRIER: every earlier request on this ring completes first (xen_blk_drain_io).
  if (op === BLKIF_OP_WRITE_BARRIER && ring.inflight > 0) {
    await ctx.env.wait(ring.drainWq, () => ring.inflight === 0, {
      what: `in-flight I/O on ring ${ring.label} to drain before a barrier`,
      holders: () => ring.ioHolders(),
    });
  }

  const preq: PendingReq = {
    id: req.id,
    operation: op,
    status: BLKIF_RSP_OKAY,
    pendcnt: 0,
    segs: [],
    sector: req.sectorNumber,
    nrSects,
    started: ctx.env.now(),
  };
  if (!mapSegments(ring, preq, segments, op !== BLKIF_OP_READ)) {
    unmapSegments(ring, preq);
    return failResponse(ring, req.id, op, 'invalid buffer -- could not remap it', req.sectorNumber);
  }

  // dispatch_rw_block_io: every segment goes into one bio with bio_add_page (offset and length as
  // first_sect/last_sect say); a bio of at most 256 segments never fills, so one bio per request.
  const bios: Bio[] = [];
  const end = (error: number) => endBio(ring, preq, error);
  if (op === BLKIF_OP_FLUSH_DISKCACHE || op === BLKIF_OP_WRITE_BARRIER) {
    // REQ_PREFLUSH: the flush is queued ahead of the data (the disk serves bios in order).
    bios.push({ op: 'flush', sector: 0, vecs: [], end });
  }
  const bioOp: BioOp = op === BLKIF_OP_READ ? 'read' : 'write';
  if (preq.segs.length > 0) {
    const vecs: Uint8Array[] = [];
    // Simplification: a read-only mapping cannot back a bio, so a write's data is copied at submission
    // (one buffer for the request, a vec per segment); a read goes straight into the granted frames.
    const copy = bioOp === 'write' ? new Uint8Array(Number(nrSects) * BLKIF_SECTOR_SIZE) : undefined;
    let at = 0;
    for (const s of preq.segs) {
      const off = s.firstSect * BLKIF_SECTOR_SIZE;
      const len = s.nsec * BLKIF_SECTOR_SIZE;
      const page = s.page!;
      if (copy === undefined) vecs.push((page as Uint8Array).subarray(off, off + len));
      else {
        if (page instanceof Uint8Array) copy.set(page.subarray(off, off + len), at);
        else page.copyTo(copy, at, off, len);
        vecs.push(copy.subarray(at, at + len));
        at += len;
      }
    }
    bios.push({ op: bioOp, sector: Number(req.sectorNumber), vecs, end });
  }
  preq.pendcnt = bios.length;
  ring.inflight++;
  ring.blkif.get();
  if (bioOp === 'read') ring.stats.rd_sect += Number(nrSects);
  else ring.stats.wr_sect += Number(nrSects);
  for (const bio of bios) ctx.kernel.blocks.submit(vbd.bdev, bio);
  return false;
}

function sumSectors(segs: readonly BlkifSegment[]): bigint {
  let n = 0n;
  for (const s of segs) n += BigInt(s.lastSect - s.firstSect + 1);
  return n;
}

/**
 * xen_blkbk_parse_indirect: map each indirect page read-only, read the segments once, unmap. Returns the
 * segments or the reason of the failure. Simplification: indirect pages never use persistent grants.
 */
function parseIndirect(
  ring: BlkifRing,
  grefs: readonly number[],
  nrSegments: number,
): BlkifSegment[] | string {
  const { hc } = ring.blkif.ctx;
  const handles: number[] = [];
  const views: DataView[] = [];
  let failed: string | undefined;
  for (const gref of grefs) {
    const r = hc.mapGrant(ring.blkif.domid, gref, { readonly: true });
    if (r.status !== 0 || r.page === undefined) {
      failed = `indirect page gref ${gref} could not be mapped (status ${r.status})`;
      break;
    }
    handles.push(r.handle);
    // Read once into private memory; the frontend may rewrite the page meanwhile (XSA-155).
    const copy = r.page instanceof Uint8Array ? r.page.slice() : r.page.slice();
    views.push(new DataView(copy.buffer));
  }
  for (const h of handles) hc.unmapGrant(h);
  if (failed !== undefined) return failed;
  return decodeIndirectSegments(views, nrSegments);
}

/**
 * xen_blkbk_map: every segment is tried; an error is sticky for the request and the handles of the
 * segments that did map stay recorded so that exactly those are unmapped.
 */
function mapSegments(
  ring: BlkifRing,
  preq: PendingReq,
  segments: readonly BlkifSegment[],
  toDisk: boolean,
): boolean {
  const { ctx } = ring.blkif;
  const usePersistent = ring.blkif.featureGntPersistent;
  const now = ctx.env.now();
  let ok = true;
  for (const seg of segments) {
    const m: MappedSeg = {
      gref: seg.gref,
      handle: -1,
      persistent: undefined,
      page: undefined,
      firstSect: seg.firstSect,
      nsec: seg.lastSect - seg.firstSect + 1,
    };
    preq.segs.push(m);
    if (usePersistent) {
      const hit = ring.persistent.lookup(seg.gref, now);
      if (hit.kind === 'hit') {
        m.persistent = hit.grant;
        m.page = hit.grant.page;
        continue;
      }
      if (hit.kind === 'busy') ring.warn.log('xen-blkback: requesting a grant already in use');
    }
    // Persistent grants are mapped read-write (the frontend grants them writable); otherwise a write
    // to disk only needs to read the guest page.
    const r = ctx.hc.mapGrant(ring.blkif.domid, seg.gref, { readonly: toDisk && !usePersistent });
    if (r.status !== 0 || r.page === undefined) {
      ok = false;
      continue;
    }
    m.page = r.page;
    if (usePersistent && r.page instanceof Uint8Array) {
      const added = ring.persistent.add(seg.gref, r.handle, r.page, now);
      if (added !== undefined) {
        m.persistent = added;
        continue;
      }
      if (ring.persistent.overflow && !overflowLogged.has(ring)) {
        overflowLogged.add(ring);
        ctx.log(
          `domain ${ring.blkif.domid}, device ${hex8(ring.blkif.vbd!.pdevice)} is using maximum number of persistent grants`,
        );
      }
    }
    m.handle = r.handle;
  }
  return ok;
}

const overflowLogged = new WeakSet<BlkifRing>();

/** xen_blkbk_unmap: only handles that were mapped; persistent grants go back to the cache. */
function unmapSegments(ring: BlkifRing, preq: PendingReq): void {
  const { hc, env } = ring.blkif.ctx;
  for (const s of preq.segs) {
    if (s.persistent !== undefined) {
      ring.persistent.release(s.persistent, env.now());
      s.persistent = undefined;
    } else if (s.handle >= 0) {
      hc.unmapGrant(s.handle);
      s.handle = -1;
    }
    s.page = undefined;
  }
}

/** __end_block_io_op: an error fails the whole request; the last bio unmaps and responds. */
function endBio(ring: BlkifRing, preq: PendingReq, error: number): void {
  const { ctx } = ring.blkif;
  if (error === -E.EOPNOTSUPP && preq.operation === BLKIF_OP_FLUSH_DISKCACHE) {
    ring.warn.log('xen-blkback: flush diskcache op failed, not supported');
    withdrawFeature(ring, 'feature-flush-cache');
    preq.status = BLKIF_RSP_EOPNOTSUPP;
  } else if (error === -E.EOPNOTSUPP && preq.operation === BLKIF_OP_WRITE_BARRIER) {
    ring.warn.log('xen-blkback: write barrier op failed, not supported');
    withdrawFeature(ring, 'feature-barrier');
    preq.status = BLKIF_RSP_EOPNOTSUPP;
  } else if (error !== 0) {
    ring.warn.log(`xen-blkback: Buffer not up-to-date at end of operation, error=${error}`);
    preq.status = BLKIF_RSP_ERROR;
  }
  preq.pendcnt--;
  if (preq.pendcnt > 0) return;
  // xen_blkbk_unmap_and_respond: unmap first, then the response, then the references.
  unmapSegments(ring, preq);
  respond(ring, preq.id, preq.operation, preq.status, preq.sector, preq.nrSects);
  ring.freeReq();
  ring.inflight--;
  if (ring.inflight === 0) ring.drainWq.wakeAll();
  if (!ring.active && ring.inflight === 0 && ring.blkif.lingering.has(ring)) {
    ring.releaseCaches();
    ring.blkif.lingering.delete(ring);
  }
  if (traceWanted(ctx.env.trace, 'blkback', 'blk-req-latency')) {
    ctx.env.trace.emit('blkback', 'blk-req-latency', { ring: ring.label, ms: ctx.env.now() - preq.started });
  }
  ring.blkif.put();
}

/** The disk refused a flush/barrier: advertise the feature as 0 (xen_blkbk_flush_diskcache / barrier). */
function withdrawFeature(ring: BlkifRing, key: 'feature-flush-cache' | 'feature-barrier'): void {
  const blkif = ring.blkif;
  if (blkif.vbd) blkif.vbd.flushSupport = false;
  const node = `${blkif.dev.nodename}/${key}`;
  blkif.ctx.env.spawn(
    'blkback-feature',
    async () => {
      try {
        await blkif.dev.client.write(node, '0');
      } catch (e) {
        blkif.ctx.log(`writing ${key} (${(e as Error).message})`);
      }
    },
    { component: 'blkback' },
  );
}

/** dispatch_discard_io: translate as a write, then a synchronous discard of the range. */
async function dispatchDiscard(ring: BlkifRing, req: BlkifRequest & { kind: 'discard' }): Promise<boolean> {
  const { ctx } = ring.blkif;
  const vbd = ring.blkif.vbd!;
  traceReq(ring, 'start', BLKIF_OP_DISCARD, req.sectorNumber, req.nrSectors, req.id);
  ring.blkif.get();
  let status = BLKIF_RSP_OKAY;
  const verdict = validateRequest(req, vbd.disk(ctx.behaviour.indirect));
  if (!verdict.ok) {
    status = verdict.status;
    ring.warn.log(
      verdict.status === BLKIF_RSP_EOPNOTSUPP
        ? 'xen-blkback: discard op failed, not supported'
        : `xen-blkback: access denied: DISCARD [${req.sectorNumber}->${req.sectorNumber + req.nrSectors}] on dev=${hex8(vbd.pdevice)}`,
    );
  } else {
    ring.stats.ds_req++;
    if (req.nrSectors > 0n) {
      try {
        await ctx.kernel.blocks.submitAndWait(
          vbd.bdev,
          'discard',
          Number(req.sectorNumber),
          new Uint8Array(0),
          Number(req.nrSectors),
        );
      } catch (e) {
        const code = (e as { code?: string }).code;
        status = code === 'EOPNOTSUPP' ? BLKIF_RSP_EOPNOTSUPP : BLKIF_RSP_ERROR;
      }
    }
  }
  respond(ring, req.id, req.operation, status, req.sectorNumber, req.nrSectors);
  ring.blkif.put();
  return status !== BLKIF_RSP_OKAY;
}
