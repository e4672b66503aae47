/**
 * One blkif ring (Linux struct xen_blkif_ring) and its I/O thread `xenblkd` (blkback.c:
 * xen_blkif_schedule, do_block_io_op, __do_block_io_op, make_response; xenbus.c: xen_blkif_map and the
 * ring half of xen_blkif_disconnect).
 *
 * The thread is woken by the event channel, copies each request out of the ring exactly once, hands
 * the private copy to the dispatcher (blkback.ts), and ends each pass with RING_FINAL_CHECK_FOR_REQUESTS.
 * A producer index that overflows the ring halts the ring for good ("Frontend provided bogus ring
 * requests", -EACCES). Event storms are bounded as Linux does since XSA-332: the channel is bound
 * "late EOI" (masked by the handler, unmasked only after the ring was drained) and a wake that found no
 * request is spurious; repeated spurious wakes delay the EOI by 1, 2, 4 ... jiffies up to 1 s.
 */

import { kernelOops } from '../../emulator/kernel/oops.js';
import { type Task, traceWanted, type WaitQueue } from '../../emulator/runtime/engine.js';
import type { ReadOnlyPage } from '../../hypervisor/readonly-page.js';
import { decodeRequest, encodeResponse } from '../blkif.js';
import { BackRing, SharedRing } from '../ring.js';
import { dispatchRequest, type PendingReq } from './blkback.js';
import {
  E,
  hex8,
  JIFFY_MS,
  LRU_INTERVAL_MS,
  MAX_EOI_DELAY_MS,
  RateLimitedLog,
  XEN_BLKIF_REQS_PER_PAGE,
} from './common.js';
import { PersistentGrants } from './persistent-grants.js';
import type { XenBlkif } from './xen-blkif.js';

export interface RingStats {
  oo_req: number;
  rd_req: number;
  wr_req: number;
  f_req: number;
  ds_req: number;
  rd_sect: number;
  wr_sect: number;
  /** Wakes that found no request (late-EOI spurious). */
  spurious: number;
}

/** The task_struct of one xenblkd: kthread_should_stop() is per thread, and it is freed once stopped. */
export interface KThread {
  readonly task: Task;
  readonly name: string;
  shouldStop: boolean;
  exited: boolean;
  /** The thread function ran (a thread stopped before it was first scheduled never runs it). */
  ranFn: boolean;
  /** put_task_struct after kthread_stop (or exit): touching it afterwards is a use-after-free. */
  freed: boolean;
}

export class BlkifRing {
  sring: SharedRing | undefined;
  back: BackRing | undefined;
  /** Grant handles of the mapped ring pages. */
  private ringHandles: number[] = [];
  /** The bound local port (Linux: ring->irq); 0 when unbound. */
  port = 0;
  /** ring->xenblkd. */
  thread: KThread | undefined;
  /** Every xenblkd started on this ring that has not exited (more than one only after a C6 leak). */
  readonly threads = new Set<KThread>();
  waitingReqs = false;
  readonly wq: WaitQueue;
  readonly pendingFreeWq: WaitQueue;
  readonly shutdownWq: WaitQueue;
  private readonly exitWq: WaitQueue;
  readonly drainWq: WaitQueue;
  /** Free pending_req entries (XEN_BLKIF_REQS_PER_PAGE per ring page). */
  freeReqs = 0;
  poolSize = 0;
  /** Requests dispatched and not yet answered (ring->inflight). */
  inflight = 0;
  /** Cleared once the ring was torn down. */
  active = true;
  /** Set after a producer overflow: nothing more is read from this ring. */
  halted = false;
  /** Requests consumed from the ring and responses written (for the hostile-frontend properties). */
  consumed = 0;
  answered = 0;
  readonly persistent: PersistentGrants;
  readonly stats: RingStats = {
    oo_req: 0,
    rd_req: 0,
    wr_req: 0,
    f_req: 0,
    ds_req: 0,
    rd_sect: 0,
    wr_sect: 0,
    spurious: 0,
  };
  readonly warn: RateLimitedLog;
  private spuriousCount = 0;
  private eoiTimer = false;
  private nextLru = 0;
  private readonly copy: Uint8Array;
  private readonly copyView: DataView;

  constructor(
    readonly blkif: XenBlkif,
    readonly index: number,
  ) {
    const env = blkif.ctx.env;
    const name = `${blkif.label} ring ${index}`;
    this.wq = env.waitQueue(`${name} wq`);
    this.pendingFreeWq = env.waitQueue(`${name} pending_free_wq`);
    this.shutdownWq = env.waitQueue(`${name} shutdown_wq`);
    this.exitWq = env.waitQueue(`${name} xenblkd exit`);
    this.drainWq = env.waitQueue(`${name} drain`);
    this.persistent = new PersistentGrants(blkif.ctx.maxPersistentGrants);
    this.warn = new RateLimitedLog(env, 'blkback', `xen-blkback ${blkif.label}`);
    this.copy = new Uint8Array(blkif.abi.entrySize);
    this.copyView = new DataView(this.copy.buffer);
  }

