/**
 * blkfront's data path (Linux xen-blkfront.c blkif_queue_rq / blkif_queue_rw_req / blkif_interrupt /
 * blkif_completion): bios from the guest block layer are split to what one request can carry, loaded
 * through busdma (one grant per segment, read-only for disk writes) or copied through persistent
 * grants, put on the ring as direct (≤ 11 segments) or indirect requests, and completed from the
 * event-channel interrupt, which checks every response against the shadow table.
 *
 * A single dispatcher task per ring issues requests in order; when the ring (the shadow table) is full
 * it waits, declared as "free slot on <disk> ring", and a deferred busdma load holds the queue so no
 * later request overtakes it (XBDCF_ASYNC_MAPPING in the FreeBSD conversion). Requests are pushed to
 * the backend once per pass over the queue, as pre-blk-mq Linux do_blkif_request (flush_requests when
 * `queued != 0`) and FreeBSD xbd_startio do: RING_PUSH_REQUESTS_AND_CHECK_NOTIFY once the queue is
 * empty or the ring full, and before the dispatcher blocks on a deferred grant load.
 * Simplification: on entering the error state the outstanding requests fail at once with EIO (Linux
 * leaves them to the blk-mq timeout).
 */
import type { Bio } from '../../emulator/kernel/block-device.js';
import { ERRNO } from '../../emulator/kernel/errno.js';
import { traceWanted, type WaitQueue } from '../../emulator/runtime/engine.js';
import {
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  BLKIF_RSP_OKAY,
  BLKIF_SECTOR_SIZE,
  BLKIF_SEGMENTS_PER_INDIRECT_PAGE,
  type BlkifRequest,
  type BlkifSegment,
  decodeResponse,
  encodeIndirectSegments,
  encodeRequest,
  indirectPagesFor,
} from '../blkif.js';
import { BUS_DMA_XEN_RO, BusDmaError, EINPROGRESS } from '../busdma/constants.js';
import type { GuestBuffer } from '../busdma/guest-memory.js';
import type { DmaMap, DmaSegment } from '../busdma/map.js';
import { XEN_PAGE_SIZE } from '../ring.js';
import { contiguousView, sliceVecs, VecCursor, vecsLength } from './bio-data.js';
import type { BlkfrontInfo, BlkfrontRingInfo } from './info.js';
import type { PersistentGrant } from './persistent.js';
import type { ShadowChunk, ShadowEntry } from './shadow.js';

const OP_NAMES = ['read', 'write', 'barrier', 'flush', 'reserved', 'discard', 'indirect'];
/** Linux op_name(). */
export function opName(op: number): string {
  return OP_NAMES[op] ?? 'unknown';
}

const EIO = -ERRNO.EIO;

/** Most data segments one request may carry with what was negotiated. */
export function maxRequestSegments(info: BlkfrontInfo): number {
  return info.maxIndirectSegments > 0 ? info.maxIndirectSegments : BLKIF_MAX_SEGMENTS_PER_REQUEST;
}

/** The block driver's submit: queue the bio (split to request size) and wake the dispatcher. */
export function submitBio(info: BlkfrontInfo, bio: Bio): void {
  const ring = info.ring;
  const suspended = info.connected === 'suspended';
  if (info.diskDead || (info.connected !== 'connected' && !suspended) || (!ring && !suspended)) {
    bio.end(EIO);
    return;
  }
  // Suspended: the stopped queue keeps the bio until blkif_recover.
  const queue = suspended ? info.requeue : ring!.queue;
  const parent = { remaining: 0, error: 0 };
  if (bio.op === 'flush' || bio.op === 'discard') {
    if (bio.op === 'flush' && !info.featureFlush) {
      bio.end(0); // no write cache advertised: the block layer has nothing to flush
      return;
    }
    if (bio.op === 'discard' && !info.featureDiscard) {
      bio.end(-ERRNO.EOPNOTSUPP);
      return;
    }
    parent.remaining = 1;
    queue.push({ bio, vecs: [], length: 0, sector: bio.sector, parent });
  } else {
    const segs = maxRequestSegments(info);
    const total = vecsLength(bio.vecs);
    const aligned = info.bounce || bio.vecs[0]!.byteOffset % XEN_PAGE_SIZE === 0;
    // The queue limits split a bio so that each piece fits one request (XBD_SEGS_TO_SIZE keeps one
    // segment spare for a buffer that does not start on a page).
    const chunk = (aligned ? segs : segs - 1) * XEN_PAGE_SIZE;
    if (total <= chunk) {
      parent.remaining = 1;
      queue.push({ bio, vecs: bio.vecs, length: total, sector: bio.sector, parent });
    } else {
      const n = Math.ceil(total / chunk);
      parent.remaining = n;
      for (let i = 0; i < n; i++) {
        const byteOffset = i * chunk;
        const length = Math.min(chunk, total - byteOffset);
        queue.push({
          bio,
          vecs: sliceVecs(bio.vecs, byteOffset, length),
          length,
          sector: bio.sector + byteOffset / BLKIF_SECTOR_SIZE,
          parent,
        });
      }
    }
  }
  ring?.wake.wakeAll();
}

