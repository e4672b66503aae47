/**
 * The vbd (Linux struct xen_vbd, xen_vbd_create / xen_vbd_free): the dom0 block device named by
 * `physical-device`, opened with blkdev_get_by_dev when the hotplug script writes that node and closed
 * only when the blkif is freed (device removal), never by a frontend Closed (teardown.md 1.4, W4).
 */
import type { BlockDevice } from '../../emulator/kernel/block-device.js';
import { KernelError } from '../../emulator/kernel/errno.js';
import { namedHolder } from '../../emulator/kernel/kernel.js';
import type { Holder, WaitFor } from '../../emulator/runtime/engine.js';
import { VDISK_CDROM, VDISK_READONLY } from '../blkif.js';
import type { BlkifDisk } from '../blkif-validate.js';
import { E, hex8, MAX_INDIRECT_SEGMENTS, mkdev } from './common.js';
import type { BlkbackContext, DiskFeatures } from './context.js';

export class XenVbd {
  /** MKDEV(major, minor), as printed in Linux's messages. */
  readonly pdevice: number;
  readonly bdev: BlockDevice;
  readonly holder: Holder;
  /** VDISK_* type bits (CDROM, REMOVABLE). */
  readonly type: number;
  readonly features: DiskFeatures;
  /** May change when the feature is withdrawn after an EOPNOTSUPP completion. */
  flushSupport: boolean;
  /** feature-discard as last advertised. */
  discardAdvertised = false;
  private closed = false;

  private constructor(
    private readonly ctx: BlkbackContext,
    readonly handle: number,
    readonly readonly: boolean,
    pdevice: number,
    bdev: BlockDevice,
    holder: Holder,
    cdrom: boolean,
  ) {
    this.pdevice = pdevice;
    this.bdev = bdev;
    this.holder = holder;
    this.type = cdrom ? VDISK_CDROM : 0;
    this.features = ctx.diskFeatures(bdev.major, bdev.minor);
    this.flushSupport = this.features.flush;
  }

  /**
   * xen_vbd_create: open major:minor for read or write on behalf of `holder`. Returns the vbd or
   * -ENOENT after logging Linux's warning.
   */
  static async create(
    ctx: BlkbackContext,
    opts: { handle: number; major: number; minor: number; readonly: boolean; cdrom: boolean; holder: Holder },
  ): Promise<XenVbd | number> {
    const pdevice = mkdev(opts.major, opts.minor);
    let bdev: BlockDevice;
    try {
      bdev = await ctx.kernel.blocks.open({ major: opts.major, minor: opts.minor }, opts.holder, {
        write: !opts.readonly,
      });
    } catch (e) {
      if (!(e instanceof KernelError)) throw e;
      ctx.log(`xen_vbd_create: device ${hex8(pdevice)} could not be opened`);
      return -E.ENOENT;
    }
    const vbd = new XenVbd(ctx, opts.handle, opts.readonly, pdevice, bdev, opts.holder, opts.cdrom);
    ctx.env.trace.emit('blkback', 'vbd-open', {
      disk: bdev.name,
      holder: opts.holder.label,
      readonly: opts.readonly,
    });
    return vbd;
  }

  /** vbd_sz: size in 512-byte sectors. */
  get sectors(): number {
    return this.bdev.capacitySectors;
  }

  /** The `info` key: type bits plus VDISK_READONLY. */
  get info(): number {
    return this.type | (this.readonly ? VDISK_READONLY : 0);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** What request validation needs to know about this vbd. */
  disk(indirect: boolean): BlkifDisk {
    return {
      sectors: this.sectors,
      readOnly: this.readonly,
      logicalBlockSize: this.features.logicalBlockSize,
      maxIndirectSegments: indirect ? MAX_INDIRECT_SEGMENTS : 0,
      flushCache: this.flushSupport,
      barrier: this.flushSupport,
      discard: this.discardAdvertised,
      discardSecure: this.features.discardSecure,
    };
  }

  /** xen_vbd_free: blkdev_put. Idempotent. */
  async free(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.ctx.kernel.blocks.close(this.bdev, this.holder);
    this.ctx.env.trace.emit('blkback', 'vbd-close', { disk: this.bdev.name, holder: this.holder.label });
  }
}

/** What a held vbd's release waits on once it is no longer up to the toolstack (see vbdHolder). */
export interface VbdRelease {
  /** The release is under way and stuck: a disconnect draining references, a deferred free. */
  releasing?: () => WaitFor | undefined;
  /**
   * The backend directory is gone and the device's removal waits in (or runs in) xenwatch
   * (BackendBus.removalWait): xenwatch, not the toolstack, must act.
   */
  removal?: () => WaitFor | undefined;
}

/**
 * The holder blkback opens a vbd as: "blkback vbd-<fe>-<devid>". It is not blocked in the kernel sense,
 * but it keeps the device open until its xenbus device is removed (W4). Who must act, most specific
 * first: the release already under way; xenwatch, once the removal is queued there; else whoever
 * removes the backend directory (the toolstack).
 */
export function vbdHolder(
  ctx: BlkbackContext,
  busId: string,
  nodename: string,
  release: VbdRelease = {},
): Holder {
  return namedHolder(
    `blkback ${busId}`,
    () =>
      release.releasing?.() ??
      release.removal?.() ?? {
        what: `removal of ${nodename} (by the toolstack)`,
        holders: () => ctx.removalHolders(nodename),
      },
  );
}

export { E };
