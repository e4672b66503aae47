/**
 * The shared ring of one blkfront device: setup_blkring (one contiguous run of 2^order pages, each
 * granted to the backend, XEN_FRONT_RING_INIT, an unbound event channel) and blkif_free (fail what is
 * outstanding, end access on the ring pages — deferred with the page while the backend still maps
 * them — and close the event channel). Before XSA-396 ('query-then-end', C11) the ring pages were
 * freed for reuse even when their revocation had to be deferred.
 */
import { blkifRingSize } from '../blkif.js';
import { FrontRing, SharedRing } from '../ring.js';
import type { BlkfrontInfo, BlkfrontRingInfo } from './info.js';
import { blkifInterrupt, failOutstanding, releaseOutstanding, startDispatcher } from './request.js';
import { ShadowTable } from './shadow.js';

/** setup_blkring. Throws an Error carrying an errno-style message on failure (caller reports fatal). */
export function setupBlkring(info: BlkfrontInfo): BlkfrontRingInfo {
  const k = info.kernel;
  const domid = info.dev.otherendId!;
  const pages = k.memory.allocRun(info.nrRingPages);
  const views = pages.map((f) => k.memory.page(f));
  const sring = SharedRing.fromPages(views, info.abi!.entrySize);
  const front = FrontRing.init(sring);
  const size = blkifRingSize(info.abi!, info.ringPageOrder);
  if (front.size !== size) throw new Error(`ring of ${front.size} entries, expected ${size}`);
  const ringRefs: number[] = [];
  for (const mfn of pages) {
    const ref = k.gnttab.grantForeignAccess(domid, mfn, false);
    if (ref < 0) {
      for (const r of ringRefs) k.gnttab.endForeignAccess(r);
      k.memory.freeRun(pages);
      throw new Error(`granting ring page: ${ref}`);
    }
    ringRefs.push(ref);
  }
  const ring: BlkfrontRingInfo = {
    pages,
    ringRefs,
    front,
    port: 0,
    shadow: new ShadowTable(size),
    queue: [],
    wake: info.env.waitQueue(`${info.diskName} ring`),
    dispatcherRunning: false,
  };
  const port = k.events.allocUnbound(domid, () => blkifInterrupt(info));
  if (port <= 0) {
    for (const r of ringRefs) k.gnttab.endForeignAccess(r);
    k.memory.freeRun(pages);
    throw new Error(`allocating event channel: ${port}`);
  }
  ring.port = port;
  info.ring = ring;
  startDispatcher(info, ring);
  return ring;
}

/**
 * blkif_free: tear the ring down; outstanding and queued I/O fails with EIO. With `suspend` (a resume
 * after suspend) nothing fails: queued bios wait in `info.requeue` and the shadow's requests are left
 * to whoever saved them (their grants end here, as in blkif_free_ring).
 */
export function blkifFree(info: BlkfrontInfo, suspend = false): void {
  const ring = info.ring;
  const k = info.kernel;
  if (suspend) info.connected = 'suspended';
  else if (info.connected === 'connected') info.connected = 'disconnected';
  if (ring) {
    if (suspend) {
      releaseOutstanding(info, ring);
      info.requeue.push(...ring.queue.splice(0));
    } else failOutstanding(info, ring);
    info.ring = undefined;
    ring.wake.wakeAll();
    const rc = k.events.close(ring.port);
    if (rc < 0) info.env.trace.log('blkfront', `${info.diskName}: closing event channel ${ring.port}: ${rc}`);
    ring.pages.forEach((mfn, i) => {
      const ref = ring.ringRefs[i];
      if (info.options.grantRevoke === 'query-then-end') {
        // Before XSA-396: gnttab_end_foreign_access(ref, 0, 0) defers the ref alone when the backend
        // still maps the ring, and free_pages() hands the page back for reuse regardless.
        k.gnttab.endForeignAccess(ref);
        k.memory.freeRun([mfn]);
        return;
      }
      if (k.gnttab.tryEndForeignAccess(ref)) {
        k.memory.freeRun([mfn]);
        return;
      }
      // The backend still maps the ring: keep the page until it lets go (XSA-396 deferral).
      k.memory.surrender(mfn);
      k.gnttab.endForeignAccess(ref, mfn);
    });
  }
  info.persistent?.releaseAll([], info.options.grantRevoke);
  info.persistent = undefined;
  // Maps of requests still being issued are destroyed by their dispatcher; the tag is simply dropped.
  info.tag = undefined;
}