/** Start the per-ring dispatcher (a daemon: it serves whoever submits). */
export function startDispatcher(info: BlkfrontInfo, ring: BlkfrontRingInfo): void {
  if (ring.dispatcherRunning) return;
  ring.dispatcherRunning = true;
  const env = info.env;
  env.spawn(
    `blkfront-queue ${info.diskName}`,
    async () => {
      try {
        while (info.ring === ring) {
          if (ring.queue.length === 0) {
            await env.wait(ring.wake, () => ring.queue.length > 0 || info.ring !== ring, {
              what: `I/O for ${info.diskName}`,
            });
            continue;
          }
          if (info.connected === 'suspended') {
            // Resuming: talk_to_blkback set this ring up; requests go out once blkif_recover ran.
            await env.wait(ring.wake, () => info.connected !== 'suspended' || info.ring !== ring, {
              what: `${info.diskName} to reconnect after resume`,
            });
            continue;
          }
          if (info.connected !== 'connected' || info.diskDead) {
            failQueued(ring, EIO);
            continue;
          }
          if (ring.shadow.used >= ring.shadow.size) {
            await env.wait(
              ring.wake,
              () =>
                ring.shadow.used < ring.shadow.size || info.ring !== ring || info.connected !== 'connected',
              { what: `free slot on ${info.diskName} ring` },
            );
            continue;
          }
          const item = ring.queue.shift()!;
          await issue(info, ring, item);
          // The end of this pass: what was queued is on the ring (or the ring is full).
          if (ring.queue.length === 0 || ring.shadow.used >= ring.shadow.size) flushRequests(info, ring);
        }
      } finally {
        ring.dispatcherRunning = false;
      }
    },
    { daemon: true, component: 'blkfront' },
  );
}

export function failQueued(ring: BlkfrontRingInfo, error: number): void {
  const items = ring.queue.splice(0);
  for (const it of items) completeChunk(it, error);
}

function completeChunk(chunk: Pick<ShadowChunk, 'bio' | 'parent'>, error: number): void {
  const p = chunk.parent;
  if (error !== 0 && p.error === 0) p.error = error;
  if (--p.remaining === 0) chunk.bio.end(p.error);
}

