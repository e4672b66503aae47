/**
 * The block layer: majors (register_blkdev), gendisks by (major, minor) and name, opening by a holder
 * with `bd_openers` and `bd_mutex` as fs/block_dev.c keeps them, exclusive claims, bio submission to the
 * driver and completion, and a destroy that refuses (EBUSY) while the device is open.
 * Simplifications: whole disks only (no partitions); no page cache, so nothing is dirty at last close
 * unless a disk opts into `syncOnLastClose` (which then flushes through its driver under bd_mutex, C3).
 */
import type { Env, Holder, Mutex, WaitOptions, WaitQueue } from '../runtime/engine.js';
import { ERRNO, errnoName, KernelError } from './errno.js';
import type { KernelWaits } from './waits.js';

export const SECTOR_SIZE = 512;
/** PAGE_SIZE: a bio_vec never covers more than one page. */
export const BIO_VEC_MAX_BYTES = 4096;
/** fs/block_dev.c / genhd.c: dynamic block majors are searched from 254 downwards. */
const BLKDEV_MAJOR_MAX = 255;

export type BioOp = 'read' | 'write' | 'flush' | 'discard';
const BIO_OPS: readonly BioOp[] = ['read', 'write', 'flush', 'discard'];

export interface Bio {
  readonly op: BioOp;
  /** First sector (512 bytes). */
  readonly sector: number;
  /**
   * bi_io_vec, in disk order: each vec is at most one page (BIO_VEC_MAX_BYTES) and a non-zero multiple
   * of 512 bytes. read: the driver fills them; write: the data; flush/discard: none.
   */
  readonly vecs: readonly Uint8Array[];
  /** discard only: how many sectors. */
  readonly sectors?: number;
  /** bi_end_io: 0 on success or a negative errno (-EIO), as 2012-era bio_endio(bio, error). */
  end(error: number): void;
}

/** The driver behind a gendisk (block_device_operations + the request function). */
export interface BlockDriver {
  /** Called on every open, after the holder is admitted; may refuse (ENXIO...). */
  open?(bdev: BlockDevice, holder: Holder): void | Promise<void>;
  /**
   * Called on every close with bd_openers already decremented and bd_mutex held, as Linux's
   * __blkdev_put calls fops->release; a driver that cares about the last close checks `bdOpeners === 0`.
   */
  release?(bdev: BlockDevice, holder: Holder): void | Promise<void>;
  /** Queue a bio; complete it later (or at once) with `bio.end`. */
  submit(bdev: BlockDevice, bio: Bio): void;
  /** Who completes this disk's I/O, for the wait-for graph ("tapdisk[201]"). */
  ioHolders?(bdev: BlockDevice): readonly Holder[];
}

export interface AddDiskOptions {
  /** Disk name, e.g. "tda" or "loop0". */
  name: string;
  major: number;
  minor: number;
  capacitySectors: number;
  readOnly?: boolean;
  driver: BlockDriver;
  /** disk->private_data */
  private?: unknown;
}

export interface OpenMode {
  write?: boolean;
  /** FMODE_EXCL: refuse (EBUSY) when another holder has claimed the device exclusively. */
  exclusive?: boolean;
}

export class BlockDevice {
  readonly name: string;
  readonly major: number;
  readonly minor: number;
  readonly readOnly: boolean;
  readonly driver: BlockDriver;
  private: unknown;
  capacitySectors: number;
  /** bdev->bd_openers */
  bdOpeners = 0;
  /** bdev->bd_mutex: taken by open, close and destroy. */
  readonly bdMutex: Mutex;
  /** Woken after every close and destroy; wait here for "<name> to have no openers". */
  readonly openersChanged: WaitQueue;
  /** Woken whenever a bio of this disk completes. */
  readonly completions: WaitQueue;
  /** Opt-in sync_blockdev() at last close (a buffered opener left dirty data): flush under bd_mutex. */
  syncOnLastClose = false;
  /** Bios submitted and not yet ended. */
  inflight = 0;
  private openEntries: Array<{ holder: Holder; exclusive: boolean }> = [];
  private deadFlag = false;

