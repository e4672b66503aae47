/**
 * tapdisk's `ram` driver (block-ram.c): the whole image file is read into memory at open (at most
 * 1,024,000 sectors, else ENOMEM); reads and writes touch memory only and are never written back.
 * Simplification: each ram disk has its own buffer (the real driver shares one global buffer).
 */
import { readFileSync, statSync } from 'node:fs';
import { KernelError } from '../../kernel/errno.js';
import { fsError } from './fs-errors.js';
import type { ImageDriver, TdDiskInfo } from './image-driver.js';

const SECTOR = 512;
/** block-ram.c MAX_DISK_SIZE, in sectors. */
export const RAM_MAX_SECTORS = 1_024_000;

export class RamImage implements ImageDriver {
  readonly type = 'ram';
  readonly info: TdDiskInfo;
  private image: Uint8Array | undefined;

  constructor(
    readonly path: string,
    readonly latencyMs: number,
  ) {
    let size: number;
    try {
      size = statSync(path).size;
    } catch (e) {
      throw fsError(e, `ram open ${path}`);
    }
    const sectors = Math.floor(size / SECTOR);
    if (sectors > RAM_MAX_SECTORS) {
      throw new KernelError('ENOMEM', `ram open ${path}: ${sectors} sectors exceed ${RAM_MAX_SECTORS}`);
    }
    try {
      this.image = new Uint8Array(readFileSync(path)).subarray(0, sectors * SECTOR);
    } catch (e) {
      throw fsError(e, `ram read ${path}`);
    }
    this.info = { sectors, sectorSize: SECTOR, info: 0 };
  }

  private mem(op: string): Uint8Array {
    if (this.image === undefined) throw new KernelError('EBADF', `ram ${op} ${this.path}: closed`);
    return this.image;
  }

  read(sector: number, into: Uint8Array): void {
    const m = this.mem('read');
    into.set(m.subarray(sector * SECTOR, sector * SECTOR + into.length));
  }

  write(sector: number, from: Uint8Array): void {
    this.mem('write').set(from, sector * SECTOR);
  }

  readv(sector: number, into: readonly Uint8Array[]): void {
    for (const buf of into) {
      this.read(sector, buf);
      sector += buf.length / SECTOR;
    }
  }

  writev(sector: number, from: readonly Uint8Array[]): void {
    for (const buf of from) {
      this.write(sector, buf);
      sector += buf.length / SECTOR;
    }
  }

  flush(): void {}

  close(): void {
    this.image = undefined;
  }
}