/** blkif_queue_request: build one ring request for `item` and push it. */
async function issue(info: BlkfrontInfo, ring: BlkfrontRingInfo, item: ShadowChunk): Promise<void> {
  const env = info.env;
  const id = ring.shadow.getId();
  const e = ring.shadow.entries[id];
  e.reqId = id; // ring_req->u.rw.id = id, saved in the shadow
  e.status = 'processing';
  e.chunk = item;
  e.grants = [];
  e.startedAt = env.now();
  const bio = item.bio;
  let req: BlkifRequest;
  try {
    if (bio.op === 'flush') {
      e.operation = info.flushOp;
      e.indirectOp = 0;
      e.nrSegments = 0;
      req = {
        kind: 'rw',
        operation: info.flushOp,
        nrSegments: 0,
        handle: info.handle,
        id: BigInt(id),
        sectorNumber: 0n,
        segments: [],
      };
    } else if (bio.op === 'discard') {
      e.operation = BLKIF_OP_DISCARD;
      e.indirectOp = 0;
      e.nrSegments = 0;
      req = {
        kind: 'discard',
        operation: BLKIF_OP_DISCARD,
        flag: 0,
        handle: info.handle,
        id: BigInt(id),
        sectorNumber: BigInt(item.sector),
        nrSectors: BigInt(bio.sectors ?? 0),
      };
    } else {
      const write = bio.op === 'write';
      const segments = await mapData(info, e, item, write);
      if (info.ring !== ring || info.connected !== 'connected') {
        releaseEntry(info, e);
        ring.shadow.addId(id);
        completeChunk(item, EIO);
        return;
      }
      const op = write ? BLKIF_OP_WRITE : BLKIF_OP_READ;
      e.nrSegments = segments.length;
      if (segments.length <= BLKIF_MAX_SEGMENTS_PER_REQUEST) {
        e.operation = op;
        e.indirectOp = 0;
        req = {
          kind: 'rw',
          operation: op,
          nrSegments: segments.length,
          handle: info.handle,
          id: BigInt(id),
          sectorNumber: BigInt(item.sector),
          segments,
        };
      } else {
        const grefs = await mapIndirect(info, e, segments);
        e.operation = BLKIF_OP_INDIRECT;
        e.indirectOp = op;
        req = {
          kind: 'indirect',
          operation: BLKIF_OP_INDIRECT,
          indirectOp: op,
          nrSegments: segments.length,
          id: BigInt(id),
          sectorNumber: BigInt(item.sector),
          handle: info.handle,
          indirectGrefs: grefs,
        };
      }
    }
  } catch (err) {
    if (!(err instanceof BusDmaError)) throw err;
    env.trace.log('blkfront', `${info.diskName}: cannot map request: ${err.message}`);
    releaseEntry(info, e);
    ring.shadow.addId(id);
    completeChunk(item, EIO);
    return;
  }
  const front = ring.front;
  encodeRequest(front.sring.view, front.requestSlot(front.reqProdPvt), info.abi!, req);
  front.reqProdPvt = front.reqProdPvt + 1;
  e.status = 'waiting';
  e.reqId = id;
  if (traceWanted(env.trace, 'blkfront', 'request-start')) {
    env.trace.emit('blkfront', 'request-start', {
      disk: info.diskName,
      id,
      op: opName(e.operation === BLKIF_OP_INDIRECT ? e.indirectOp : e.operation),
      indirect: e.operation === BLKIF_OP_INDIRECT,
      sector: item.sector,
      length: item.length,
      nseg: e.nrSegments,
    });
  }
}

/** flush_requests: publish the requests written so far, notifying the backend if it asked to be. */
function flushRequests(info: BlkfrontInfo, ring: BlkfrontRingInfo): void {
  // A ring torn down meanwhile is not written (its pages may be back with the allocator).
  if (info.ring !== ring) return;
  const front = ring.front;
  if (front.reqProdPvt === front.sring.reqProd) return;
  if (front.pushRequestsAndCheckNotify()) info.kernel.events.notify(ring.port);
  emitRing(info, ring);
}

/**
 * bus_dmamap_load for the dispatcher: when grant references are short the load is deferred, and the
 * requests already written are pushed first (their completions are what frees references).
 */
async function loadForRequest(
  info: BlkfrontInfo,
  map: DmaMap,
  buf: GuestBuffer,
  flags: number,
): Promise<readonly DmaSegment[]> {
  let result: { segs: readonly DmaSegment[]; error: number } | undefined;
  let done: WaitQueue | undefined;
  const rc = map.load(buf, flags, (segs, error) => {
    result = { segs, error };
    done?.wakeAll();
  });
  if (rc !== 0 && rc !== EINPROGRESS) throw new BusDmaError(rc, `${map.name}: load failed with errno ${rc}`);
  if (result === undefined) {
    const ring = info.ring;
    if (ring) flushRequests(info, ring);
    const q = info.env.waitQueue(`${map.name} load`);
    done = q;
    await info.env.wait(q, () => result !== undefined, {
      what: `${buf.frames.length} grant reference(s) for ${map.tag.name}`,
    });
  }
  const r = result!;
  if (r.error !== 0)
    throw new BusDmaError(r.error, `${map.name}: deferred load failed with errno ${r.error}`);
  return r.segs;
}

/** The ring's indices with Xen's names, for occupancy counters and xen-ringwatch lines. */
function emitRing(info: BlkfrontInfo, ring: BlkfrontRingInfo): void {
  if (!traceWanted(info.env.trace, 'blkfront', 'ring')) return; // filtered: skip the index reads
  const f = ring.front;
  const s = f.sring;
  info.env.trace.emit('blkfront', 'ring', {
    ring: info.diskName,
    req_prod: s.reqProd,
    req_event: s.reqEvent,
    rsp_prod: s.rspProd,
    rsp_event: s.rspEvent,
    nr_ents: f.size,
    req_prod_pvt: f.reqProdPvt,
    rsp_cons: f.rspCons,
    inflight: ring.shadow.used,
  });
}

