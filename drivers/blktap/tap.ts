/**
 * `struct blktap`: one allocated minor of the blktap2 driver with its ring state (`struct blktap_ring`),
 * its block device (`struct blktap_device`), its `dev_inuse` bits and its sysfs device.
 * Source: ydirson/blktap-module `drivers/xen/blktap/blktap.h` (2010-2011).
 */
import type { BlockDevice } from '../../emulator/kernel/block-device.js';
import type { Vma } from '../../emulator/kernel/file.js';
import type { Process } from '../../emulator/kernel/process.js';
import type { SysfsDevice } from '../../emulator/kernel/sysfs.js';
import type { WaitQueue } from '../../emulator/runtime/engine.js';
import type { FrontRing } from '../ring.js';
import { BlktapInuseBit } from './abi.js';
import type { BlktapRequest, QueuedBio } from './request.js';

export type InuseBitName = keyof typeof BlktapInuseBit;

export interface BlktapRingState {
  /** ring.task: the one process that has the ring device open. */
  task: Process | undefined;
  /** ring.vma: the mapping of the ring page and data area. */
  vma: Vma | undefined;
  /** The kernel is the frontend of the blktap ring (FRONT_RING_INIT in mmap). */
  front: FrontRing | undefined;
  /** The sring page (freed at vm_close). */
  page: Uint8Array | undefined;
  /** ring.poll_wait: tapdisk's poll, destroy_sync's wait. */
  readonly pollWait: WaitQueue;
  /** ring.pending[usr_idx] */
  readonly pending: Array<BlktapRequest | undefined>;
  nPending: number;
}

export interface BlktapDeviceState {
  /** tapdev->gd */
  bdev: BlockDevice | undefined;
  /** The request queue: bios (split into ring-sized parts) not yet on the ring. */
  readonly queue: QueuedBio[];
}

export class Blktap {
  devInuse = 0;
  /** tap->name, from CREATE_DEVICE params or the sysfs `name` attribute. */
  name = '';
  /** kobject_get(&default_pool->kobj) at create, put at destroy. */
  poolRef = false;
  /** 546b11c~1 only: after a busy destroy the queue fails every new request with EIO. */
  failFuture = false;
  sysfs: SysfsDevice | undefined;
  readonly ring: BlktapRingState;
  readonly device: BlktapDeviceState = { bdev: undefined, queue: [] };
  readonly stats = { rdReq: 0, wrReq: 0, rdSect: 0, wrSect: 0, ooReq: 0 };

  constructor(
    readonly minor: number,
    pollWait: WaitQueue,
    ringSize: number,
  ) {
    this.ring = {
      task: undefined,
      vma: undefined,
      front: undefined,
      page: undefined,
      pollWait,
      pending: new Array<BlktapRequest | undefined>(ringSize).fill(undefined),
      nPending: 0,
    };
  }

  test(bit: InuseBitName): boolean {
    return (this.devInuse & (1 << BlktapInuseBit[bit])) !== 0;
  }

  set(bit: InuseBitName): void {
    this.devInuse |= 1 << BlktapInuseBit[bit];
  }

  clear(bit: InuseBitName): void {
    this.devInuse &= ~(1 << BlktapInuseBit[bit]);
  }

  /** test_and_set_bit */
  testAndSet(bit: InuseBitName): boolean {
    const was = this.test(bit);
    this.set(bit);
    return was;
  }
}

/** gd->disk_name as blktap_device_create() builds it: tda..tdz, tdaa.., tdaaa.. */
export function tapdevDiskName(minor: number): string {
  const a = 'a'.charCodeAt(0);
  const c = (n: number) => String.fromCharCode(a + n);
  if (minor < 26) return `td${c(minor % 26)}`;
  if (minor < (26 + 1) * 26) return `td${c(Math.floor(minor / 26) - 1)}${c(minor % 26)}`;
  const m1 = Math.floor((Math.floor(minor / 26) - 1) / 26) - 1;
  const m2 = (Math.floor(minor / 26) - 1) % 26;
  return `td${c(m1)}${c(m2)}${c(minor % 26)}`;
}