  constructor(env: Env, options: AddDiskOptions) {
    this.name = options.name;
    this.major = options.major;
    this.minor = options.minor;
    this.readOnly = options.readOnly ?? false;
    this.driver = options.driver;
    this.private = options.private;
    this.capacitySectors = options.capacitySectors;
    this.bdMutex = env.mutex(`bd_mutex(${options.name})`);
    this.openersChanged = env.waitQueue(`${options.name} openers`);
    this.completions = env.waitQueue(`${options.name} completions`);
  }

  /** True once the disk was destroyed (del_gendisk). */
  get dead(): boolean {
    return this.deadFlag;
  }

  /** Current openers, one entry per open (a holder that opened twice appears twice). */
  openers(): Holder[] {
    return this.openEntries.map((e) => e.holder);
  }

  /** The holder of an exclusive (FMODE_EXCL) open, while one lasts. */
  get exclusiveOwner(): Holder | undefined {
    return this.openEntries.find((e) => e.exclusive)?.holder;
  }

  /** Wait options naming the openers as holders: "tapdev0 to have no openers → held by blkback ...". */
  noOpenersWait(label: string = this.name): Pick<WaitOptions, 'what' | 'holders'> {
    return { what: `${label} to have no openers`, holders: () => [...new Set(this.openers())] };
  }

  /** @internal the block layer's bookkeeping */
  admit(holder: Holder, exclusive: boolean): void {
    this.bdOpeners++;
    this.openEntries.push({ holder, exclusive });
  }

  /** @internal drops the holder's most recent open */
  dropOpener(holder: Holder, op: string): void {
    let i = this.openEntries.length - 1;
    while (i >= 0 && this.openEntries[i]!.holder !== holder) i--;
    if (i < 0) throw new KernelError('EINVAL', `${op} ${this.name}: "${holder.label}" has not opened it`);
    this.openEntries.splice(i, 1);
    this.bdOpeners--;
  }

  /** @internal */
  markDead(): void {
    this.deadFlag = true;
  }
}

export interface BlockDeviceInfo {
  name: string;
  major: number;
  minor: number;
  capacitySectors: number;
  readOnly: boolean;
  bdOpeners: number;
  openers: string[];
  inflight: number;
}

export class BlockLayer {
  private readonly majors = new Map<number, string>();
  private readonly disks = new Map<string, BlockDevice>();
  /** Woken by every add_disk (the "add" uevent udev waits for before /dev/<name> appears). */
  readonly diskAdded: WaitQueue;

  constructor(
    private readonly env: Env,
    private readonly waits: KernelWaits,
  ) {
    this.diskAdded = env.waitQueue('add_disk');
  }

  /** register_blkdev(): major 0 asks for a dynamic one (254 downwards); returns the major. */
  registerBlkdev(major: number, name: string): number {
    if (!Number.isInteger(major) || major < 0 || major >= BLKDEV_MAJOR_MAX) {
      throw new KernelError(
        'EINVAL',
        `register_blkdev ${name}: major ${major} outside 0..${BLKDEV_MAJOR_MAX - 1}`,
      );
    }
    if (major === 0) {
      for (let m = BLKDEV_MAJOR_MAX - 1; m > 0; m--) {
        if (!this.majors.has(m)) {
          major = m;
          break;
        }
      }
      if (major === 0) throw new KernelError('EBUSY', `register_blkdev ${name}: no free major`);
    } else if (this.majors.has(major)) {
      throw new KernelError(
        'EBUSY',
        `register_blkdev ${name}: major ${major} is "${this.majors.get(major)}"`,
      );
    }
    this.majors.set(major, name);
    return major;
  }

  /** The registered block majors (register_blkdev), ascending: what /proc/devices lists. */
  majorList(): { major: number; name: string }[] {
    return [...this.majors].map(([major, name]) => ({ major, name })).sort((a, b) => a.major - b.major);
  }

  unregisterBlkdev(major: number, name: string): void {
    if (this.majors.get(major) !== name) {
      throw new KernelError('EINVAL', `unregister_blkdev ${name}: major ${major} is not registered to it`);
    }
    this.majors.delete(major);
  }

