/**
 * The tapdev block device (`struct blktap_device`, blktap-module `device.c`): CREATE_DEVICE makes the
 * gendisk tdX (`/dev/xen/blktap-2/tapdevN`) with the image size; bios queue on it and go to the blktap
 * ring for tapdisk; the last close sets DEVICE_CLOSED and wakes the ring; destroy deletes the gendisk
 * only when bd_mutex can be taken without sleeping and nobody has it open (546b11c + 2ab5e84);
 * destroy_sync retries that in an uninterruptible wait on the ring's wait queue.
 */
import type { Bio, BlockDevice, BlockDriver } from '../../emulator/kernel/block-device.js';
import { ERRNO, isKernelError, KernelError } from '../../emulator/kernel/errno.js';
import type { Holder } from '../../emulator/runtime/engine.js';
import { type Blktap2Params, ioDevicePath } from './abi.js';
import { destroyTap } from './control.js';
import type { BlktapDriver } from './driver.js';
import { endPart, type QueuedBio, queueBio } from './request.js';
import { blktapRingFailPending, blktapRingKick, blktapRingSubmit } from './ring.js';
import { type Blktap, tapdevDiskName } from './tap.js';

const EBUSY = -ERRNO.EBUSY;
const ULLONG_MAX = (1n << 64n) - 1n;

/** blktap_device_create(): EEXIST when the device exists, EINVAL (logged) for bad params. */
export function blktapDeviceCreate(drv: BlktapDriver, tap: Blktap, params: Blktap2Params): void {
  if (tap.test('DEVICE')) throw new KernelError('EEXIST', `blktap${tap.minor} CREATE_DEVICE: device exists`);
  const order = Math.log2(params.sectorSize);
  const bad =
    !Number.isInteger(order) ||
    order < 9 ||
    order > 12 ||
    params.capacity === 0n ||
    params.capacity > ULLONG_MAX >> BigInt(Number.isInteger(order) ? order : 0) ||
    params.capacity > BigInt(Number.MAX_SAFE_INTEGER);
  if (bad) {
    drv.log(
      `blktap${tap.minor}: capacity: ${params.capacity}, sector-size: ${params.sectorSize}, name: ${params.name}`,
    );
    throw new KernelError(
      'EINVAL',
      `blktap${tap.minor} CREATE_DEVICE: capacity ${params.capacity} / sector_size ${params.sectorSize} rejected`,
    );
  }
  const name = tapdevDiskName(tap.minor);
  tap.device.bdev = drv.k.blocks.addDisk({
    name,
    major: drv.deviceMajor,
    minor: tap.minor,
    capacitySectors: Number(params.capacity),
    driver: tapdevDriver(drv, tap),
    private: tap,
  });
  if (params.name !== '') tap.name = params.name;
  tap.set('DEVICE');
  tap.clear('DEVICE_CLOSED');
  tap.failFuture = false;
  // tap-ctl makes this node with mknod; a udev rule stands in for it here when it is missing.
  const path = ioDevicePath(tap.minor);
  if (!drv.k.ns.exists(path)) drv.k.ns.mknod(path, 'blk', drv.deviceMajor, tap.minor);
  drv.emit('create', {
    minor: tap.minor,
    disk: name,
    sectors: Number(params.capacity),
    sectorSize: params.sectorSize,
  });
  drv.log(`${name}: sector-size: ${params.sectorSize} capacity: ${params.capacity}`);
}

/** blktap_device_destroy(): 0, or -EBUSY when bd_mutex is held or the tapdev is open. */
export function blktapDeviceDestroy(drv: BlktapDriver, tap: Blktap): number {
  const bdev = tap.device.bdev;
  if (bdev === undefined) return 0;
  try {
    drv.k.blocks.tryDestroy(bdev);
  } catch (e) {
    if (isKernelError(e, 'EBUSY')) return EBUSY;
    throw e;
  }
  deviceGone(drv, tap, bdev);
  return 0;
}

/**
 * The device destroy REMOVE_DEVICE runs, by `destroyLock`: 'trylock' (2ab5e84) never sleeps, -EBUSY
 * while bd_mutex is held; 'lock' (before it) sleeps uninterruptibly on bd_mutex, so a last close that
 * holds it while its writeback waits for tapdisk (the caller) never finishes (C3).
 */
export async function blktapDeviceRemove(drv: BlktapDriver, tap: Blktap): Promise<number> {
  if (drv.destroyLock === 'trylock') return blktapDeviceDestroy(drv, tap);
  const bdev = tap.device.bdev;
  if (bdev === undefined) return 0;
  try {
    await drv.k.blocks.destroy(bdev);
  } catch (e) {
    if (isKernelError(e, 'EBUSY')) return EBUSY;
    throw e;
  }
  deviceGone(drv, tap, bdev);
  return 0;
}

function deviceGone(drv: BlktapDriver, tap: Blktap, bdev: BlockDevice): void {
  tap.device.bdev = undefined;
  tap.clear('DEVICE');
  blktapDeviceFailQueue(drv, tap);
  drv.emit('destroy', { minor: tap.minor, disk: bdev.name });
  drv.log(`blktap${tap.minor}: destroyed device ${bdev.name}`);
}

/** blktap_device_fail_queue(): every bio part still queued (not on the ring) ends with -EIO. */
export function blktapDeviceFailQueue(drv: BlktapDriver, tap: Blktap): void {
  const queue = tap.device.queue.splice(0);
  for (const q of queue) failQueued(q);
  if (queue.length > 0) drv.emit('fail-queue', { minor: tap.minor, bios: queue.length });
}