  get label(): string {
    return `${this.blkif.label}/${this.index}`;
  }

  private get ctx() {
    return this.blkif.ctx;
  }

  /**
   * xen_blkif_map: map the ring pages (read-write), attach at the current rsp_prod after checking
   * req_prod - rsp_prod <= size, and bind the interdomain channel. Returns 0 or -errno (with a log line).
   */
  map(grefs: readonly number[], evtchn: number): number {
    if (this.port !== 0) return 0;
    const { hc, events } = this.ctx;
    const pages: Uint8Array[] = [];
    for (const gref of grefs) {
      const r = hc.mapGrant(this.blkif.domid, gref);
      if (r.status !== 0 || !(r.page instanceof Uint8Array)) {
        this.ctx.log(
          `${this.blkif.dev.nodename}: ${r.status} mapping in shared page ${gref} from domain ${this.blkif.domid}`,
        );
        this.unmapRing();
        return -E.ENOENT;
      }
      this.ringHandles.push(r.handle);
      pages.push(r.page);
    }
    let sring: SharedRing;
    try {
      sring = SharedRing.fromPages(pages, this.blkif.abi.entrySize);
    } catch (e) {
      // Simplification: a SharedArrayBuffer cannot alias, so scattered ring frames cannot be vmapped.
      this.ctx.log(`${this.blkif.dev.nodename}: ${(e as Error).message}`);
      this.unmapRing();
      return -E.ENOMEM;
    }
    const rspProd = sring.rspProd;
    const reqProd = sring.reqProd;
    if ((reqProd - rspProd) >>> 0 > sring.size) {
      this.unmapRing();
      return -E.EIO;
    }
    const port = events.bindInterdomain(this.blkif.domid, evtchn, (p) => this.interrupt(p));
    if (port < 0) {
      this.unmapRing();
      return port;
    }
    this.sring = sring;
    this.back = BackRing.attach(sring, rspProd);
    this.port = port;
    this.poolSize = XEN_BLKIF_REQS_PER_PAGE * grefs.length;
    this.freeReqs = this.poolSize;
    return 0;
  }

  private unmapRing(): void {
    for (const h of this.ringHandles) this.ctx.hc.unmapGrant(h);
    this.ringHandles = [];
    this.sring = undefined;
    this.back = undefined;
  }

  /** xen_blkif_be_int with a late-EOI binding: the port stays masked until the thread's EOI. */
  private interrupt(port: number): void {
    this.ctx.events.mask(port);
    this.waitingReqs = true;
    this.wq.wakeAll();
  }

  /** xen_irq_lateeoi: unmask now, or after a growing delay when the wake found nothing to do. */
  private lateEoi(spurious: boolean): void {
    if (!spurious) {
      this.spuriousCount = 0;
      if (this.port !== 0) this.ctx.events.unmask(this.port);
      return;
    }
    this.stats.spurious++;
    this.spuriousCount++;
    if (this.spuriousCount <= 1) {
      if (this.port !== 0) this.ctx.events.unmask(this.port);
      return;
    }
    const delay = Math.min(JIFFY_MS * 2 ** Math.min(this.spuriousCount - 2, 30), MAX_EOI_DELAY_MS);
    if (this.eoiTimer) return;
    this.eoiTimer = true;
    const port = this.port;
    this.ctx.env.spawn(
      'blkback-lateeoi',
      async () => {
        await this.ctx.env.sleep(delay, {
          what: `late EOI of a spurious event on ${this.label}`,
          background: true,
        });
        this.eoiTimer = false;
        if (this.port === port && port !== 0) this.ctx.events.unmask(port);
      },
      { component: 'blkback' },
    );
  }

  /**
   * Start xenblkd (kthread_run). The pointer is simply overwritten: a thread already running here is
   * leaked (C6 before ef9e715c419c), still serving the ring and holding what it holds.
   */
  start(name: string): void {
    const kt = { name, shouldStop: false, exited: false, ranFn: false, freed: false } as KThread;
    (kt as { task: Task }).task = this.ctx.env.spawn(name, () => this.kthread(kt), {
      daemon: true,
      component: 'blkback',
    });
    this.threads.add(kt);
    this.thread = kt;
  }