/** Grant the data pages: persistent grants (copy), or a busdma load of the bio's memory or a bounce. */
async function mapData(
  info: BlkfrontInfo,
  e: ShadowEntry,
  item: ShadowChunk,
  write: boolean,
): Promise<BlkifSegment[]> {
  const k = info.kernel;
  const length = item.length;
  if (info.featurePersistent) {
    // The vecs are packed into whole grant pages, as the grant-copy loop of blkif_queue_rw_req does.
    const cursor = write ? new VecCursor(item.vecs) : undefined;
    const out: BlkifSegment[] = [];
    for (let off = 0; off < length; off += XEN_PAGE_SIZE) {
      const len = Math.min(XEN_PAGE_SIZE, length - off);
      const g = info.persistent!.get();
      if (!g) throw new BusDmaError(ERRNO.ENOSPC, `${info.diskName}: no grant for a persistent page`);
      e.grants.push(g);
      cursor?.copyOut(k.memory.page(g.mfn).subarray(0, len));
      out.push({ gref: g.gref, firstSect: 0, lastSect: len / BLKIF_SECTOR_SIZE - 1 });
    }
    return out;
  }
  // Simplification: vecs that are not back to back in guest memory go through one bounce buffer
  // (Linux grants each bio_vec's page where it lies).
  const direct = info.bounce ? undefined : contiguousView(item.vecs);
  let buf: GuestBuffer | undefined = direct === undefined ? undefined : k.memory.bufferOf(direct);
  if (!buf) {
    buf = k.memory.allocBuffer(length);
    e.bounce = buf;
    if (write) new VecCursor(item.vecs).copyOut(k.memory.view(buf));
  }
  const map = info.tag!.createMap(`${info.diskName} req`);
  e.dataMap = map;
  const segs = await loadForRequest(info, map, buf, write ? BUS_DMA_XEN_RO : 0);
  return segs.map((s) => ({
    gref: s.gref,
    firstSect: s.offset / BLKIF_SECTOR_SIZE,
    lastSect: (s.offset + s.length) / BLKIF_SECTOR_SIZE - 1,
  }));
}

/** Indirect pages hold the segment descriptors; the backend only reads them (granted read-only). */
async function mapIndirect(info: BlkfrontInfo, e: ShadowEntry, segments: BlkifSegment[]): Promise<number[]> {
  const k = info.kernel;
  const nPages = indirectPagesFor(segments.length);
  const pages = k.memory.allocBuffer(nPages * XEN_PAGE_SIZE);
  e.indirectPages = pages;
  const views = pages.frames.map((f) => {
    const p = k.memory.page(f);
    return new DataView(p.buffer, p.byteOffset, p.byteLength);
  });
  encodeIndirectSegments(views, segments);
  const map = info.tag!.createMap(`${info.diskName} indirect`);
  e.indirectMap = map;
  const segs = await loadForRequest(info, map, pages, BUS_DMA_XEN_RO);
  if (segs.length !== nPages || segments.length > nPages * BLKIF_SEGMENTS_PER_INDIRECT_PAGE) {
    throw new Error(`${info.diskName}: indirect pages mis-sized`);
  }
  return segs.map((s) => s.gref);
}

/**
 * Undo an entry's mappings. Returns the first grant the backend still maps (non-persistent), or -1.
 * Frames still mapped stay out of reuse (busdma surrenders them to the deferred list).
 */
function releaseEntry(info: BlkfrontInfo, e: ShadowEntry): number {
  const k = info.kernel;
  let stillMapped = -1;
  for (const map of [e.dataMap, e.indirectMap]) {
    if (!map) continue;
    const segs = [...map.segments];
    if (map.unload() > 0 && stillMapped < 0) {
      stillMapped = (segs.find((s) => k.memory.isSurrendered(s.mfn)) ?? segs[0]).gref;
    }
    map.destroy();
  }
  e.dataMap = undefined;
  e.indirectMap = undefined;
  if (e.indirectPages) k.memory.freeBuffer(e.indirectPages);
  e.indirectPages = undefined;
  return stillMapped;
}

