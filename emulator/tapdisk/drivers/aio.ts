/**
 * tapdisk's `aio` driver (block-aio.c): a raw image file or block device, size from stat, sector size
 * 512. Reads and writes go straight between the file and the request's pages; a request's adjacent
 * segments go in one preadv/pwritev, as io-optimize merges them. Errors are the real ones (ENOENT for
 * a missing file, EACCES, EISDIR...).
 * Simplification: synchronous node:fs calls at completion time instead of Linux AIO with O_DIRECT; a
 * write is in the file when it is acknowledged, and flush/close fsync.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readvSync, writevSync } from 'node:fs';
import { KernelError } from '../../kernel/errno.js';
import { fsError } from './fs-errors.js';
import type { ImageDriver, ImageOpenFlags, TdDiskInfo } from './image-driver.js';

const SECTOR = 512;
/** Linux UIO_MAXIOV: the most iovecs one preadv/pwritev takes. */
const IOV_MAX = 1024;

export class AioImage implements ImageDriver {
  readonly type = 'aio';
  readonly info: TdDiskInfo;
  private fd: number | undefined;

  constructor(
    readonly path: string,
    flags: ImageOpenFlags,
    readonly latencyMs: number,
  ) {
    try {
      this.fd = openSync(path, flags.readOnly ? 'r' : 'r+');
    } catch (e) {
      throw fsError(e, `aio open ${path}`);
    }
    try {
      const st = fstatSync(this.fd);
      if (st.isDirectory()) throw new KernelError('EISDIR', `aio open ${path}`);
      this.info = { sectors: Math.floor(st.size / SECTOR), sectorSize: SECTOR, info: 0 };
    } catch (e) {
      closeSync(this.fd);
      this.fd = undefined;
      throw e instanceof KernelError ? e : fsError(e, `aio stat ${path}`);
    }
  }

  private handle(op: string): number {
    if (this.fd === undefined) throw new KernelError('EBADF', `aio ${op} ${this.path}: closed`);
    return this.fd;
  }

  read(sector: number, into: Uint8Array): void {
    this.readv(sector, [into]);
  }

  write(sector: number, from: Uint8Array): void {
    this.writev(sector, [from]);
  }

  /** preadv until every byte is in; past the end of the file reads as zeros (a short read). */
  readv(sector: number, into: readonly Uint8Array[]): void {
    const fd = this.handle('read');
    let pos = sector * SECTOR;
    let rest = nonEmpty(into);
    try {
      while (rest.length > 0) {
        const batch = rest.length > IOV_MAX ? rest.slice(0, IOV_MAX) : rest;
        const n = readvSync(fd, batch, pos);
        if (n === 0) break;
        pos += n;
        rest = consumed(rest, n);
      }
    } catch (e) {
      throw fsError(e, `aio read ${this.path} sector ${sector}`);
    }
    for (const buf of rest) buf.fill(0);
  }

  /** pwritev until every byte is out (a short write goes on from where it stopped). */
  writev(sector: number, from: readonly Uint8Array[]): void {
    const fd = this.handle('write');
    let pos = sector * SECTOR;
    let rest = nonEmpty(from);
    try {
      while (rest.length > 0) {
        const batch = rest.length > IOV_MAX ? rest.slice(0, IOV_MAX) : rest;
        const n = writevSync(fd, batch, pos);
        if (n === 0) throw new KernelError('EIO', `pwritev at byte ${pos} wrote nothing`);
        pos += n;
        rest = consumed(rest, n);
      }
    } catch (e) {
      throw fsError(e, `aio write ${this.path} sector ${sector}`);
    }
  }

  flush(): void {
    try {
      fsyncSync(this.handle('fsync'));
    } catch (e) {
      throw e instanceof KernelError ? e : fsError(e, `aio fsync ${this.path}`);
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

function nonEmpty(bufs: readonly Uint8Array[]): readonly Uint8Array[] {
  return bufs.every((b) => b.length > 0) ? bufs : bufs.filter((b) => b.length > 0);
}

/** The part of `bufs` left after the first `n` bytes were moved (the first view trimmed). */
function consumed(bufs: readonly Uint8Array[], n: number): readonly Uint8Array[] {
  let i = 0;
  while (i < bufs.length && n >= bufs[i]!.length) n -= bufs[i++]!.length;
  if (i === bufs.length) return [];
  const rest = bufs.slice(i);
  if (n > 0) rest[0] = rest[0]!.subarray(n);
  return rest;
}
