/**
 * The ring character device `/dev/xen/blktap-2/blktapN` (blktap-module `ring.c`): one opener (EBUSY for a
 * second, ENXIO after shutdown was requested); mmap of the sring page (the kernel is the ring's frontend)
 * followed by the data area where each request's pages appear; poll readable when requests were pushed
 * past tapdisk's req_event, when a ring message is set, or after the tapdev's last close; ioctls KICK
 * (read responses), CREATE_DEVICE and REMOVE_DEVICE, only from the task that mapped the ring (EACCES).
 * vm_close and release follow the driver's destroy semantics (see driver.ts).
 * Simplification: the DEVICE_CLOSED bit is consumed by the next KICK rather than by poll, because
 * select() here evaluates readiness more than once per call.
 */
import type { CharDriver } from '../../emulator/kernel/char-device.js';
import { ERRNO, KernelError } from '../../emulator/kernel/errno.js';
import type { File, Vma } from '../../emulator/kernel/file.js';
import { Process } from '../../emulator/kernel/process.js';
import { FrontRing, SharedRing } from '../ring.js';
import {
  BLKTAP_OP_READ,
  BLKTAP_OP_WRITE,
  BLKTAP_PAGE_SIZE,
  BLKTAP_RING_ENTRY_SIZE,
  BLKTAP_RING_MESSAGE_OFFSET,
  BLKTAP_RSP_OKAY,
  BLKTAP_SEGMENT_MAX,
  BLKTAP2_PARAMS_SIZE,
  type Blktap2Params,
  BlktapIoctl,
  decodeBlktap2Params,
  readBlktapResponse,
  writeBlktapRequest,
} from './abi.js';
import { destroyTap } from './control.js';
import {
  blktapDeviceCreate,
  blktapDeviceDestroyOld,
  blktapDeviceDestroySync,
  blktapDeviceRemove,
  blktapDeviceRunQueue,
} from './device.js';
import type { BlktapDriver } from './driver.js';
import { type BioPart, type BlktapRequest, endPart, segmentSectors } from './request.js';
import type { Blktap } from './tap.js';

/**
 * What tapdisk sees through its mapping: page 0 is the sring, page 1 + usr_idx * 11 + seg is segment
 * `seg` of the request in slot `usr_idx` (MMAP_VADDR). Touching anything else faults (SIGBUS: EFAULT).
 */
export class BlktapRingMapping {
  constructor(
    private readonly tap: Blktap,
    private readonly vma: Vma,
  ) {}

  page(index: number): Uint8Array {
    const ring = this.tap.ring;
    if (ring.vma !== this.vma || ring.page === undefined) {
      throw new KernelError('EFAULT', `blktap${this.tap.minor} mapping: ring page ${index} is gone`);
    }
    if (index === 0) return ring.page;
    if (!Number.isInteger(index) || index < 1) {
      throw new KernelError('EFAULT', `blktap${this.tap.minor} mapping: page ${index}`);
    }
    const usrIdx = Math.floor((index - 1) / BLKTAP_SEGMENT_MAX);
    const seg = (index - 1) % BLKTAP_SEGMENT_MAX;
    const req = ring.pending[usrIdx];
    const view = req?.part.segments[seg];
    if (view === undefined) {
      throw new KernelError(
        'EFAULT',
        `blktap${this.tap.minor} mapping: no page mapped for usr_idx ${usrIdx} segment ${seg}`,
      );
    }
    return view;
  }
}

export function ringDriver(drv: BlktapDriver): CharDriver {
  const tapOf = (file: File): Blktap => file.private as Blktap;
  return {
    describe: (file) => file.path,
    open: (file, opener) => {
      const minor = file.devt?.minor ?? -1;
      const tap = drv.tap(minor);
      if (tap === undefined)
        throw new KernelError('ENXIO', `open ${file.path}: minor ${minor} not allocated`);
      if (tap.test('SHUTDOWN_REQUESTED'))
        throw new KernelError('ENXIO', `open ${file.path}: shutdown requested`);
      if (tap.ring.task !== undefined) {
        throw new KernelError('EBUSY', `open ${file.path}: ring already open by ${tap.ring.task.label}`);
      }
      if (!(opener instanceof Process)) {
        throw new KernelError('EINVAL', `open ${file.path}: opener ${opener.label} is not a process`);
      }
      file.private = tap;
      tap.ring.task = opener;
      drv.emit('ring-open', { minor, task: opener.label });
    },
    release: (file) => ringRelease(drv, tapOf(file)),
    mmap: (file, vma) => ringMmap(drv, tapOf(file), vma),
    vmClose: (vma) => ringVmClose(drv, vma.file.private as Blktap),
    ioctl: (file, cmd, arg) => ringIoctl(drv, tapOf(file), cmd, arg),
    poll: (file) => ({ readable: ringReadable(tapOf(file)), writable: false }),
  };
}

