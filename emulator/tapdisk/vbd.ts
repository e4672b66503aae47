/**
 * A tapdisk VBD (`td_vbd_t`, tapdisk-vbd.c): the minor it serves, its state flags, its image, and the
 * blktap ring it opened and mapped. Ring service copies each request out of the shared page once,
 * validates it as tapdisk does (operation, segment count and sector ranges, the request inside the
 * image), reads or writes the request's pages (the mapped data area) and answers on the ring, then
 * kicks the kernel (BLKTAP2_IOCTL_KICK_FE).
 */
import {
  BLKTAP_RING_ENTRY_SIZE,
  BLKTAP_RING_MESSAGE_OFFSET,
  BLKTAP_RING_SIZE,
  BLKTAP_RSP_ERROR,
  BLKTAP_RSP_OKAY,
  BLKTAP_SEGMENT_MAX,
  BlktapIoctl,
  BlktapRingMessage,
  readBlktapRequest,
  writeBlktapResponse,
} from '../../drivers/blktap/abi.js';
import type { BlktapRingMapping } from '../../drivers/blktap/ring.js';
import { BackRing, SharedRing } from '../../drivers/ring.js';
import { isKernelError, KernelError } from '../kernel/errno.js';
import type { Vma } from '../kernel/file.js';
import type { Process } from '../kernel/process.js';
import type { Env } from '../runtime/engine.js';
import { useAfterFree } from './crash.js';
import type { ImageDriver } from './drivers/image-driver.js';
import type { ImageFaults } from './image-faults.js';
import { TdVbdState } from './message.js';

const SECTOR = 512;

/** One request taken off the ring, waiting for its modelled completion time. */
export interface VbdIo {
  readonly id: bigint;
  readonly operation: number;
  readonly sector: number;
  readonly buffers: Uint8Array[];
  readonly due: number;
}

export class Vbd {
  /** The blktap minor; -1 once detached. */
  private minorNumber: number;
  /** Set by free(): every later access is a use-after-free (the model poisons the object, as KASAN). */
  private freedBy: string | undefined;
  state = 0;
  /** `type:path` of the open image (vbd->name); undefined when closed. */
  name: string | undefined;
  image: ImageDriver | undefined;
  ringFd: number | undefined;
  vma: Vma | undefined;
  private back: BackRing | undefined;
  private mapping: BlktapRingMapping | undefined;
  /** Requests taken off the ring and not yet answered (the pending list). */
  readonly inflight: VbdIo[] = [];
  /** BLKTAP2_RING_MESSAGE_CLOSE arrived: shut down once idle. */
  shutdownRequested = false;

  constructor(
    private readonly proc: Process,
    private readonly env: Env,
    minor: number,
    private readonly faults?: ImageFaults,
  ) {
    this.minorNumber = minor;
  }

  /** td_vbd_t memory is gone: throws the crash the access would cause. */
  private touch(access: string): void {
    if (this.freedBy !== undefined) {
      throw useAfterFree(`td_vbd_t (minor ${this.minorNumber})`, this.freedBy, access);
    }
  }

  get minor(): number {
    this.touch('reading vbd->minor (tapdisk_server_get_vbd)');
    return this.minorNumber;
  }

  set minor(m: number) {
    this.touch('writing vbd->minor');
    this.minorNumber = m;
  }

  get freed(): boolean {
    return this.freedBy !== undefined;
  }

  /**
   * free(vbd) without unlinking it or closing its ring (the pre-e403288 OPEN failure path): the images
   * and name go, the memory is released, and whoever still holds the pointer touches freed memory.
   */
  free(by: string): void {
    this.touch('free(vbd)');
    this.closeImage();
    this.name = undefined;
    this.freedBy = by;
    this.trace('freed', { by });
  }

  private trace(kind: string, fields: Record<string, unknown> = {}): void {
    this.env.trace.emit('tapdisk', kind, { pid: this.proc.pid, minor: this.minorNumber, ...fields });
  }

  test(flag: keyof typeof TdVbdState): boolean {
    return (this.state & TdVbdState[flag]) !== 0;
  }

  setFlag(flag: keyof typeof TdVbdState, on: boolean): void {
    if (on) this.state |= TdVbdState[flag];
    else this.state &= ~TdVbdState[flag];
  }

