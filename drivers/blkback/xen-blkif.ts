/**
 * One backend interface (Linux struct xen_blkif): the rings of one vbd, the vbd itself, the reference
 * count, and the version-dependent disconnect and free (xenbus.c: xen_blkif_disconnect, xen_blkif_free,
 * xen_blkif_put and its deferred free work).
 */
import type { WaitFor, WaitQueue } from '../../emulator/runtime/engine.js';
import { BLKIF_ABI_X86_32, type BlkifAbi } from '../blkif.js';
import type { XenbusDevice } from '../xenbus/device.js';
import { E } from './common.js';
import type { BlkbackContext } from './context.js';
import type { BlkifRing } from './ring-thread.js';
import type { XenVbd } from './vbd.js';

export class XenBlkif {
  /** Starts at 1 (the reference xen_blkif_alloc sets, dropped by remove). */
  refcnt = 1;
  rings: BlkifRing[] = [];
  nrRingPages = 0;
  /** ABI of the negotiated protocol; x86 Linux assumes x86_32 when the frontend wrote none. */
  abi: BlkifAbi = BLKIF_ABI_X86_32;
  vbd: XenVbd | undefined;
  /**
   * Fields of struct xen_vbd, which Linux embeds in the blkif: they exist (zeroed by kzalloc) before
   * xen_vbd_create runs, so connect_ring can set them first. The parameter as cached for this device
   * (feature_gnt_persistent_parm), and the negotiation result the data path uses.
   */
  featureGntPersistentParm = false;
  featureGntPersistent = false;
  /** Set once freed; nothing may touch the blkif afterwards. */
  freed = false;
  /** Rings ever connected on this blkif that still have requests in flight (after a disconnect). */
  readonly lingering = new Set<BlkifRing>();
  /** blkif->waiting_to_free (2012/2013): woken when refcnt reaches 0. */
  readonly waitingToFree: WaitQueue;
  private freeing = false;
  /** Set while a disconnect sleeps for the references (2012/2013): what the vbd's holder waits on. */
  drainWait: WaitFor | undefined;

  constructor(
    readonly ctx: BlkbackContext,
    /** The frontend domain. */
    readonly domid: number,
    readonly dev: XenbusDevice,
  ) {
    this.waitingToFree = ctx.env.waitQueue(`${dev.busId} waiting_to_free`);
  }

  get label(): string {
    return this.dev.busId;
  }

  get(): void {
    this.refcnt++;
  }

  /** xen_blkif_put: 2012/2013 wake the disconnect waiter; from 2014 the last put frees from a worker. */
  put(): void {
    this.refcnt--;
    if (this.refcnt < 0) throw new Error(`${this.label}: blkif refcount went negative`);
    if (this.refcnt !== 0) return;
    if (this.ctx.behaviour.disconnect === 'wait') {
      this.waitingToFree.wakeAll();
      return;
    }
    if (this.freeing) return;
    this.freeing = true;
    // schedule_work(&blkif->free_work): the free runs later in a worker, not in the caller.
    this.ctx.env.spawn(
      'kworker/blkif-free',
      async () => {
        await this.free();
      },
      { component: 'blkback' },
    );
  }

  /** Requests in flight on every ring (for the wait-for text). */
  inflight(): number {
    let n = 0;
    for (const r of this.rings) n += r.inflight;
    for (const r of this.lingering) n += r.inflight;
    return n;
  }

  /**
   * xen_blkif_disconnect. Stops each ring's thread (C10: the pointer is cleared whatever happens), then:
   * 'wait' drops our reference and sleeps until every request dropped its own (C8, inside the caller,
   * which is xenwatch); 'defer' tears the rings down at once; 'ebusy' leaves a ring with requests in
   * flight mapped and returns -EBUSY. Idempotent.
   */
  async disconnect(): Promise<number> {
    const mode = this.ctx.behaviour.disconnect;
    let busy = false;
    for (const ring of this.rings) await ring.stopThread();
    if (mode === 'wait') {
      this.refcnt--;
      if (this.refcnt > 0) {
        const disk = this.vbd?.bdev;
        // Holders: the disk completing I/O, and any xenblkd nobody stopped (a C6 leak keeps its reference).
        const leaked = () => this.rings.flatMap((r) => [...r.threads].filter((t) => !t.shouldStop));
        const waitFor = {
          what: `blkif ${this.label} references to drop (${this.inflight()} request(s) in flight, ${leaked().length} xenblkd not stopped)`,
          holders: () => [
            ...(this.inflight() > 0 ? (disk?.driver.ioHolders?.(disk) ?? []) : []),
            ...leaked().map((t) => t.task),
          ],
        };
        this.drainWait = waitFor;
        try {
          await this.ctx.env.wait(this.waitingToFree, () => this.refcnt === 0, waitFor);
        } finally {
          this.drainWait = undefined;
        }
      }
      this.refcnt++;
    }
    for (const ring of this.rings) {
      if (!ring.active) continue;
      if (mode === 'ebusy' && ring.inflight > 0) {
        // Left mapped and bound: completions keep answering on it until the last one.
        busy = true;
        continue;
      }
      if (ring.inflight > 0) this.lingering.add(ring);
      await ring.teardown();
    }
    // The rings stay allocated while one is busy (Linux frees blkif->rings only on success).
    if (busy) return -E.EBUSY;
    this.nrRingPages = 0;
    this.rings = [];
    return 0;
  }

  /** xen_blkif_free: disconnect (warning if still busy), then the vbd: the block device is closed here. */
  async free(): Promise<void> {
    if (this.freed) return;
    const rc = await this.disconnect();
    if (rc !== 0) this.ctx.log(`${this.label}: WARNING: xen_blkif_free with rings still busy (${rc})`);
    for (const ring of this.lingering) ring.releaseCaches();
    this.lingering.clear();
    if (this.vbd) await this.vbd.free();
    this.freed = true;
    this.ctx.env.trace.emit('blkback', 'blkif-free', { dev: this.label });
  }
}
