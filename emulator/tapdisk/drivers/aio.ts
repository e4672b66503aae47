/**
 * tapdisk's `aio` driver (block-aio.c): a raw image file or block device, size from stat, sector size
 * 512. Reads and writes go straight between the file and the request's pages. Errors are the real ones
 * (ENOENT for a missing file, EACCES, EISDIR...).
 * Simplification: synchronous node:fs calls at completion time instead of Linux AIO with O_DIRECT; a
 * write is in the file when it is acknowledged, and flush/close fsync.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { KernelError } from '../../kernel/errno.js';
import { fsError } from './fs-errors.js';
import type { ImageDriver, ImageOpenFlags, TdDiskInfo } from './image-driver.js';

const SECTOR = 512;

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
    const fd = this.handle('read');
    try {
      const n = readSync(fd, into, 0, into.length, sector * SECTOR);
      if (n < into.length) into.fill(0, n);
    } catch (e) {
      throw fsError(e, `aio read ${this.path} sector ${sector}`);
    }
  }

  write(sector: number, from: Uint8Array): void {
    const fd = this.handle('write');
    try {
      let done = 0;
      while (done < from.length)
        done += writeSync(fd, from, done, from.length - done, sector * SECTOR + done);
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