  /** alloc_disk + add_disk: the major must be registered; name and number must be free (EEXIST). */
  addDisk(options: AddDiskOptions): BlockDevice {
    const { name, major, minor, capacitySectors } = options;
    if (!this.majors.has(major))
      throw new KernelError('EINVAL', `add_disk ${name}: major ${major} is not registered`);
    if (!Number.isInteger(minor) || minor < 0 || minor > 0xfffff) {
      throw new KernelError('EINVAL', `add_disk ${name}: minor ${minor}`);
    }
    if (!Number.isSafeInteger(capacitySectors) || capacitySectors < 0) {
      throw new KernelError('EINVAL', `add_disk ${name}: capacitySectors ${capacitySectors}`);
    }
    if (this.disks.has(name)) throw new KernelError('EEXIST', `add_disk ${name}: name in use`);
    const other = this.lookup(major, minor);
    if (other !== undefined)
      throw new KernelError('EEXIST', `add_disk ${name}: ${major}:${minor} is ${other.name}`);
    const bdev = new BlockDevice(this.env, options);
    this.disks.set(name, bdev);
    this.env.trace.emit('block', 'add_disk', { disk: name, major, minor, sectors: capacitySectors });
    this.diskAdded.wakeAll();
    return bdev;
  }

  lookup(major: number, minor: number): BlockDevice | undefined {
    for (const d of this.disks.values()) if (d.major === major && d.minor === minor) return d;
    return undefined;
  }

  byName(name: string): BlockDevice | undefined {
    return this.disks.get(name);
  }

  /** blkdev_get(): takes bd_mutex (uninterruptibly), runs the driver's open, counts the opener. */
  async open(
    target: BlockDevice | { major: number; minor: number },
    holder: Holder,
    mode: OpenMode = {},
  ): Promise<BlockDevice> {
    const bdev = target instanceof BlockDevice ? target : this.lookup(target.major, target.minor);
    if (bdev === undefined) {
      throw new KernelError(
        'ENXIO',
        `blkdev_get ${target.major}:${target.minor} for ${holder.label}: no such disk`,
      );
    }
    const op = `blkdev_get ${bdev.name} for ${holder.label}`;
    if (mode.exclusive && bdev.exclusiveOwner !== undefined && bdev.exclusiveOwner !== holder) {
      throw new KernelError('EBUSY', `${op}: claimed exclusively by ${bdev.exclusiveOwner.label}`);
    }
    // Simplification: refused at open (later kernels); 3.x only warned at the first write.
    if (mode.write && bdev.readOnly) throw new KernelError('EROFS', `${op}: disk is read-only`);
    await this.waits.lock(bdev.bdMutex, `bd_mutex of ${bdev.name} (open)`);
    try {
      if (bdev.dead) throw new KernelError('ENXIO', `${op}: disk was deleted`);
      if (mode.exclusive && bdev.exclusiveOwner !== undefined && bdev.exclusiveOwner !== holder) {
        throw new KernelError('EBUSY', `${op}: claimed exclusively by ${bdev.exclusiveOwner.label}`);
      }
      await bdev.driver.open?.(bdev, holder);
      bdev.admit(holder, mode.exclusive ?? false);
    } finally {
      bdev.bdMutex.unlock();
    }
    this.env.trace.emit('block', 'open', { disk: bdev.name, holder: holder.label, openers: bdev.bdOpeners });
    return bdev;
  }

  /** blkdev_put(): under bd_mutex, drops the opener, syncs at the last close if asked, calls release. */
  async close(bdev: BlockDevice, holder: Holder): Promise<void> {
    await this.waits.lock(bdev.bdMutex, `bd_mutex of ${bdev.name} (close)`);
    try {
      bdev.dropOpener(holder, 'blkdev_put');
      if (bdev.bdOpeners === 0 && bdev.syncOnLastClose && !bdev.dead) {
        try {
          await this.submitAndWait(bdev, 'flush', 0, NO_DATA);
        } catch (e) {
          if (!(e instanceof KernelError)) throw e;
          this.env.trace.log('block', `${bdev.name}: flush on last close failed: ${e.code}`);
        }
      }
      await bdev.driver.release?.(bdev, holder);
    } finally {
      bdev.bdMutex.unlock();
    }
    this.env.trace.emit('block', 'close', { disk: bdev.name, holder: holder.label, openers: bdev.bdOpeners });
    bdev.openersChanged.wakeAll();
  }