/** blkif_completion: copy read data out of bounce/persistent pages and end the grants. -1 on a bad backend. */
function blkifCompletion(info: BlkfrontInfo, e: ShadowEntry, status: number): number {
  const k = info.kernel;
  const item = e.chunk!;
  const read = (e.operation === BLKIF_OP_INDIRECT ? e.indirectOp : e.operation) === BLKIF_OP_READ;
  if (e.grants.length > 0) {
    const cursor = read && status === BLKIF_RSP_OKAY ? new VecCursor(item.vecs) : undefined;
    e.grants.forEach((g: PersistentGrant, i) => {
      const off = i * XEN_PAGE_SIZE;
      cursor?.copyIn(k.memory.page(g.mfn).subarray(0, Math.min(XEN_PAGE_SIZE, item.length - off)));
      info.persistent!.put(g);
    });
  }
  const bounce = e.bounce;
  const stillMapped = releaseEntry(info, e);
  if (info.options.grantRevoke === 'query-then-end') {
    // Before XSA-396 a grant still mapped only earned a rate-limited alert; the request completed and
    // its memory (bounce or the bio's own pages) went back for reuse with the grant still live.
    if (stillMapped >= 0 && info.alertLimit.allow(info.env.now())) {
      info.env.trace.log('blkfront', `backed has not unmapped grant: ${stillMapped}`);
    }
    if (bounce) {
      if (read && status === BLKIF_RSP_OKAY) new VecCursor(item.vecs).copyIn(k.memory.view(bounce));
      k.memory.freeBuffer(bounce);
    }
    return 1;
  }
  if (bounce) {
    if (read && status === BLKIF_RSP_OKAY && stillMapped < 0)
      new VecCursor(item.vecs).copyIn(k.memory.view(bounce));
    k.memory.freeBuffer(bounce);
  }
  if (stillMapped >= 0) {
    info.env.trace.log('blkfront', `backed has not unmapped grant: ${stillMapped}`);
    return -1;
  }
  return 1;
}

/** blkif_interrupt: consume responses, validating each against the shadow table. */
export function blkifInterrupt(info: BlkfrontInfo): void {
  const ring = info.ring;
  if (!ring || info.connected !== 'connected') return;
  const front = ring.front;
  const env = info.env;
  for (;;) {
    const rp = front.sring.rspProd;
    if (front.responseProdOverflow(rp)) {
      env.trace.log(
        'blkfront',
        `${info.diskName}: illegal number of responses ${(rp - front.rspCons) >>> 0}`,
      );
      enterError(info);
      return;
    }
    let i = front.rspCons;
    for (; i !== rp; i = (i + 1) >>> 0) {
      const rsp = decodeResponse(front.sring.view, front.responseSlot(i));
      if (rsp.id >= BigInt(ring.shadow.size)) {
        env.trace.log('blkfront', `${info.diskName}: response has incorrect id (${rsp.id})`);
        front.rspCons = i;
        enterError(info);
        return;
      }
      const id = Number(rsp.id);
      const e = ring.shadow.entries[id];
      if (e.status !== 'waiting') {
        env.trace.log('blkfront', `${info.diskName}: response references no pending request`);
        front.rspCons = i;
        enterError(info);
        return;
      }
      e.status = 'processing';
      const op = e.operation === BLKIF_OP_INDIRECT ? e.indirectOp : e.operation;
      if (rsp.operation !== op) {
        env.trace.log(
          'blkfront',
          `${info.diskName}: response has wrong operation (${rsp.operation} instead of ${op})`,
        );
        front.rspCons = i;
        e.status = 'waiting'; // still outstanding: the error path fails it with the rest
        enterError(info);
        return;
      }
      const chunk = e.chunk!;
      if (rsp.operation !== BLKIF_OP_DISCARD && blkifCompletion(info, e, rsp.status) < 0) {
        front.rspCons = (i + 1) >>> 0;
        ring.shadow.addId(id);
        completeChunk(chunk, EIO);
        enterError(info);
        return;
      }
      const started = e.startedAt;
      if (!ring.shadow.addId(id)) {
        env.trace.log(
          'blkfront',
          `${info.diskName}: response to ${opName(rsp.operation)} (id ${id}) couldn't be recycled!`,
        );
        continue;
      }
      let error = rsp.status === BLKIF_RSP_OKAY ? 0 : EIO;
      if (rsp.operation === BLKIF_OP_DISCARD && rsp.status === BLKIF_RSP_EOPNOTSUPP) {
        env.trace.log('blkfront', `blkfront: ${info.diskName}: ${opName(rsp.operation)} op failed`);
        error = -ERRNO.EOPNOTSUPP;
        info.featureDiscard = false;
        info.featureSecDiscard = false;
      } else if (rsp.operation === BLKIF_OP_FLUSH_DISKCACHE || rsp.operation === BLKIF_OP_WRITE_BARRIER) {
        let notsupp = rsp.status === BLKIF_RSP_EOPNOTSUPP;
        if (notsupp)
          env.trace.log('blkfront', `blkfront: ${info.diskName}: ${opName(rsp.operation)} op failed`);
        if (rsp.status === BLKIF_RSP_ERROR && e.nrSegments === 0) {
          env.trace.log('blkfront', `blkfront: ${info.diskName}: empty ${opName(rsp.operation)} op failed`);
          notsupp = true;
        }
        if (error !== 0) {
          // Not supported is not an error for the caller; the feature is switched off.
          if (notsupp) error = 0;
          info.featureFlush = false;
          info.featureFua = false;
        }
      }
      info.completed++;
      if (traceWanted(env.trace, 'blkfront', 'request-end')) {
        env.trace.emit('blkfront', 'request-end', {
          disk: info.diskName,
          id,
          op: opName(rsp.operation),
          status: rsp.status,
          sector: chunk.sector,
          length: chunk.length,
          latency: env.now() - started,
        });
      }
      completeChunk(chunk, error);
    }
    front.rspCons = i;
    if (i !== front.reqProdPvt) {
      if (front.finalCheckForResponses() > 0) continue;
    } else {
      front.sring.rspEvent = (i + 1) >>> 0;
    }
    break;
  }
  emitRing(info, ring);
  ring.wake.wakeAll();
}

