/**
 * Loop block devices (drivers/block/loop.c, loop module with max_loop nodes): /dev/loopN exists from
 * module load (block major 7, minor N) but has no disk until a file is bound to it (LOOP_SET_FD, what
 * `losetup` does); LOOP_CLR_FD unbinds it. A bound device is the kernel model's image disk over the
 * file, named loopN. `losetup -f` picks the lowest unbound device (LOOP_CTL_GET_FREE).
 * Simplifications: a fixed number of devices (loop-control does not add more; no free one is ENOSPC);
 * LOOP_CLR_FD on an open device is EBUSY (the autoclear flag is not modelled).
 */
import { KernelError } from './errno.js';
import type { ImageDisk } from './image-disk.js';
import type { Kernel } from './kernel.js';

/** LOOP_MAJOR (include/uapi/linux/major.h). */
export const LOOP_MAJOR = 7;
/** CONFIG_BLK_DEV_LOOP_MIN_COUNT default. */
export const DEFAULT_MAX_LOOP = 8;

export interface LoopBinding {
  index: number;
  /** `/dev/loopN` */
  device: string;
  /** lo_file_name: the backing file's path as given. */
  backingFile: string;
  readOnly: boolean;
}

export class LoopDevices {
  private readonly bound = new Map<number, { disk: ImageDisk; binding: LoopBinding }>();

  constructor(
    private readonly k: Kernel,
    readonly maxLoop: number = DEFAULT_MAX_LOOP,
  ) {
    if (!Number.isInteger(maxLoop) || maxLoop < 1 || maxLoop > 256) {
      throw new KernelError('EINVAL', `loop: max_loop ${maxLoop} outside 1..256`);
    }
    k.blocks.registerBlkdev(LOOP_MAJOR, 'loop');
    k.ns.mkdir('/dev', { parents: true });
    for (let i = 0; i < maxLoop; i++) k.ns.mknod(loopDevice(i), 'blk', LOOP_MAJOR, i);
  }

  /** LOOP_CTL_GET_FREE: the lowest unbound index. */
  getFree(): number {
    for (let i = 0; i < this.maxLoop; i++) if (!this.bound.has(i)) return i;
    throw new KernelError('ENOSPC', `loop: all ${this.maxLoop} loop devices are bound`);
  }

  /** LOOP_SET_FD: binds `file` to loopN; EBUSY if already bound, the file's open error otherwise. */
  setFd(index: number, file: string, options: { readOnly?: boolean } = {}): LoopBinding {
    this.checkIndex(index);
    const current = this.bound.get(index);
    if (current !== undefined) {
      throw new KernelError('EBUSY', `${loopDevice(index)}: already bound to ${current.binding.backingFile}`);
    }
    const readOnly = options.readOnly ?? false;
    const disk = this.k.createImageDisk({
      name: `loop${index}`,
      major: LOOP_MAJOR,
      minor: index,
      backing: { kind: 'file', path: file },
      readOnly,
    });
    const binding: LoopBinding = { index, device: loopDevice(index), backingFile: file, readOnly };
    this.bound.set(index, { disk, binding });
    this.k.env.trace.emit('loop', 'set-fd', { device: binding.device, file });
    return binding;
  }

  /** LOOP_CLR_FD: ENXIO when unbound, EBUSY while the device is open. */
  clrFd(index: number): void {
    this.checkIndex(index);
    const b = this.bound.get(index);
    if (b === undefined) throw new KernelError('ENXIO', `${loopDevice(index)}: not bound`);
    if (b.disk.bdev.bdOpeners > 0) {
      throw new KernelError('EBUSY', `${loopDevice(index)}: open by ${b.disk.bdev.bdOpeners} opener(s)`);
    }
    this.k.blocks.tryDestroy(b.disk.bdev);
    b.disk.dispose();
    this.bound.delete(index);
    this.k.env.trace.emit('loop', 'clr-fd', { device: b.binding.device, file: b.binding.backingFile });
  }

  /** The bound devices by index (`losetup -a`). */
  list(): LoopBinding[] {
    return [...this.bound.values()].map((b) => b.binding).sort((a, b) => a.index - b.index);
  }

  /** The index of `/dev/loopN`, or EINVAL naming the path. */
  indexOf(path: string): number {
    const m = /^\/dev\/loop(\d+)$/.exec(path);
    const index = m ? Number(m[1]) : Number.NaN;
    if (!Number.isInteger(index) || index >= this.maxLoop) {
      throw new KernelError('ENXIO', `${path}: not a loop device (loop0..loop${this.maxLoop - 1})`);
    }
    return index;
  }

  private checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.maxLoop) {
      throw new KernelError('ENXIO', `loop${index}: no such loop device (max_loop ${this.maxLoop})`);
    }
  }
}

export function loopDevice(index: number): string {
  return `/dev/loop${index}`;
}
