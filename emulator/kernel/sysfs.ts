/**
 * The driver-model side of /sys and /dev: class_create, device_create/device_destroy with their `dev`
 * attribute, driver attributes with show/store callbacks, and the /dev node udev (or devtmpfs) makes
 * for a device with a device number.
 * Simplification: /sys/class/<class>/<name> is a real directory, not a symlink into /sys/devices.
 */
import { KernelError } from './errno.js';
import { type Namespace, splitPath } from './namespace.js';

export interface SysfsAttribute {
  show?: () => string | Promise<string>;
  store?: (value: string) => void | Promise<void>;
}

export interface DeviceCreateOptions {
  /** Device number; adds the `dev` attribute ("major:minor\n") and, with `devnode`, a /dev node. */
  devt?: { kind: 'chr' | 'blk'; major: number; minor: number };
  /** Path under /dev that udev creates, e.g. "xen/blktap-2/control" (the driver's devnode name). */
  devnode?: string;
  attributes?: Record<string, SysfsAttribute>;
}

export interface SysfsDevice {
  readonly className: string;
  readonly name: string;
  /** "/sys/class/<class>/<name>" */
  readonly path: string;
  /** The /dev node path, when one was made. */
  readonly devnodePath?: string;
}

export class Sysfs {
  constructor(private readonly ns: Namespace) {
    ns.mkdir('/sys/class', { parents: true });
    ns.mkdir('/dev', { parents: true });
  }

  /** class_create(): EEXIST when the class is already registered. */
  classCreate(className: string): void {
    checkName('class', className);
    this.ns.mkdir(`/sys/class/${className}`);
  }

  /** class_destroy(): the class must have no devices left (ENOTEMPTY otherwise). */
  classDestroy(className: string): void {
    this.ns.rmdir(`/sys/class/${className}`);
  }

  /** device_create(): the class directory must exist (ENOENT naming it otherwise). */
  deviceCreate(className: string, name: string, options: DeviceCreateOptions = {}): SysfsDevice {
    checkName('device', name);
    const path = `/sys/class/${className}/${name}`;
    this.ns.mkdir(path);
    const { devt } = options;
    if (devt !== undefined) {
      this.ns.createAttribute(`${path}/dev`, { show: () => `${devt.major}:${devt.minor}\n` });
    }
    for (const [attr, callbacks] of Object.entries(options.attributes ?? {})) {
      this.addAttribute(path, attr, callbacks);
    }
    let devnodePath: string | undefined;
    if (options.devnode !== undefined) {
      if (devt === undefined) {
        throw new KernelError('EINVAL', `device_create ${path}: devnode "${options.devnode}" needs a devt`);
      }
      devnodePath = `/dev/${options.devnode}`;
      const parent = devnodePath.slice(0, devnodePath.lastIndexOf('/'));
      this.ns.mkdir(parent, { parents: true });
      this.ns.mknod(devnodePath, devt.kind, devt.major, devt.minor);
    }
    return { className, name, path, ...(devnodePath === undefined ? {} : { devnodePath }) };
  }

  /** sysfs_create_file() on a device directory. */
  addAttribute(devicePath: string, name: string, attribute: SysfsAttribute): void {
    checkName('attribute', name);
    this.ns.createAttribute(`${devicePath}/${name}`, attribute);
  }

  /** device_destroy(): removes the sysfs directory and the /dev node udev made for it. */
  deviceDestroy(device: SysfsDevice): void {
    this.ns.removeTree(device.path);
    if (device.devnodePath !== undefined && this.ns.exists(device.devnodePath)) {
      this.ns.unlink(device.devnodePath);
    }
  }
}

function checkName(what: string, name: string): void {
  if (name === '' || name.includes('/') || splitPath(`/${name}`).length !== 1) {
    throw new KernelError('EINVAL', `${what} name "${name}": must be one path component`);
  }
}