  /** tapdisk_vbd_attach(): open and mmap the ring device. */
  async attach(devname: string): Promise<void> {
    const fd = await this.proc.open(devname, { read: true, write: true });
    try {
      const vma = await this.proc.mmap(fd, (1 + BLKTAP_RING_SIZE * BLKTAP_SEGMENT_MAX) * 4096);
      const page = vma.memory;
      if (page === undefined) throw new KernelError('EFAULT', `mmap ${devname}: no ring page`);
      this.back = BackRing.init(new SharedRing(page.buffer, page.byteOffset, 1, BLKTAP_RING_ENTRY_SIZE));
      this.mapping = vma.private as BlktapRingMapping;
      this.vma = vma;
      this.ringFd = fd;
    } catch (e) {
      await this.proc.close(fd);
      throw e;
    }
    this.trace('attach', { ring: devname });
  }

  /** Drops the ring from the event loop and forgets in-flight requests (the kernel fails them). */
  private forgetRing(): { fd: number | undefined; vma: Vma | undefined } {
    const r = { fd: this.ringFd, vma: this.vma };
    this.ringFd = undefined;
    this.vma = undefined;
    this.back = undefined;
    this.mapping = undefined;
    this.inflight.length = 0;
    return r;
  }

  /** tapdisk_vbd_detach() of Xen's in-tree tapdisk: close the ring fd THEN munmap; minor := -1. */
  async detach(): Promise<void> {
    this.touch('tapdisk_vbd_detach');
    const { fd, vma } = this.forgetRing();
    this.trace('detach-begin');
    if (fd !== undefined) await this.proc.close(fd);
    if (vma !== undefined) await this.proc.munmap(vma);
    this.minor = -1;
    this.trace('detach-end');
  }

  /** The ring descriptor while the VBD should be polled (not while paused: requests wait on the ring). */
  pollFd(): number | undefined {
    this.touch('the event loop polling the VBD ring');
    if (this.ringFd === undefined || this.test('PAUSED') || this.test('PAUSE_REQUESTED')) return undefined;
    return this.ringFd;
  }

  closeImage(): void {
    const image = this.image;
    this.image = undefined;
    if (image !== undefined) {
      try {
        image.close();
      } catch (e) {
        this.trace('close-error', { error: String(e) });
      }
    }
  }

  /** Ring readable: take every new request off the ring, then KICK (which also consumes DEVICE_CLOSED). */
  async serviceRing(now: number): Promise<void> {
    this.touch('the ring event handler');
    const fd = this.ringFd;
    const back = this.back;
    if (fd === undefined || back === undefined) return;
    const page = this.vma?.memory;
    if (page !== undefined && page[BLKTAP_RING_MESSAGE_OFFSET] !== 0) {
      const msg = page[BLKTAP_RING_MESSAGE_OFFSET];
      page[BLKTAP_RING_MESSAGE_OFFSET] = 0;
      if (msg === BlktapRingMessage.CLOSE) {
        this.shutdownRequested = true;
        this.setFlag('SHUTDOWN_REQUESTED', true);
        this.trace('ring-message', { message: 'close' });
      }
    }
    let answered = false;
    if (!this.test('PAUSED') && !this.test('PAUSE_REQUESTED')) {
      for (;;) {
        const rp = back.sring.reqProd;
        if (back.requestProdOverflow(rp)) {
          this.trace('ring-overflow', { reqProd: rp, reqCons: back.reqCons });
          this.setFlag('DEAD', true);
          break;
        }
        while (back.reqCons !== rp && !back.requestConsOverflow(back.reqCons)) {
          const copy = back.copyRequest(back.reqCons);
          back.reqCons = back.reqCons + 1;
          if (this.takeRequest(copy, now)) answered = true;
        }
        if (back.finalCheckForRequests() === 0) break;
      }
    }
    if (answered) back.pushResponses();
    await this.kick();
  }

  private async kick(): Promise<void> {
    if (this.ringFd === undefined) return;
    await this.proc.ioctl(this.ringFd, BlktapIoctl.KICK_FE);
  }