  /** kthread(): a thread asked to stop before it first ran returns -EINTR without its function. */
  private async kthread(kt: KThread): Promise<void> {
    try {
      if (kt.shouldStop) return;
      kt.ranFn = true;
      await this.schedule(kt);
    } finally {
      kt.exited = true;
      this.threads.delete(kt);
      this.exitWq.wakeAll();
    }
  }

  /**
   * kthread_stop(ring->xenblkd). Since 1c728719a4da the pointer is cleared here whatever happened; before
   * (XSA-350) only the thread function cleared it, so a thread stopped before it ran left it dangling
   * and the next stop touched a freed task_struct.
   */
  async stopThread(): Promise<void> {
    const kt = this.thread;
    if (kt === undefined) return;
    if (kt.freed) {
      this.thread = undefined;
      kernelOops(
        this.ctx.env,
        'blkback',
        `KASAN: use-after-free in kthread_stop`,
        `xen_blkif_disconnect: ${this.label} ring->xenblkd ${kt.name} was freed when it was stopped before it ran`,
      );
      return;
    }
    kt.shouldStop = true;
    this.wq.wakeAll();
    this.pendingFreeWq.wakeAll();
    this.shutdownWq.wakeAll();
    this.drainWq.wakeAll();
    await this.ctx.env.wait(this.exitWq, () => kt.exited, {
      what: `${kt.name} to exit`,
      holders: () => [kt.task],
    });
    kt.freed = true;
    if (this.ctx.kthreadStop === '1c728719a4da') this.thread = undefined;
  }

  /** xen_blkif_schedule. */
  private async schedule(kt: KThread): Promise<void> {
    const env = this.ctx.env;
    // Before the 2017 fix the kthread held a blkif reference of its own.
    const holdsRef = this.ctx.behaviour.disconnect !== 'ebusy';
    if (holdsRef) this.blkif.get();
    let spurious = true;
    try {
      while (!kt.shouldStop) {
        await env.wait(this.wq, () => this.waitingReqs || kt.shouldStop, {
          what: `requests on ring ${this.label}`,
        });
        if (kt.shouldStop) break;
        await env.wait(this.pendingFreeWq, () => this.freeReqs > 0 || kt.shouldStop, {
          what: `a free pending_req on ring ${this.label}`,
          holders: () => this.ioHolders(),
        });
        if (kt.shouldStop) break;
        const doEoi = this.waitingReqs;
        this.waitingReqs = false;
        this.traceRing();
        const flags: { spurious: boolean } = { spurious };
        const consumedBefore = this.consumed;
        const ret = await this.doBlockIoOp(kt, flags);
        spurious = flags.spurious;
        // After a pass that took requests: req_cons caught up unless the ring halted or ran out of slots.
        if (this.consumed !== consumedBefore) this.traceRing();
        if (ret > 0) this.waitingReqs = true;
        if (ret === -E.EACCES) {
          await env.wait(this.shutdownWq, () => kt.shouldStop, {
            what: `shutdown of halted ring ${this.label}`,
          });
          break;
        }
        if (doEoi && !this.waitingReqs) {
          this.lateEoi(spurious);
          spurious = true;
        }
        if (env.now() >= this.nextLru) {
          this.purgePersistent();
          this.nextLru = env.now() + LRU_INTERVAL_MS;
        }
      }
    } finally {
      if (holdsRef) this.blkif.put();
      // The thread function's last act: ring->xenblkd = NULL (only if it is still this thread).
      if (this.thread === kt) this.thread = undefined;
    }
  }

  /** do_block_io_op: passes until RING_FINAL_CHECK_FOR_REQUESTS finds nothing more. */
  private async doBlockIoOp(kt: KThread, flags: { spurious: boolean }): Promise<number> {
    for (;;) {
      const more = await this.intake(kt, flags);
      if (more !== 0) return more;
      if (this.back === undefined || this.back.finalCheckForRequests() === 0) return 0;
    }
  }