function ringReadable(tap: Blktap): boolean {
  if (tap.test('DEVICE_CLOSED')) return true;
  const front = tap.ring.front;
  const page = tap.ring.page;
  if (front === undefined || page === undefined) return false;
  if (page[BLKTAP_RING_MESSAGE_OFFSET] !== 0) return true;
  // Requests published at or past req_event: what RING_PUSH_REQUESTS_AND_CHECK_NOTIFY would signal.
  return (front.sring.reqProd - front.sring.reqEvent) >>> 0 < 0x80000000;
}

async function ringRelease(drv: BlktapDriver, tap: Blktap): Promise<void> {
  drv.emit('ring-release', { minor: tap.minor });
  if (drv.semantics === '2010-08') await blktapDeviceDestroySync(drv, tap);
  else blktapDeviceDestroyOld(drv, tap);
  tap.ring.task = undefined;
  if (tap.test('SHUTDOWN_REQUESTED')) destroyTap(drv, tap);
}

function ringMmap(drv: BlktapDriver, tap: Blktap, vma: Vma): void {
  if (tap.ring.vma !== undefined)
    throw new KernelError('EBUSY', `mmap blktap${tap.minor}: ring already mapped`);
  if (vma.pgoff !== 0) {
    throw new KernelError('EINVAL', `mmap blktap${tap.minor}: page offset ${vma.pgoff} (only 0 is modelled)`);
  }
  const page = new Uint8Array(new SharedArrayBuffer(BLKTAP_PAGE_SIZE));
  const front = FrontRing.init(new SharedRing(page.buffer, 0, 1, BLKTAP_RING_ENTRY_SIZE));
  tap.ring.page = page;
  tap.ring.front = front;
  tap.ring.vma = vma;
  vma.memory = page;
  vma.private = new BlktapRingMapping(tap, vma);
  drv.emit('ring-mmap', { minor: tap.minor, task: vma.owner.label });
  // Requests queued before tapdisk mapped the ring can go now.
  blktapDeviceRunQueue(drv, tap);
}

function ringVmClose(drv: BlktapDriver, tap: Blktap): void {
  blktapRingFailPending(drv, tap);
  tap.ring.page = undefined;
  tap.ring.front = undefined;
  tap.ring.vma = undefined;
  drv.emit('ring-unmap', { minor: tap.minor });
  if (drv.semantics === '2010-06') blktapDeviceDestroyOld(drv, tap);
  if (tap.test('SHUTDOWN_REQUESTED')) destroyTap(drv, tap);
}

function ringIoctl(drv: BlktapDriver, tap: Blktap, cmd: number, arg: unknown): number | Promise<number> {
  const vma = tap.ring.vma;
  if (vma === undefined || vma.owner !== drv.k.processes.current()) {
    throw new KernelError('EACCES', `blktap${tap.minor} ioctl ${cmd}: caller has not mapped the ring`);
  }
  switch (cmd) {
    case BlktapIoctl.KICK_FE:
      tap.clear('DEVICE_CLOSED');
      blktapRingReadResponses(drv, tap);
      blktapDeviceRunQueue(drv, tap);
      return 0;
    case BlktapIoctl.CREATE_DEVICE: {
      if (arg === undefined || arg === null || arg === 0) {
        throw new KernelError('EINVAL', `blktap${tap.minor} CREATE_DEVICE: no params`);
      }
      let params: Blktap2Params;
      if (arg instanceof Uint8Array) {
        if (arg.length !== BLKTAP2_PARAMS_SIZE) {
          throw new KernelError('EFAULT', `blktap${tap.minor} CREATE_DEVICE: params of ${arg.length} bytes`);
        }
        params = decodeBlktap2Params(arg);
      } else {
        throw new KernelError('EFAULT', `blktap${tap.minor} CREATE_DEVICE: params is not a byte buffer`);
      }
      blktapDeviceCreate(drv, tap, params);
      blktapDeviceRunQueue(drv, tap);
      return 0;
    }
    case BlktapIoctl.REMOVE_DEVICE:
      return ringRemoveDevice(drv, tap);
    default:
      throw new KernelError('ENOTTY', `blktap${tap.minor} ioctl ${cmd}`);
  }
}

