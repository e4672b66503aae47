/**
 * The guest's view of its block devices: the gendisks blkfront created (xvda, ...) in the guest
 * kernel's block layer, each with its open count, and opens/closes by guest users. An open is held by
 * a named holder ("dom1/mount xvda") rather than a task, so one guest call can open and a later one
 * close, as a mounted filesystem keeps a disk open across system calls.
 */
import type { BlockDevice, BlockLayer } from '../kernel/block-device.js';
import { KernelError } from '../kernel/errno.js';
import type { Env, Holder } from '../runtime/engine.js';

export interface GuestDiskInfo {
  name: string;
  major: number;
  minor: number;
  sectors: number;
  readOnly: boolean;
  openers: number;
  holders: string[];
}

export interface DiskHandle {
  readonly id: number;
  readonly bdev: BlockDevice;
  readonly holder: Holder;
  readonly write: boolean;
}

export class GuestBlockLayer {
  private nextHandle = 1;
  private readonly handles = new Map<number, DiskHandle>();

  constructor(
    private readonly env: Env,
    readonly blocks: BlockLayer,
  ) {}

  /** The xvd disks present now. */
  disks(): GuestDiskInfo[] {
    return this.blocks
      .list()
      .filter((d) => d.name.startsWith('xvd'))
      .map((d) => ({
        name: d.name,
        major: d.major,
        minor: d.minor,
        sectors: d.capacitySectors,
        readOnly: d.readOnly,
        openers: d.bdOpeners,
        holders: d.openers,
      }));
  }

  disk(name: string): BlockDevice {
    const bdev = this.blocks.byName(name);
    if (!bdev) {
      const have = this.disks().map((d) => d.name);
      throw new KernelError(
        'ENXIO',
        `guest disk ${name}: no such disk (present: ${have.join(', ') || 'none'})`,
      );
    }
    return bdev;
  }

  /** Open a disk for a user named `user` (e.g. "mount", "fio"); the handle keeps it open until closed. */
  async open(name: string, user: string, mode: { write?: boolean } = {}): Promise<DiskHandle> {
    const bdev = this.disk(name);
    const id = this.nextHandle++;
    const holder: Holder = {
      label: `dom${this.env.domid}/${user} ${name}#${id}`,
      blockedOn: () => undefined,
    };
    await this.blocks.open(bdev, holder, { write: mode.write ?? false });
    const h: DiskHandle = { id, bdev, holder, write: mode.write ?? false };
    this.handles.set(id, h);
    return h;
  }

  handle(id: number): DiskHandle {
    const h = this.handles.get(id);
    if (!h) throw new KernelError('EBADF', `guest disk handle ${id} is not open`);
    return h;
  }

  async close(id: number): Promise<void> {
    const h = this.handle(id);
    this.handles.delete(id);
    await this.blocks.close(h.bdev, h.holder);
  }

  openHandles(): number[] {
    return [...this.handles.keys()];
  }
}
