/**
 * Character devices: register_chrdev_region/alloc_chrdev_region ranges, misc devices (major 10), and
 * chrdev_open() turning (major, minor) into an open File whose operations are the driver's.
 */
import type { Holder } from '../runtime/engine.js';
import { KernelError } from './errno.js';
import { File, type FileMode, type FileOps } from './file.js';

/** include/uapi/linux/major.h */
export const MISC_MAJOR = 10;
/** include/linux/miscdevice.h */
export const MISC_DYNAMIC_MINOR = 255;
/** drivers/char/misc.c: dynamic misc minors are handed out from 63 downwards. */
const DYNAMIC_MISC_MINORS = 64;
/** fs/char_dev.c CHRDEV_MAJOR_HASH_SIZE: dynamic majors are searched from 254 downwards. */
const CHRDEV_MAJOR_MAX = 255;

/** A character driver: file operations plus an `open` that may refuse (EBUSY, ENXIO). */
export interface CharDriver extends FileOps {
  open?(file: File, opener: Holder): void | Promise<void>;
}

interface Region {
  major: number;
  baseMinor: number;
  count: number;
  name: string;
  driver: CharDriver | undefined;
}

export interface CharDeviceInfo {
  major: number;
  baseMinor: number;
  count: number;
  name: string;
}

export class CharDevices {
  private readonly regions: Region[] = [];
  private readonly miscMinors = new Map<number, { name: string; driver: CharDriver }>();

  constructor() {
    this.regions.push({ major: MISC_MAJOR, baseMinor: 0, count: 256, name: 'misc', driver: undefined });
  }

  /**
   * register_chrdev_region() (major > 0) or alloc_chrdev_region() (major 0) followed by cdev_add():
   * returns the major. Overlapping an existing range gives EBUSY.
   */
  register(major: number, baseMinor: number, count: number, name: string, driver: CharDriver): number {
    checkInt('register_chrdev', 'major', major, 0, CHRDEV_MAJOR_MAX - 1);
    checkInt('register_chrdev', 'baseMinor', baseMinor, 0, 0xfffff);
    checkInt('register_chrdev', 'count', count, 1, 0x100000 - baseMinor);
    if (major === 0) {
      for (let m = CHRDEV_MAJOR_MAX - 1; m > 0; m--) {
        if (!this.regions.some((r) => r.major === m)) {
          major = m;
          break;
        }
      }
      if (major === 0) throw new KernelError('EBUSY', `alloc_chrdev_region ${name}: no free major`);
    }
    const clash = this.regions.find(
      (r) => r.major === major && r.baseMinor < baseMinor + count && baseMinor < r.baseMinor + r.count,
    );
    if (clash !== undefined) {
      throw new KernelError(
        'EBUSY',
        `register_chrdev ${name}: ${major}:${baseMinor}+${count} overlaps "${clash.name}" ${clash.major}:${clash.baseMinor}+${clash.count}`,
      );
    }
    this.regions.push({ major, baseMinor, count, name, driver });
    return major;
  }

  /** unregister_chrdev_region(): the range must be exactly one registered range. */
  unregister(major: number, baseMinor: number, count: number): void {
    const i = this.regions.findIndex(
      (r) => r.major === major && r.baseMinor === baseMinor && r.count === count && r.driver !== undefined,
    );
    if (i < 0)
      throw new KernelError('EINVAL', `unregister_chrdev ${major}:${baseMinor}+${count}: not registered`);
    this.regions.splice(i, 1);
  }

  /** misc_register(): returns the minor; MISC_DYNAMIC_MINOR picks one from 63 downwards. */
  miscRegister(name: string, minor: number, driver: CharDriver): number {
    checkInt('misc_register', 'minor', minor, 0, MISC_DYNAMIC_MINOR);
    if (minor === MISC_DYNAMIC_MINOR) {
      let found = -1;
      for (let m = DYNAMIC_MISC_MINORS - 1; m >= 0; m--) {
        if (!this.miscMinors.has(m)) {
          found = m;
          break;
        }
      }
      if (found < 0) throw new KernelError('EBUSY', `misc_register ${name}: no free dynamic minor`);
      minor = found;
    } else if (this.miscMinors.has(minor)) {
      throw new KernelError(
        'EBUSY',
        `misc_register ${name}: minor ${minor} is taken by "${this.miscMinors.get(minor)!.name}"`,
      );
    }
    this.miscMinors.set(minor, { name, driver });
    return minor;
  }

  miscDeregister(minor: number): void {
    if (!this.miscMinors.delete(minor)) throw new KernelError('EINVAL', `misc_deregister: minor ${minor}`);
  }

  /** The driver for a device number, or undefined. */
  lookup(major: number, minor: number): CharDriver | undefined {
    if (major === MISC_MAJOR) return this.miscMinors.get(minor)?.driver;
    return this.regions.find(
      (r) => r.major === major && minor >= r.baseMinor && minor < r.baseMinor + r.count,
    )?.driver;
  }

  /** chrdev_open(): ENXIO when no driver serves the number; the driver's open may refuse. */
  async open(path: string, major: number, minor: number, mode: FileMode, opener: Holder): Promise<File> {
    const driver = this.lookup(major, minor);
    if (driver === undefined) throw new KernelError('ENXIO', `open ${path} (char ${major}:${minor})`);
    const file = new File(path, driver, mode, { major, minor });
    await driver.open?.(file, opener);
    return file;
  }

  /** The misc devices as drivers/char/misc.c keeps misc_list: misc_register adds at the head. */
  miscList(): { minor: number; name: string }[] {
    return [...this.miscMinors].map(([minor, { name }]) => ({ minor, name })).reverse();
  }

  /** The registered char regions (misc devices excluded), by major then first minor. */
  regionList(): CharDeviceInfo[] {
    return this.regions
      .map(({ major, baseMinor, count, name }) => ({ major, baseMinor, count, name }))
      .sort((a, b) => a.major - b.major || a.baseMinor - b.baseMinor);
  }

  /** /proc/devices "Character devices" style listing. */
  list(): CharDeviceInfo[] {
    const rows: CharDeviceInfo[] = this.regions.map(({ major, baseMinor, count, name }) => ({
      major,
      baseMinor,
      count,
      name,
    }));
    for (const [minor, { name }] of this.miscMinors)
      rows.push({ major: MISC_MAJOR, baseMinor: minor, count: 1, name });
    return rows.sort((a, b) => a.major - b.major || a.baseMinor - b.baseMinor);
  }
}

function checkInt(op: string, field: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new KernelError('EINVAL', `${op}: ${field} ${value} outside ${min}..${max}`);
  }
}