/** goto err: the device is unusable; the ring is abandoned (no further interrupts). */
export function enterError(info: BlkfrontInfo): void {
  info.connected = 'error';
  const ring = info.ring;
  info.env.trace.log('blkfront', `${info.diskName} disabled for further use`);
  info.env.trace.emit('blkfront', 'device-error', { disk: info.diskName });
  if (!ring) return;
  info.kernel.events.mask(ring.port);
  failOutstanding(info, ring);
}

/**
 * The requests in the shadow at a resume, taken out with their grants ended (blkfront_resume after
 * d8b31d834629, blkif_recover before it): each chunk goes back to the queue to be issued again.
 */
export function saveUncompleted(info: BlkfrontInfo): ShadowChunk[] {
  const ring = info.ring;
  if (!ring) return [];
  const saved: ShadowChunk[] = [];
  for (const id of ring.shadow.outstanding()) {
    const e = ring.shadow.entries[id];
    if (e.status !== 'waiting') continue;
    saved.push(e.chunk!);
    releaseShadowEntry(info, ring, id);
  }
  return saved;
}

/** blkif_free_ring for a suspend: end the grants of what is still in the shadow; complete nothing. */
export function releaseOutstanding(info: BlkfrontInfo, ring: BlkfrontRingInfo): void {
  for (const id of ring.shadow.outstanding()) {
    const e = ring.shadow.entries[id];
    if (e.status !== 'waiting') {
      for (const m of [e.dataMap, e.indirectMap]) if (m?.state === 'deferred') m.unload();
      continue;
    }
    releaseShadowEntry(info, ring, id);
  }
}

function releaseShadowEntry(info: BlkfrontInfo, ring: BlkfrontRingInfo, id: number): void {
  const e = ring.shadow.entries[id];
  const bounce = e.bounce;
  for (const g of e.grants) info.persistent?.put(g);
  releaseEntry(info, e);
  if (bounce) info.kernel.memory.freeBuffer(bounce);
  e.status = 'processing';
  ring.shadow.addId(id);
}

/** Fail everything on and for the ring with EIO, ending (or deferring) every grant it used. */
export function failOutstanding(info: BlkfrontInfo, ring: BlkfrontRingInfo): void {
  for (const id of ring.shadow.outstanding()) {
    const e = ring.shadow.entries[id];
    if (e.status === 'free') continue;
    const chunk = e.chunk!;
    if (e.status !== 'waiting') {
      // Being issued: cancel a deferred grant wait; the dispatcher then sees the state and fails it.
      for (const m of [e.dataMap, e.indirectMap]) if (m?.state === 'deferred') m.unload();
      continue;
    }
    const bounce = e.bounce;
    for (const g of e.grants) info.persistent?.put(g);
    releaseEntry(info, e);
    if (bounce) info.kernel.memory.freeBuffer(bounce);
    e.status = 'processing';
    ring.shadow.addId(id);
    completeChunk(chunk, EIO);
  }
  failQueued(ring, EIO);
  ring.wake.wakeAll();
}