  /** Validates one copied request; queues it or answers it with an error at once (returns true then). */
  private takeRequest(copy: Uint8Array, now: number): boolean {
    const view = new DataView(copy.buffer, copy.byteOffset, copy.byteLength);
    const id = view.getBigUint64(8, true);
    const rawOp = view.getUint8(0);
    const fail = (why: string): true => {
      this.trace('request-error', { id: Number(id), why });
      this.respond(id, rawOp, BLKTAP_RSP_ERROR);
      return true;
    };
    let req: ReturnType<typeof readBlktapRequest>;
    try {
      req = readBlktapRequest(view, 0);
    } catch (e) {
      return fail(e instanceof Error ? e.message : String(e));
    }
    if (id >= BigInt(BLKTAP_RING_SIZE)) return fail(`id ${id} is not a ring slot`);
    const image = this.image;
    if (image === undefined || this.test('DEAD') || this.test('CLOSED')) return fail('no image open');
    const sectors = req.segments.reduce((n, s) => n + s.lastSect - s.firstSect + 1, 0);
    const sector = Number(req.sectorNumber);
    if (sector + sectors > image.info.sectors) {
      return fail(`sectors ${sector}+${sectors} beyond the image's ${image.info.sectors}`);
    }
    const buffers: Uint8Array[] = [];
    const usrIdx = Number(id);
    for (let i = 0; i < req.segments.length; i++) {
      const seg = req.segments[i]!;
      let page: Uint8Array;
      try {
        page = this.mapping!.page(1 + usrIdx * BLKTAP_SEGMENT_MAX + i);
      } catch (e) {
        if (isKernelError(e)) return fail(e.message);
        throw e;
      }
      const view = page.subarray(seg.firstSect * SECTOR, (seg.lastSect + 1) * SECTOR);
      if (view.length !== (seg.lastSect - seg.firstSect + 1) * SECTOR) {
        return fail(`segment ${i} sectors ${seg.firstSect}..${seg.lastSect} outside its page`);
      }
      buffers.push(view);
    }
    this.inflight.push({
      id,
      operation: req.operation,
      sector,
      buffers,
      due: now + image.latencyMs + (this.faults?.delayFor(image.path) ?? 0),
    });
    return false;
  }

  private respond(id: bigint, operation: number, status: number): void {
    const back = this.back;
    if (back === undefined) return;
    writeBlktapResponse(back.sring.view, back.responseSlot(back.rspProdPvt), { id, operation, status });
    back.rspProdPvt = back.rspProdPvt + 1;
  }

  /** Earliest completion time of in-flight I/O. */
  nextDue(): number | undefined {
    this.touch('the event loop scanning VBD requests');
    let due: number | undefined;
    for (const io of this.inflight) if (due === undefined || io.due < due) due = io.due;
    return due;
  }

  /** Runs every request due by `now` against the image, answers it, pushes and kicks. */
  async complete(now: number): Promise<void> {
    this.touch('the I/O completion pass');
    const due = this.inflight.filter((io) => io.due <= now);
    if (due.length === 0 || this.back === undefined) return;
    for (const io of due) {
      this.inflight.splice(this.inflight.indexOf(io), 1);
      this.respond(io.id, io.operation, this.perform(io));
    }
    this.back.pushResponses();
    await this.kick();
  }

  /** Fails every in-flight request now (FORCE_SHUTDOWN). */
  async failInflight(): Promise<void> {
    if (this.back === undefined) return;
    for (const io of this.inflight.splice(0)) this.respond(io.id, io.operation, BLKTAP_RSP_ERROR);
    this.back.pushResponses();
    await this.kick();
  }

  private perform(io: VbdIo): number {
    const image = this.image;
    if (image === undefined) return BLKTAP_RSP_ERROR;
    const injected = this.faults?.admit(image.path);
    if (injected !== undefined) {
      this.trace('fault', { fault: 'fail-image', image: image.path, sector: io.sector, error: injected });
      return BLKTAP_RSP_ERROR;
    }
    try {
      // The segments follow each other on the disk: one vectored call (io-optimize's merge).
      if (io.operation === 0) image.readv(io.sector, io.buffers);
      else image.writev(io.sector, io.buffers);
      return BLKTAP_RSP_OKAY;
    } catch (e) {
      if (!isKernelError(e)) throw e;
      this.trace('io-error', { sector: io.sector, error: e.code });
      return BLKTAP_RSP_ERROR;
    }
  }
}