  /**
   * Destroy without sleeping (what blktap's device destroy does): EBUSY when bd_mutex is held (the C3
   * fix: trylock) or while the device is open; otherwise the disk is deleted.
   */
  tryDestroy(bdev: BlockDevice): void {
    if (bdev.dead) throw new KernelError('ENXIO', `destroy ${bdev.name}: already deleted`);
    if (!bdev.bdMutex.tryLock()) {
      throw new KernelError(
        'EBUSY',
        `destroy ${bdev.name}: bd_mutex held by ${bdev.bdMutex.owner?.label ?? '?'}`,
      );
    }
    try {
      this.deleteLocked(bdev);
    } finally {
      bdev.bdMutex.unlock();
    }
    bdev.openersChanged.wakeAll();
  }

  /** Destroy taking bd_mutex (uninterruptibly); EBUSY while the device is open. */
  async destroy(bdev: BlockDevice): Promise<void> {
    if (bdev.dead) throw new KernelError('ENXIO', `destroy ${bdev.name}: already deleted`);
    await this.waits.lock(bdev.bdMutex, `bd_mutex of ${bdev.name} (destroy)`);
    try {
      if (bdev.dead) throw new KernelError('ENXIO', `destroy ${bdev.name}: already deleted`);
      this.deleteLocked(bdev);
    } finally {
      bdev.bdMutex.unlock();
    }
    bdev.openersChanged.wakeAll();
  }

  /**
   * submit_bio(). Malformed bios (a bug in the caller) throw EINVAL naming the field; runtime failures
   * complete the bio with a negative errno (beyond the end of the device or a deleted disk: -EIO).
   */
  submit(bdev: BlockDevice, bio: Bio): void {
    let ended = false;
    const end = (error: number): void => {
      if (ended) throw new Error(`bio ${bio.op} at sector ${bio.sector} on ${bdev.name}: ended twice`);
      if (!Number.isInteger(error) || error > 0) {
        throw new Error(
          `bio ${bio.op} at sector ${bio.sector} on ${bdev.name}: end(${error}) is not 0 or -errno`,
        );
      }
      ended = true;
      bdev.inflight--;
      bio.end(error);
      bdev.completions.wakeAll();
    };
    const sectors = checkBio(bdev, bio);
    const tracked: Bio = { op: bio.op, sector: bio.sector, vecs: bio.vecs, sectors: bio.sectors, end };
    bdev.inflight++;
    if (bdev.dead) {
      end(-ERRNO.EIO);
      return;
    }
    if (bio.sector + sectors > bdev.capacitySectors) {
      this.env.trace.log(
        'block',
        `attempt to access beyond end of device ${bdev.name}: sector ${bio.sector}+${sectors} > ${bdev.capacitySectors}`,
      );
      end(-ERRNO.EIO);
      return;
    }
    if (bio.op !== 'read' && bio.op !== 'flush' && bdev.readOnly) {
      this.env.trace.log('block', `${bdev.name}: ${bio.op} to read-only device refused`);
      end(-ERRNO.EIO);
      return;
    }
    bdev.driver.submit(bdev, tracked);
  }

  /**
   * submit_bio_wait() of a kernel buffer (bio_map_kern: one vec per page of `data`): submits and waits
   * uninterruptibly; a failed bio throws its errno.
   */
  async submitAndWait(
    bdev: BlockDevice,
    op: BioOp,
    sector: number,
    data: Uint8Array,
    sectors?: number,
  ): Promise<void> {
    let result: number | undefined;
    const bio: Bio = {
      op,
      sector,
      vecs: pageVecs(data),
      ...(sectors === undefined ? {} : { sectors }),
      end: (e) => (result = e),
    };
    this.submit(bdev, bio);
    const count = bioSectors(bio);
    await this.waits.waitUninterruptible(bdev.completions, () => result !== undefined, {
      what: `${op} of ${count} sectors at ${sector} on ${bdev.name}`,
      holders: () => bdev.driver.ioHolders?.(bdev) ?? [],
    });
    if (result !== 0) {
      throw new KernelError(
        errnoName(result!),
        `${op} of ${count} sectors at sector ${sector} on ${bdev.name}`,
      );
    }
  }

  list(): BlockDeviceInfo[] {
    return [...this.disks.values()]
      .map((d) => ({
        name: d.name,
        major: d.major,
        minor: d.minor,
        capacitySectors: d.capacitySectors,
        readOnly: d.readOnly,
        bdOpeners: d.bdOpeners,
        openers: d.openers().map((h) => h.label),
        inflight: d.inflight,
      }))
      .sort((a, b) => a.major - b.major || a.minor - b.minor);
  }