function failQueued(q: QueuedBio): void {
  if (q.parts.length === 0 && q.outstanding === 0) {
    q.bio.end(-ERRNO.EIO); // a flush barrier
    return;
  }
  for (const part of q.parts.splice(0)) endPart(part, -ERRNO.EIO);
}

/** 546b11c~1's destroy from ring release/vm_close: try once; when busy fail requests, return -EBUSY. */
export function blktapDeviceDestroyOld(drv: BlktapDriver, tap: Blktap): number {
  const err = blktapDeviceDestroy(drv, tap);
  if (err !== 0) {
    blktapRingFailPending(drv, tap);
    blktapDeviceFailQueue(drv, tap);
    tap.failFuture = true;
    drv.log(
      `blktap${tap.minor}: destroy device: busy (${tap.device.bdev?.bdOpeners ?? 0} openers), gendisk kept`,
    );
    drv.emit('destroy-busy', { minor: tap.minor });
  }
  return err;
}

/**
 * blktap_device_destroy_sync(): wait_event(ring.poll_wait, !try_destroy()). Uninterruptible, no timeout;
 * each failed try fails the queued requests; the tapdev's last close wakes it.
 */
export async function blktapDeviceDestroySync(drv: BlktapDriver, tap: Blktap): Promise<void> {
  const bdev = tap.device.bdev;
  if (bdev === undefined) return;
  const waitOptions = bdev.noOpenersWait(`tapdev${tap.minor}`);
  if (drv.destroyLock === 'lock') {
    // Before 2ab5e84: mutex_lock(bd_mutex) may sleep behind a last close that flushes through tapdisk.
    for (;;) {
      try {
        await drv.k.blocks.destroy(bdev);
        deviceGone(drv, tap, bdev);
        return;
      } catch (e) {
        if (!isKernelError(e, 'EBUSY')) throw e;
      }
      blktapDeviceFailQueue(drv, tap);
      drv.emit('destroy-wait', { minor: tap.minor, openers: bdev.bdOpeners });
      await drv.k.waits.waitUninterruptible(tap.ring.pollWait, () => bdev.bdOpeners === 0, waitOptions);
    }
  }
  let announced = false;
  const tryDestroy = (): boolean => {
    const err = blktapDeviceDestroy(drv, tap);
    if (err === 0) return true;
    blktapDeviceFailQueue(drv, tap);
    if (!announced) {
      announced = true;
      drv.emit('destroy-wait', { minor: tap.minor, openers: bdev.bdOpeners });
    }
    return false;
  };
  await drv.k.waits.waitUninterruptible(tap.ring.pollWait, tryDestroy, waitOptions);
}

/** blktap_device_run_queue(): move queued parts onto the ring while there is room; flushes drain. */
export function blktapDeviceRunQueue(drv: BlktapDriver, tap: Blktap): void {
  const ring = tap.ring;
  if (ring.vma === undefined || ring.front === undefined || tap.device.bdev === undefined) return;
  const queue = tap.device.queue;
  let pushed = false;
  while (queue.length > 0) {
    const q = queue[0]!;
    if (q.parts.length === 0) {
      // QUEUE_ORDERED_DRAIN on a cacheless device: a flush completes once everything before it has.
      if (ring.nPending > 0) break;
      queue.shift();
      q.bio.end(q.error);
      continue;
    }
    if (ring.front.full()) {
      tap.stats.ooReq++;
      break;
    }
    blktapRingSubmit(drv, tap, q.parts.shift()!);
    pushed = true;
    if (q.parts.length === 0) queue.shift();
  }
  if (pushed) {
    ring.front.pushRequests();
    blktapRingKick(drv, tap);
  }
}

export function tapdevDriver(drv: BlktapDriver, tap: Blktap): BlockDriver {
  return {
    open: () => {
      if (drv.semantics === '2010-06' && tap.test('SHUTDOWN_REQUESTED')) {
        throw new KernelError('ENOENT', `open ${tapdevDiskName(tap.minor)}: shutdown requested`);
      }
    },
    release: (bdev: BlockDevice, _holder: Holder) => {
      if (bdev.bdOpeners !== 0) return;
      tap.set('DEVICE_CLOSED');
      blktapRingKick(drv, tap);
      if (drv.semantics === '2010-06' && tap.test('SHUTDOWN_REQUESTED')) {
        // The old release destroyed the device here; bd_mutex is ours now, so it runs as deferred work.
        drv.env.spawn(
          `blktap${tap.minor} destroy`,
          async () => {
            if (blktapDeviceDestroy(drv, tap) === 0 && drv.tap(tap.minor) === tap) destroyTap(drv, tap);
          },
          { daemon: true, component: 'blktap' },
        );
      }
    },
    submit: (_bdev: BlockDevice, bio: Bio) => {
      if (bio.op === 'discard') {
        bio.end(-ERRNO.EOPNOTSUPP); // !blk_fs_request()
        return;
      }
      if (tap.failFuture) {
        bio.end(-ERRNO.EIO); // 546b11c~1: queuedata cleared, "fail any future requests"

        return;
      }
      const q = queueBio(bio);
      tap.device.queue.push(q);
      blktapDeviceRunQueue(drv, tap);
      blktapRingKick(drv, tap);
    },
    ioHolders: () => (tap.ring.task !== undefined ? [tap.ring.task] : []),
  };
}
