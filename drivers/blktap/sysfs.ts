/**
 * `/sys/class/blktap2/blktapN` with the attributes of blktap-module `sysfs.c` (2010-2011): `name`
 * (read: the name or the minor; write: at most 255 bytes), `remove` (request shutdown: ask tapdisk to
 * close through the ring message, or tear the tap down now when no ring is mapped), `debug` (the
 * control, device and ring debug dumps), `task` (pid of the ring's task) and `pool` (the page pool).
 * Simplification: `remove` does not wait for the teardown to finish.
 */
import { KernelError } from '../../emulator/kernel/errno.js';
import {
  BLKTAP_RING_MESSAGE_OFFSET,
  BLKTAP2_MAX_MESSAGE_LEN,
  BLKTAP2_SYSFS_CLASS,
  BlktapRingMessage,
} from './abi.js';
import { destroyTap } from './control.js';
import type { BlktapDriver } from './driver.js';
import { blktapRingKick } from './ring.js';
import type { Blktap } from './tap.js';

export function blktapSysfsCreate(drv: BlktapDriver, tap: Blktap): void {
  tap.sysfs = drv.k.sysfs.deviceCreate(BLKTAP2_SYSFS_CLASS, `blktap${tap.minor}`, {
    devt: { kind: 'chr', major: drv.ringMajor, minor: tap.minor },
    attributes: {
      name: {
        show: () => (tap.name !== '' ? `${tap.name}\n` : `${tap.minor}\n`),
        store: (value) => {
          if (new TextEncoder().encode(value).length >= BLKTAP2_MAX_MESSAGE_LEN) {
            throw new KernelError('ENAMETOOLONG', `blktap${tap.minor}/name: ${value.length} bytes`);
          }
          tap.name = value;
        },
      },
      remove: { store: () => sysfsRemove(drv, tap) },
      debug: { show: () => debugText(tap) },
      task: { show: () => (tap.ring.task !== undefined ? `${tap.ring.task.pid}\n` : '') },
      pool: { show: () => 'default\n' },
    },
  });
}

export function blktapSysfsDestroy(drv: BlktapDriver, tap: Blktap): void {
  if (tap.sysfs === undefined) return;
  drv.k.sysfs.deviceDestroy(tap.sysfs);
  tap.sysfs = undefined;
}

function sysfsRemove(drv: BlktapDriver, tap: Blktap): void {
  if (tap.testAndSet('SHUTDOWN_REQUESTED')) return;
  drv.emit('remove-requested', { minor: tap.minor });
  const page = tap.ring.page;
  if (tap.ring.vma !== undefined && page !== undefined) {
    page[BLKTAP_RING_MESSAGE_OFFSET] = BlktapRingMessage.CLOSE;
    blktapRingKick(drv, tap);
  } else {
    destroyTap(drv, tap);
  }
}

function debugText(tap: Blktap): string {
  const ring = tap.ring;
  const lines = [
    `tap ${tap.minor} name:'${tap.name}' flags:${`0x${tap.devInuse.toString(16).padStart(6, '0')}`}`,
  ];
  const bdev = tap.device.bdev;
  if (bdev !== undefined) {
    lines.push(`disk capacity:${bdev.capacitySectors} sector size:512`);
    lines.push(`bdev openers:${bdev.bdOpeners} closed:${tap.test('DEVICE_CLOSED') ? 1 : 0}`);
  }
  lines.push(`begin pending:${ring.nPending}`);
  ring.pending.forEach((r, i) => {
    if (r === undefined) return;
    const op = r.operation === 1 ? 'W' : 'R';
    lines.push(
      `${String(i).padStart(2, '0')}: usr_idx:${String(r.usrIdx).padStart(2, '0')} op:${op} nr_pages:${String(r.part.segments.length).padStart(2, '0')} time:${r.time}`,
    );
  });
  lines.push('end pending');
  return `${lines.join('\n')}\n`;
}