  private deleteLocked(bdev: BlockDevice): void {
    if (bdev.bdOpeners > 0) {
      const who = [...new Set(bdev.openers().map((h) => h.label))].join(', ');
      throw new KernelError('EBUSY', `destroy ${bdev.name}: ${bdev.bdOpeners} opener(s): ${who}`);
    }
    bdev.markDead();
    this.disks.delete(bdev.name);
    this.env.trace.emit('block', 'del_gendisk', { disk: bdev.name });
  }
}

const NO_DATA = new Uint8Array(0);

/**
 * The vecs of a kernel buffer, split at the page boundaries of its ArrayBuffer (bio_map_kern); an empty
 * buffer gives none. Simplification: a buffer not on a 512-byte boundary is split every 4 KiB from its
 * start instead (Linux would bounce it), so each vec stays a multiple of 512 when the length is.
 */
export function pageVecs(data: Uint8Array): Uint8Array[] {
  const vecs: Uint8Array[] = [];
  const len = data.length;
  if (len === 0) return vecs;
  const misalign = data.byteOffset % SECTOR_SIZE === 0 ? data.byteOffset % BIO_VEC_MAX_BYTES : 0;
  let at = 0;
  let next = Math.min(len, BIO_VEC_MAX_BYTES - misalign);
  while (at < len) {
    vecs.push(data.subarray(at, next));
    at = next;
    next = Math.min(len, at + BIO_VEC_MAX_BYTES);
  }
  return vecs;
}

/** Bytes the vecs of a bio carry (bi_iter.bi_size of a read or write). */
export function bioBytes(bio: Pick<Bio, 'vecs'>): number {
  let n = 0;
  for (const v of bio.vecs) n += v.length;
  return n;
}

/** Number of sectors a bio covers. */
export function bioSectors(bio: Pick<Bio, 'op' | 'vecs' | 'sectors'>): number {
  if (bio.op === 'discard') return bio.sectors ?? 0;
  return bioBytes(bio) / SECTOR_SIZE;
}

/** Validates a bio from its caller and returns the sectors it covers; a malformed one throws EINVAL. */
function checkBio(bdev: BlockDevice, bio: Bio): number {
  const where = `bio on ${bdev.name}`;
  if (!BIO_OPS.includes(bio.op)) throw new KernelError('EINVAL', `${where}: op "${String(bio.op)}"`);
  if (!Number.isSafeInteger(bio.sector) || bio.sector < 0) {
    throw new KernelError('EINVAL', `${where}: sector ${bio.sector}`);
  }
  if (!Array.isArray(bio.vecs)) throw new KernelError('EINVAL', `${where}: vecs is not an array`);
  let bytes = 0;
  for (let i = 0; i < bio.vecs.length; i++) {
    const v: unknown = bio.vecs[i];
    if (!(v instanceof Uint8Array))
      throw new KernelError('EINVAL', `${where}: vecs[${i}] is not a Uint8Array`);
    if (v.length === 0 || v.length > BIO_VEC_MAX_BYTES || v.length % SECTOR_SIZE !== 0) {
      throw new KernelError(
        'EINVAL',
        `${where}: vecs[${i}] length ${v.length} (must be a multiple of ${SECTOR_SIZE}, ${SECTOR_SIZE}..${BIO_VEC_MAX_BYTES})`,
      );
    }
    bytes += v.length;
  }
  if ((bio.op === 'read' || bio.op === 'write') && bytes === 0) {
    throw new KernelError('EINVAL', `${where}: ${bio.op} with no data`);
  }
  if ((bio.op === 'flush' || bio.op === 'discard') && bio.vecs.length !== 0) {
    throw new KernelError('EINVAL', `${where}: ${bio.op} carries ${bio.vecs.length} vec(s) of data`);
  }
  if (bio.op === 'discard' && (!Number.isSafeInteger(bio.sectors) || bio.sectors! <= 0)) {
    throw new KernelError('EINVAL', `${where}: discard sectors ${bio.sectors}`);
  }
  if (typeof bio.end !== 'function') throw new KernelError('EINVAL', `${where}: end is not a function`);
  return bio.op === 'discard' ? bio.sectors! : bytes / SECTOR_SIZE;
}