  /** __do_block_io_op: returns more_to_do (1), 0, or -EACCES after a producer overflow. */
  private async intake(kt: KThread, flags: { spurious: boolean }): Promise<number> {
    const back = this.back;
    if (back === undefined || this.halted) return 0;
    const rp = back.sring.reqProd;
    if (back.requestProdOverflow(rp)) {
      const rc0 = back.reqCons;
      this.halted = true;
      this.ctx.log(
        `Frontend provided bogus ring requests (${rp | 0} - ${rc0 | 0} = ${(rp - rc0) | 0}). Halting ring processing on dev=${hex8(this.blkif.vbd?.pdevice ?? 0)}`,
      );
      this.ctx.env.trace.emit('blkback', 'ring-halted', { ring: this.label, reqProd: rp, reqCons: rc0 });
      return -E.EACCES;
    }
    let rc = back.reqCons;
    let more = 0;
    while (rc !== rp) {
      if (back.requestConsOverflow(rc)) break;
      if (kt.shouldStop) {
        more = 1;
        break;
      }
      if (this.freeReqs === 0) {
        this.stats.oo_req++;
        more = 1;
        break;
      }
      this.freeReqs--;
      back.copyRequest(rc, this.copy);
      rc = (rc + 1) >>> 0;
      back.reqCons = rc; // before any response is made
      this.consumed++;
      flags.spurious = false;
      const req = decodeRequest(this.copyView, 0, this.blkif.abi);
      const failed = await dispatchRequest(this, req);
      if (failed) break;
      await this.ctx.env.yield(); // cond_resched
    }
    return more;
  }

  /** free_req: back to the pool; a thread waiting for one is woken. */
  freeReq(): void {
    this.freeReqs++;
    if (this.freeReqs > this.poolSize) throw new Error(`${this.label}: pending_req pool overflow`);
    if (this.freeReqs === 1) this.pendingFreeWq.wakeAll();
  }

  /** make_response: id, operation and status written in place, then push and notify per ring.h. */
  makeResponse(id: bigint, operation: number, status: number): boolean {
    const back = this.back;
    if (back === undefined || !this.active) {
      if (this.ctx.behaviour.disconnect === 'defer') {
        // 2014-2016 (C9): disconnect unmapped the ring under requests in flight; the completion writes
        // the response into the unmapped ring page and notifies an unbound irq.
        kernelOops(
          this.ctx.env,
          'blkback',
          `unable to handle kernel paging request in make_response`,
          `${this.label}: response to id ${id} written to a ring unmapped by xen_blkif_disconnect with ${this.inflight} request(s) in flight`,
        );
        return false;
      }
      this.warn.log(`xen-blkback: ${this.label}: response to id ${id} dropped, ring already disconnected`);
      return false;
    }
    encodeResponse(back.sring.view, back.responseSlot(back.rspProdPvt), id, operation, status);
    back.rspProdPvt = (back.rspProdPvt + 1) >>> 0;
    this.answered++;
    if (back.pushResponsesAndCheckNotify() && this.port !== 0) this.ctx.events.notify(this.port);
    this.traceRing();
    return true;
  }

  /** Who completes this ring's I/O (the disk's I/O thread). */
  ioHolders() {
    const disk = this.blkif.vbd?.bdev;
    return (disk?.driver.ioHolders?.(disk) ?? []).slice();
  }

  /**
   * Ring snapshot for the teaching views (xen-ringwatch fields): taken when xenblkd wakes, after each
   * pass over the requests, after each pushed response and before the ring is unmapped. The responses
   * the frontend took show only in a later snapshot (it re-arms rsp_event without telling the backend).
   */
  traceRing(): void {
    const back = this.back;
    const trace = this.ctx.env.trace;
    // On the per-response path: nothing is built when the trace keeps no ring events.
    if (back === undefined || !traceWanted(trace, 'blkback', 'ring')) return;
    const s = back.sring;
    trace.emit('blkback', 'ring', {
      ring: this.label,
      req_prod: s.reqProd,
      req_cons: back.reqCons,
      rsp_prod: s.rspProd,
      rsp_prod_pvt: back.rspProdPvt,
      req_event: s.reqEvent,
      rsp_event: s.rspEvent,
      inflight: this.inflight,
    });
  }

  private purgePersistent(): void {
    for (const g of this.persistent.purge(this.ctx.env.now())) this.ctx.hc.unmapGrant(g.handle);
  }

  /** Drop the persistent grants (xen_blkbk_free_caches). */
  releaseCaches(): void {
    for (const g of this.persistent.drain()) this.ctx.hc.unmapGrant(g.handle);
  }

  /** The ring half of xen_blkif_disconnect: unbind, unmap, drop persistent grants. */
  async teardown(): Promise<void> {
    // The last look at the ring: whatever the frontend acknowledged since the last response shows here.
    this.traceRing();
    if (this.port !== 0) {
      this.ctx.events.close(this.port);
      this.port = 0;
    }
    this.unmapRing();
    if (this.inflight === 0) this.releaseCaches();
    this.active = false;
  }

  /** A mapped page's bytes, whatever its mapping kind. */
  static bytesOf(page: Uint8Array | ReadOnlyPage, offset: number, length: number): Uint8Array {
    return page instanceof Uint8Array ? page.slice(offset, offset + length) : page.slice(offset, length);
  }
}

export type { PendingReq };
