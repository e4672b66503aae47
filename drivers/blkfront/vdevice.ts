/**
 * The guest's name for a vbd from its `virtual-device` number (Linux xlvbd_alloc_gendisk /
 * xen_translate_vdev for the xvd scheme; docs/man/xen-vbd-interface.7): 202<<8 | disk<<4 | part, or
 * the extended 1<<28 | disk<<8 | part. Names: xvda..xvdz, xvdaa.. (encode_disk_name).
 * Simplification: only the xvd scheme (no sd/hd emulation majors); partitions are refused.
 */

/** XENVBD_MAJOR */
export const XENVBD_MAJOR = 202;
const EXTENDED = 1 << 28;
/** Linux PARTS_PER_DISK for the xvd major, PARTS_PER_EXT_DISK for the extended scheme. */
export const PARTS_PER_DISK = 16;
export const PARTS_PER_EXT_DISK = 256;

export interface Vdevice {
  /** xvda, xvdb, ... */
  name: string;
  disk: number;
  /** First minor of the disk (disk * parts). */
  minor: number;
}

/** encode_disk_name: 0 → a, 25 → z, 26 → aa. */
export function diskLetters(index: number): string {
  let n = index;
  let s = '';
  do {
    s = String.fromCharCode(97 + (n % 26)) + s;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return s;
}

/** Decode a virtual-device number; a precise error for anything blkfront cannot attach. */
export function decodeVdevice(vdevice: number): Vdevice | { error: string } {
  if (!Number.isInteger(vdevice) || vdevice < 0)
    return { error: `virtual-device ${vdevice} is not a number` };
  let disk: number;
  let part: number;
  let parts: number;
  if (vdevice & EXTENDED) {
    if (vdevice >= 2 * EXTENDED) return { error: `virtual-device ${vdevice} is in the reserved range` };
    disk = (vdevice >> 8) & 0xfffff;
    part = vdevice & 0xff;
    parts = PARTS_PER_EXT_DISK;
  } else {
    if (vdevice >> 8 !== XENVBD_MAJOR) {
      return {
        error: `virtual-device ${vdevice} is not an xvd device (major ${vdevice >> 8}, want ${XENVBD_MAJOR})`,
      };
    }
    disk = (vdevice >> 4) & 0xf;
    part = vdevice & 0xf;
    parts = PARTS_PER_DISK;
  }
  if (part !== 0)
    return { error: `virtual-device ${vdevice} names partition ${part}; only whole disks are modelled` };
  return { name: `xvd${diskLetters(disk)}`, disk, minor: disk * parts };
}
