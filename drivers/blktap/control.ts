/**
 * The control misc device `/dev/xen/blktap-2/control` (blktap-control): ALLOC_TAP takes the lowest free
 * slot of blktaps[] (growing it by doubling up to MAX_BLKTAP_DEVICE; full: ENOMEM), takes a module and a
 * page-pool reference and creates `/sys/class/blktap2/blktapN`; FREE_TAP(minor) gives EINVAL above the
 * cap, ENODEV for a free slot, EBUSY while a task has the ring open or mapped, else tears the tap down.
 * Source: blktap-module `drivers/xen/blktap/control.c` (546b11c).
 */
import type { CharDriver } from '../../emulator/kernel/char-device.js';
import { KernelError } from '../../emulator/kernel/errno.js';
import {
  BLKTAP2_CONTROL_DEVICE,
  BLKTAP2_DIRECTORY,
  BLKTAP2_HANDLE_SIZE,
  BlktapIoctl,
  encodeBlktapHandle,
  ringDevicePath,
} from './abi.js';
import { blktapDeviceDestroy } from './device.js';
import type { BlktapDriver } from './driver.js';
import { blktapSysfsCreate, blktapSysfsDestroy } from './sysfs.js';
import { Blktap } from './tap.js';

export function controlDriver(drv: BlktapDriver): CharDriver {
  return {
    describe: () => BLKTAP2_CONTROL_DEVICE,
    ioctl: (_file, cmd, arg) => controlIoctl(drv, cmd, arg),
  };
}

function controlIoctl(drv: BlktapDriver, cmd: number, arg: unknown): number {
  switch (cmd) {
    case BlktapIoctl.ALLOC_TAP: {
      const tap = createTap(drv);
      // copy_to_user(ptr, &h, sizeof(h)); when it faults the new tap is destroyed again.
      if (!(arg instanceof Uint8Array) || arg.length !== BLKTAP2_HANDLE_SIZE) {
        destroyTap(drv, tap);
        throw new KernelError(
          'EFAULT',
          `blktap ALLOC_TAP: handle buffer is ${describeArg(arg)}, expected ${BLKTAP2_HANDLE_SIZE} bytes`,
        );
      }
      encodeBlktapHandle({ ring: drv.ringMajor, device: drv.deviceMajor, minor: tap.minor }, arg);
      return 0;
    }
    case BlktapIoctl.FREE_TAP: {
      const minor = arg;
      if (typeof minor !== 'number' || !Number.isInteger(minor) || minor < 0 || minor > drv.maxDevices) {
        throw new KernelError('EINVAL', `blktap FREE_TAP: minor ${String(minor)}`);
      }
      const tap = drv.tap(minor);
      if (tap === undefined)
        throw new KernelError('ENODEV', `blktap FREE_TAP: minor ${minor} is not allocated`);
      const err = destroyTap(drv, tap);
      if (err !== 0) {
        throw new KernelError('EBUSY', `blktap FREE_TAP: minor ${minor}: ${busyReason(tap)}`);
      }
      return 0;
    }
    default:
      throw new KernelError('ENOTTY', `blktap control ioctl ${cmd}`);
  }
}

function describeArg(arg: unknown): string {
  return arg instanceof Uint8Array ? `${arg.length} bytes` : String(arg);
}

function busyReason(tap: Blktap): string {
  const parts: string[] = [];
  if (tap.ring.task !== undefined) parts.push(`ring open by ${tap.ring.task.label}`);
  if (tap.ring.vma !== undefined) parts.push(`ring mapped by ${tap.ring.vma.owner.label}`);
  if (tap.device.bdev !== undefined) parts.push(`${tap.device.bdev.name} still exists`);
  return parts.join(', ') || 'busy';
}

/** blktap_control_get_minor + blktap_control_create_tap */
function createTap(drv: BlktapDriver): Blktap {
  let minor = drv.blktaps.indexOf(undefined);
  if (minor < 0) minor = drv.blktaps.length;
  if (minor === drv.maxDevices) {
    throw new KernelError('ENOMEM', `blktap ALLOC_TAP: all ${drv.maxDevices} minors in use`);
  }
  if (minor === drv.blktaps.length) {
    const n = Math.min(2 * drv.blktaps.length, drv.maxDevices);
    while (drv.blktaps.length < n) drv.blktaps.push(undefined);
  }
  const tap = new Blktap(minor, drv.env.waitQueue(`blktap${minor} ring poll_wait`), drv.ringSize);
  drv.blktaps[minor] = tap;
  drv.moduleRefs++;
  tap.poolRef = true;
  drv.poolRefs++;
  blktapSysfsCreate(drv, tap);
  // udev stands in here: the ring node appears with the sysfs device; tap-ctl allocate unlinks and
  // re-mknods it anyway (tap_ctl_make_device), and nothing removes it at free.
  const path = ringDevicePath(minor);
  if (!drv.k.ns.exists(BLKTAP2_DIRECTORY)) drv.k.ns.mkdir(BLKTAP2_DIRECTORY, { parents: true });
  if (!drv.k.ns.exists(path)) drv.k.ns.mknod(path, 'chr', drv.ringMajor, minor);
  drv.emit('alloc', { minor });
  drv.log(`blktap${minor}: allocated`);
  return tap;
}

/**
 * blktap_control_destroy_tap(): returns 0 or -EBUSY (while the ring is open or mapped; under 2010-06
 * also while the lingering gendisk is still open, in which case its last close finishes the job).
 */
export function destroyTap(drv: BlktapDriver, tap: Blktap): number {
  if (tap.ring.task !== undefined || tap.ring.vma !== undefined) return -16;
  if (drv.semantics === '2010-06') {
    tap.set('SHUTDOWN_REQUESTED');
    if (blktapDeviceDestroy(drv, tap) !== 0) return -16;
  }
  if (drv.tap(tap.minor) !== tap) return 0;
  if (tap.poolRef) {
    tap.poolRef = false;
    drv.poolRefs--;
  }
  blktapSysfsDestroy(drv, tap);
  drv.blktaps[tap.minor] = undefined;
  drv.moduleRefs--;
  drv.emit('free', { minor: tap.minor });
  drv.log(`blktap${tap.minor}: freed`);
  tap.ring.pollWait.wakeAll();
  return 0;
}
