/**
 * File operations for names that are not character devices: block device nodes opened from user space
 * (each open is a blkdev_get by the process) and sysfs attributes (read = show, write = store).
 * Simplification: block device files do direct I/O only (sector-aligned offsets and lengths, no page cache).
 */
import type { Holder } from '../runtime/engine.js';
import { type BlockDevice, type BlockLayer, SECTOR_SIZE } from './block-device.js';
import { KernelError } from './errno.js';
import { File, type FileMode, type FileOps } from './file.js';
import type { Namespace } from './namespace.js';

/** open() of a block device node: blkdev_get for `opener`, blkdev_put at release. */
export async function openBlockFile(
  blocks: BlockLayer,
  path: string,
  major: number,
  minor: number,
  mode: FileMode & { exclusive?: boolean },
  opener: Holder,
): Promise<File> {
  const bdev = blocks.lookup(major, minor);
  if (bdev === undefined) throw new KernelError('ENXIO', `open ${path} (block ${major}:${minor})`);
  await blocks.open(bdev, opener, { write: mode.write, exclusive: mode.exclusive ?? false });
  const ops: FileOps = {
    describe: () => `${path} (${bdev.name})`,
    release: () => blocks.close(bdev, opener),
    read: async (file, request) => {
      const offset = request.offset ?? file.pos;
      checkAligned(path, offset, request.length);
      const available = Math.max(0, bdev.capacitySectors * SECTOR_SIZE - offset);
      const length = Math.min(request.length, available);
      if (length === 0) return null;
      const data = new Uint8Array(length);
      await blocks.submitAndWait(bdev, 'read', offset / SECTOR_SIZE, data);
      if (request.offset === undefined) file.pos += length;
      return data;
    },
    write: async (file, data, at) => {
      const offset = at ?? file.pos;
      checkAligned(path, offset, data.length);
      if (offset + data.length > bdev.capacitySectors * SECTOR_SIZE) {
        throw new KernelError(
          'ENOSPC',
          `write ${path}: ${data.length} bytes at ${offset} past the end of ${bdev.name}`,
        );
      }
      await blocks.submitAndWait(bdev, 'write', offset / SECTOR_SIZE, data);
      if (at === undefined) file.pos += data.length;
      return data.length;
    },
  };
  const file = new File(path, ops, mode, { major, minor });
  file.private = bdev satisfies BlockDevice;
  return file;
}

/** open() of a sysfs attribute. */
export function openAttributeFile(ns: Namespace, path: string, mode: FileMode): File {
  const ops: FileOps = {
    read: async (file) => {
      if (file.pos > 0) return null;
      const text = await ns.readAttribute(path);
      file.pos = 1;
      return new TextEncoder().encode(text);
    },
    write: async (_file, data) => {
      await ns.writeAttribute(path, new TextDecoder().decode(data));
      return data.length;
    },
  };
  return new File(path, ops, mode);
}

function checkAligned(path: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % SECTOR_SIZE !== 0) {
    throw new KernelError('EINVAL', `${path}: offset ${offset} is not a multiple of ${SECTOR_SIZE}`);
  }
  if (!Number.isSafeInteger(length) || length <= 0 || length % SECTOR_SIZE !== 0) {
    throw new KernelError('EINVAL', `${path}: length ${length} is not a positive multiple of ${SECTOR_SIZE}`);
  }
}