async function ringRemoveDevice(drv: BlktapDriver, tap: Blktap): Promise<number> {
  if ((await blktapDeviceRemove(drv, tap)) !== 0) {
    const bdev = tap.device.bdev;
    throw new KernelError(
      'EBUSY',
      `blktap${tap.minor} REMOVE_DEVICE: ${bdev?.name ?? 'device'} has ${bdev?.bdOpeners ?? 0} opener(s) or bd_mutex is held`,
    );
  }
  return 0;
}

/** blktap_ring_kick_user(): wake the ring's waiters and every select()er. */
export function blktapRingKick(drv: BlktapDriver, tap: Blktap): void {
  tap.ring.pollWait.wakeAll();
  drv.k.poll.wake();
}

/** blktap_ring_make_request + blktap_ring_submit_request: put one part on the ring under a free slot. */
export function blktapRingSubmit(drv: BlktapDriver, tap: Blktap, part: BioPart): void {
  const ring = tap.ring;
  const front = ring.front!;
  const usrIdx = ring.pending.indexOf(undefined);
  if (usrIdx < 0) throw new Error(`blktap${tap.minor}: ring not full but no free usr_idx`);
  const write = part.owner.bio.op === 'write';
  const request: BlktapRequest = {
    usrIdx,
    operation: write ? BLKTAP_OP_WRITE : BLKTAP_OP_READ,
    part,
    time: drv.env.now(),
  };
  writeBlktapRequest(front.sring.view, front.requestSlot(front.reqProdPvt), {
    operation: request.operation,
    id: BigInt(usrIdx),
    sectorNumber: BigInt(part.sector),
    segments: part.segments.map((s) => ({ firstSect: 0, lastSect: segmentSectors(s) - 1 })),
  });
  front.reqProdPvt = front.reqProdPvt + 1;
  ring.pending[usrIdx] = request;
  ring.nPending++;
  const sectors = part.segments.reduce((n, s) => n + segmentSectors(s), 0);
  if (write) {
    tap.stats.wrReq++;
    tap.stats.wrSect += sectors;
  } else {
    tap.stats.rdReq++;
    tap.stats.rdSect += sectors;
  }
}

/** blktap_read_ring(): consume responses; bad ones are logged (and end their request if it exists). */
export function blktapRingReadResponses(drv: BlktapDriver, tap: Blktap): void {
  const ring = tap.ring;
  const front = ring.front;
  if (front === undefined || ring.vma === undefined) return;
  const rp = front.sring.rspProd;
  if (front.responseProdOverflow(rp)) {
    drv.log(`blktap${tap.minor}: invalid rsp_prod ${rp} (rsp_cons ${front.rspCons})`);
    return;
  }
  let rc = front.rspCons;
  for (; rc !== rp; rc = (rc + 1) >>> 0) {
    const copy = front.copyResponse(rc);
    const rsp = readBlktapResponse(new DataView(copy.buffer, copy.byteOffset, copy.byteLength), 0);
    const idx = rsp.id;
    const request = idx < BigInt(ring.pending.length) ? ring.pending[Number(idx)] : undefined;
    let err = rsp.status === BLKTAP_RSP_OKAY ? 0 : -ERRNO.EIO;
    let why: string | undefined;
    if (idx >= BigInt(ring.pending.length)) why = 'ERANGE';
    else if (request === undefined) why = 'ESRCH';
    else if (rsp.operation !== request.operation) {
      why = 'EINVAL';
      err = -ERRNO.EIO;
    }
    if (why !== undefined) {
      drv.log(
        `blktap${tap.minor}: invalid response, idx:${idx} status:${rsp.status} op:${rsp.operation}/${request?.operation ?? '-'}: err ${why}`,
      );
    }
    if (request !== undefined) endRequest(tap, request, err);
  }
  front.rspCons = rc;
}

function endRequest(tap: Blktap, request: BlktapRequest, err: number): void {
  tap.ring.pending[request.usrIdx] = undefined;
  tap.ring.nPending--;
  endPart(request.part, err);
}

/** blktap_ring_fail_pending(): every request on the ring ends with -EIO. */
export function blktapRingFailPending(drv: BlktapDriver, tap: Blktap): void {
  let n = 0;
  for (const request of tap.ring.pending) {
    if (request === undefined) continue;
    endRequest(tap, request, -ERRNO.EIO);
    n++;
  }
  if (n > 0) {
    drv.emit('fail-pending', { minor: tap.minor, requests: n });
    drv.log(`blktap${tap.minor}: failing ${n} pending request(s) with EIO`);
  }
}
