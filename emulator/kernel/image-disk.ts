/**
 * A plain block device for the `phy` path: a disk backed by a memory buffer or an image file (synchronous
 * node:fs calls, run by the disk's own I/O thread), with a configurable service latency and fault hooks
 * that scenarios set (fail with an errno, slow down).
 * Simplification: one I/O thread serves bios in FIFO order, each taking the latency; discard zeroes.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readvSync, writevSync } from 'node:fs';
import type { Env, Holder, Millis, WaitQueue } from '../runtime/engine.js';
import {
  type Bio,
  type BioOp,
  type BlockDevice,
  type BlockDriver,
  type BlockLayer,
  bioSectors,
  SECTOR_SIZE,
} from './block-device.js';
import { ERRNO, type ErrnoName, KernelError } from './errno.js';

export type ImageBacking =
  | { kind: 'memory'; sizeBytes: number }
  | { kind: 'memory'; bytes: Uint8Array }
  | { kind: 'file'; path: string };

export interface ImageDiskOptions {
  name: string;
  major: number;
  minor: number;
  backing: ImageBacking;
  readOnly?: boolean;
  /** Service time of each bio, in ms (a plain env.sleep). */
  latencyMs?: Millis;
}

/** A fault a scenario injects: matching bios complete with `error` instead of touching the image. */
export interface BlockFault {
  error?: ErrnoName;
  /** Which ops fail (default: read and write). */
  ops?: readonly BioOp[];
  /** Only bios overlapping [fromSector, toSector) fail (default: all). */
  fromSector?: number;
  toSector?: number;
  /** Fail this many matching bios, then clear the fault (default: until cleared). */
  count?: number;
  /** Let this many matching bios through before the first failure (default 0). */
  after?: number;
}

interface Store {
  /** Scatter the bytes at `offset` into the vecs, in order (preadv). */
  read(offset: number, into: readonly Uint8Array[]): void;
  /** Gather the vecs to `offset` (pwritev). */
  write(offset: number, from: readonly Uint8Array[]): void;
  zero(offset: number, length: number): void;
  flush(): void;
  close(): void;
  readonly sizeBytes: number;
}

export class ImageDisk implements BlockDriver {
  readonly bdev: BlockDevice;
  private readonly queue: Bio[] = [];
  private readonly queueWake: WaitQueue;
  private readonly store: Store;
  private latency: Millis;
  private slowdown = 1;
  private fault: BlockFault | undefined;
  private disposed = false;
  /** The I/O thread, the holder of every wait for this disk's completions. */
  private readonly worker: Holder;

  constructor(
    private readonly env: Env,
    blockLayer: BlockLayer,
    options: ImageDiskOptions,
  ) {
    this.latency = checkLatency(options.name, options.latencyMs ?? 0);
    this.store = openStore(options);
    this.queueWake = env.waitQueue(`${options.name} request queue`);
    try {
      this.bdev = blockLayer.addDisk({
        name: options.name,
        major: options.major,
        minor: options.minor,
        capacitySectors: Math.floor(this.store.sizeBytes / SECTOR_SIZE),
        readOnly: options.readOnly ?? false,
        driver: this,
      });
    } catch (e) {
      this.store.close();
      throw e;
    }
    this.worker = env.spawn(`${options.name}-io`, () => this.serve(), {
      daemon: true,
      component: 'image-disk',
    });
  }

  /** Service time per bio from now on. */
  setLatency(ms: Millis): void {
    this.latency = checkLatency(this.bdev.name, ms);
  }

  /** Multiplies the latency (a slow disk); 1 is normal. */
  setSlowdown(factor: number): void {
    if (!Number.isFinite(factor) || factor < 0) {
      throw new KernelError('EINVAL', `${this.bdev.name}: slowdown factor ${factor}`);
    }
    this.slowdown = factor;
  }

  /** Injects a fault (undefined clears it). */
  setFault(fault: BlockFault | undefined): void {
    if (fault !== undefined) {
      if (fault.count !== undefined && (!Number.isInteger(fault.count) || fault.count <= 0)) {
        throw new KernelError('EINVAL', `${this.bdev.name}: fault count ${fault.count}`);
      }
      if (fault.after !== undefined && (!Number.isInteger(fault.after) || fault.after < 0)) {
        throw new KernelError('EINVAL', `${this.bdev.name}: fault after ${fault.after}`);
      }
      const error = fault.error ?? 'EIO';
      if (!Object.hasOwn(ERRNO, error))
        throw new KernelError('EINVAL', `${this.bdev.name}: fault error ${error}`);
    }
    this.fault = fault === undefined ? undefined : { ...fault };
  }

  /** Bios queued and not yet served. */
  get queued(): number {
    return this.queue.length;
  }

  submit(_bdev: BlockDevice, bio: Bio): void {
    this.queue.push(bio);
    this.queueWake.wakeAll();
  }

  ioHolders(): readonly Holder[] {
    return [this.worker];
  }

  /** Stops the I/O thread once the queue drains and closes the image; the disk must be destroyed first. */
  dispose(): void {
    if (!this.bdev.dead) throw new KernelError('EBUSY', `dispose ${this.bdev.name}: disk not destroyed yet`);
    this.disposed = true;
    this.queueWake.wakeAll();
  }

  private async serve(): Promise<void> {
    for (;;) {
      await this.env.wait(this.queueWake, () => this.queue.length > 0 || this.disposed, {
        what: `bios for ${this.bdev.name}`,
      });
      const bio = this.queue.shift();
      if (bio === undefined) {
        this.store.close();
        return;
      }
      const delay = this.latency * this.slowdown;
      if (delay > 0) await this.env.sleep(delay, { what: `${this.bdev.name} service time` });
      bio.end(this.perform(bio));
    }
  }

  private perform(bio: Bio): number {
    const failure = this.matchFault(bio);
    if (failure !== undefined) {
      this.env.trace.emit('image-disk', 'fault', {
        disk: this.bdev.name,
        op: bio.op,
        sector: bio.sector,
        error: failure,
      });
      return -ERRNO[failure];
    }
    const offset = bio.sector * SECTOR_SIZE;
    try {
      switch (bio.op) {
        case 'read':
          this.store.read(offset, bio.vecs);
          break;
        case 'write':
          this.store.write(offset, bio.vecs);
          break;
        case 'flush':
          this.store.flush();
          break;
        case 'discard':
          this.store.zero(offset, bioSectors(bio) * SECTOR_SIZE);
          break;
      }
      return 0;
    } catch (e) {
      this.env.trace.log(
        'image-disk',
        `${this.bdev.name}: ${bio.op} at sector ${bio.sector} failed: ${String(e)}`,
      );
      return -ERRNO.EIO;
    }
  }

  private matchFault(bio: Bio): ErrnoName | undefined {
    const f = this.fault;
    if (f === undefined) return undefined;
    if (!(f.ops ?? ['read', 'write']).includes(bio.op)) return undefined;
    const end = bio.sector + Math.max(1, bioSectors(bio));
    if (bio.sector >= (f.toSector ?? Number.POSITIVE_INFINITY) || end <= (f.fromSector ?? 0))
      return undefined;
    if (f.after !== undefined && f.after > 0) {
      f.after--;
      return undefined;
    }
    if (f.count !== undefined && --f.count === 0) this.fault = undefined;
    return f.error ?? 'EIO';
  }
}

function checkLatency(name: string, ms: Millis): Millis {
  if (!Number.isFinite(ms) || ms < 0) throw new KernelError('EINVAL', `${name}: latencyMs ${ms}`);
  return ms;
}

function openStore(options: ImageDiskOptions): Store {
  const { backing, name } = options;
  if (backing.kind === 'memory') {
    let bytes: Uint8Array;
    if ('bytes' in backing) bytes = backing.bytes;
    else {
      if (!Number.isSafeInteger(backing.sizeBytes) || backing.sizeBytes < 0) {
        throw new KernelError('EINVAL', `${name}: sizeBytes ${backing.sizeBytes}`);
      }
      bytes = new Uint8Array(backing.sizeBytes);
    }
    if (bytes.length % SECTOR_SIZE !== 0) {
      throw new KernelError('EINVAL', `${name}: size ${bytes.length} is not a multiple of ${SECTOR_SIZE}`);
    }
    return {
      sizeBytes: bytes.length,
      read: (offset, into) => {
        let at = offset;
        for (const v of into) {
          v.set(bytes.subarray(at, at + v.length));
          at += v.length;
        }
      },
      write: (offset, from) => {
        let at = offset;
        for (const v of from) {
          bytes.set(v, at);
          at += v.length;
        }
      },
      zero: (offset, length) => bytes.fill(0, offset, offset + length),
      flush: () => {},
      close: () => {},
    };
  }
  let fd: number;
  try {
    fd = openSync(backing.path, options.readOnly ? 'r' : 'r+');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new KernelError(
      Object.hasOwn(ERRNO, code) ? (code as ErrnoName) : 'EIO',
      `${name}: open image ${backing.path}`,
    );
  }
  const sizeBytes = fstatSync(fd).size;
  const write = (offset: number, from: readonly Uint8Array[]): void => {
    let rest = from;
    let at = offset;
    while (rest.length > 0) {
      const n = writevSync(fd, rest as Uint8Array[], at);
      at += n;
      rest = remainingVecs(rest, n);
    }
  };
  return {
    sizeBytes,
    read: (offset, into) => {
      let rest = into;
      let at = offset;
      while (rest.length > 0) {
        const n = readvSync(fd, rest as Uint8Array[], at);
        if (n === 0) {
          for (const v of rest) v.fill(0); // past the end of a sparse or short image
          return;
        }
        at += n;
        rest = remainingVecs(rest, n);
      }
    },
    write,
    zero: (offset, length) => {
      const zeros = new Uint8Array(Math.min(length, 1 << 20));
      for (let at = 0; at < length; at += zeros.length) {
        write(offset + at, [zeros.subarray(0, Math.min(zeros.length, length - at))]);
      }
    },
    flush: () => fsyncSync(fd),
    close: () => closeSync(fd),
  };
}

/** What a short preadv/pwritev left: the vecs after the first `done` bytes. */
function remainingVecs(vecs: readonly Uint8Array[], done: number): readonly Uint8Array[] {
  let i = 0;
  while (i < vecs.length && done >= vecs[i]!.length) done -= vecs[i++]!.length;
  if (i === vecs.length) return [];
  return done === 0 ? vecs.slice(i) : [vecs[i]!.subarray(done), ...vecs.slice(i + 1)];
}
