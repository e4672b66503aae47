/**
 * libxl_device_disk_add (4.2 shape, libxl.c): choose the backend, for `tap` find or create the tapdisk
 * and export its tapdev as a `phy` device (params = the tapdev, tapdisk-params = type:path), write the
 * frontend/backend directories in one transaction, wait ≤ LIBXL_INIT_TIMEOUT for the backend to reach
 * InitWait, then run the hotplug script `add` (4.2; before it udev runs the script on the backend
 * device's `add` uevent, hotplug-exec.ts). xend (DevController.waitForDevice) instead waits for the
 * script's `hotplug-status`, up to DEVICE_CREATE_TIMEOUT.
 */
import { BLKTAP2_IO_DEVICE } from '../../../drivers/blktap/abi.js';
import { XenbusState } from '../../../drivers/xenbus/state.js';
import { vbdDeviceId } from '../../xenstored/layout.js';
import type { DiskFormat, LibxlDeviceDisk } from '../disk-spec.js';
import { blktapDevpath } from './blktap2.js';
import { LIBXL_INIT_TIMEOUT, type LibxlCtx, LibxlError, XEND_DEVICE_CREATE_TIMEOUT } from './context.js';
import { backendPath, deviceGenericAdd, devstateWait, type LibxlDevice } from './device.js';
import { XEN_SCRIPT_DIR } from './host.js';
import { runHotplug } from './hotplug-exec.js';

export type DiskBackendChoice = 'phy' | 'tap';

/** A disk from the config, with the backend xl's spec selected (tap:/tap2: prefix or backendtype=tap). */
export interface DiskRequest {
  disk: LibxlDeviceDisk;
  /** The tap path was asked for explicitly. */
  tap: boolean;
  /** The spec text, for messages. */
  spec: string;
}

/** libxl__device_disk_string_of_format: the tapdisk driver name for an image format. */
export function diskFormatString(format: DiskFormat): string | undefined {
  switch (format) {
    case 'qcow':
      return 'qcow';
    case 'qcow2':
      return 'qcow2';
    case 'vhd':
      return 'vhd';
    case 'raw':
    case 'empty':
    case 'unknown': // libxl__device_disk_setdefault turns unknown into raw
      return 'aio';
    default:
      return undefined;
  }
}

/**
 * Whether a spec asked for the tap path: a `tap:` or `tap2:` prefix on the target (which the 4.7+
 * parser strips and ignores) or `backendtype=tap`.
 */
export function specWantsTap(spec: string, disk: LibxlDeviceDisk): boolean {
  if (disk.backend === 'tap') return true;
  return spec
    .split(',')
    .map((s) => s.trim().replace(/^target=/, ''))
    .some((s) => /^tap2?:/.test(s));
}

/**
 * libxl__device_disk_set_backend, reduced to what the model has: an explicit tap request or backend,
 * else `phy` for a block device in dom0's /dev and `tap` for anything else (an image file).
 */
export function chooseBackend(ctx: LibxlCtx, req: DiskRequest): DiskBackendChoice | { error: string } {
  if (req.tap) return 'tap';
  if (req.disk.backend === 'phy') return 'phy';
  if (req.disk.backend === 'qdisk')
    return { error: 'not implemented: qdisk backend (the model has no QEMU)' };
  const path = req.disk.pdevPath ?? '';
  try {
    if (path.startsWith('/') && ctx.kernel.ns.lookup(path).kind === 'blk') return 'phy';
  } catch {
    // not a device node: an image for tapdisk
  }
  return 'tap';
}

/** libxl__device_disk_dev_number via the vbd encoding; -1 when the name is not a disk. */
export function diskDevNumber(vdev: string): number {
  try {
    return vbdDeviceId(vdev);
  } catch {
    return -1;
  }
}

/** Adds one disk to a domain; 0 or a libxl error. */
export async function deviceDiskAdd(ctx: LibxlCtx, domid: number, req: DiskRequest): Promise<number> {
  const where = 'libxl.c:libxl_device_disk_add';
  const disk = req.disk;
  const vdev = disk.vdev ?? '';
  const devid = diskDevNumber(vdev);
  if (devid < 0) {
    ctx.log('error', where, `Invalid or unsupported virtual disk identifier ${vdev}`);
    return LibxlError.ERROR_INVAL;
  }
  if (disk.pdevPath === null || disk.pdevPath === '') {
    ctx.log('error', where, `disk ${vdev}: no target (pdev_path) given`);
    return LibxlError.ERROR_INVAL;
  }
  const backend = chooseBackend(ctx, req);
  if (typeof backend !== 'string') {
    ctx.log('error', where, backend.error);
    return LibxlError.ERROR_INVAL;
  }
  const dev: LibxlDevice = {
    backendDevid: devid,
    backendDomid: 0,
    devid,
    domid,
    kind: 'vbd',
    backendKind: 'vbd',
  };
  const back: Array<[string, string]> = [];
  let params = disk.pdevPath;
  if (backend === 'tap') {
    const type = diskFormatString(disk.format);
    if (type === undefined) {
      ctx.log('error', where, `unsupported disk format ${disk.format} for the tap backend`);
      return LibxlError.ERROR_INVAL;
    }
    const tapdev = await blktapDevpath(ctx, type, disk.pdevPath);
    if (tapdev === undefined) {
      // libxl prints the pointer with %p; the path is more useful here.
      ctx.log('error', where, `failed to get blktap devpath for ${disk.pdevPath}`);
      return LibxlError.ERROR_FAIL;
    }
    back.push(['tapdisk-params', `${type}:${disk.pdevPath}`]);
    params = tapdev;
  }
  const script = disk.script
    ? disk.script.startsWith('/')
      ? disk.script
      : `${XEN_SCRIPT_DIR}/${disk.script}`
    : `${XEN_SCRIPT_DIR}/block`;
  back.push(['params', params], ['script', script]);
  back.push(
    ['frontend-id', String(domid)],
    ['online', '1'],
    ['removable', disk.removable ? '1' : '0'],
    ['bootable', '1'],
    ['state', String(XenbusState.Initialising)],
    ['dev', vdev],
    ['type', 'phy'],
    ['mode', disk.readwrite ? 'w' : 'r'],
    ['device-type', disk.isCdrom ? 'cdrom' : 'disk'],
  );
  const front: Array<[string, string]> = [
    ['backend-id', String(dev.backendDomid)],
    ['state', String(XenbusState.Initialising)],
    ['virtual-device', String(devid)],
    ['device-type', disk.isCdrom ? 'cdrom' : 'disk'],
  ];
  await deviceGenericAdd(ctx, dev, back, front);

  const be = backendPath(dev);
  if (ctx.version === 'xend') return xendWaitForDevice(ctx, dev);
  const st = await devstateWait(ctx, `${be}/state`, XenbusState.InitWait, LIBXL_INIT_TIMEOUT * 1000);
  if (st !== 'ok') {
    ctx.log('error', 'libxl_device.c:device_backend_callback', `unable to add device with path ${be}`);
    return st === 'timeout' ? LibxlError.ERROR_TIMEDOUT : LibxlError.ERROR_FAIL;
  }
  return runHotplug(ctx, be, 'add');
}

/**
 * xend DevController.waitForDevice → waitForBackend: watch `<be>/hotplug-status` until it appears
 * (hotplugStatusCallback: "error" → Error, "busy" → Busy, anything else → Connected) or
 * DEVICE_CREATE_TIMEOUT passes; on failure destroyDevice(force=False) and the VmError's message.
 */
async function xendWaitForDevice(ctx: LibxlCtx, dev: LibxlDevice): Promise<number> {
  const be = backendPath(dev);
  const statusPath = `${be}/hotplug-status`;
  const token = `xend-hotplug-${be}`;
  const where = 'DevController.py:waitForDevice';
  await ctx.xs.watch(statusPath, token);
  let status: string | undefined;
  try {
    const deadline = ctx.now() + XEND_DEVICE_CREATE_TIMEOUT * 1000;
    ctx.op(`wait ${statusPath}`, { timeoutMs: XEND_DEVICE_CREATE_TIMEOUT * 1000 });
    for (;;) {
      status = await ctx.xs.tryRead(statusPath);
      if (status !== undefined) break;
      const remaining = deadline - ctx.now();
      const ev =
        remaining > 0
          ? await ctx.xs.readWatch({
              what: `${statusPath} (the hotplug script udev runs)`,
              timeoutMs: remaining,
              timeoutName: `xend DEVICE_CREATE_TIMEOUT ${XEND_DEVICE_CREATE_TIMEOUT} s`,
            })
          : undefined;
      if (ev === undefined) break;
    }
  } finally {
    await ctx.xs.unwatch(token);
  }
  if (status !== undefined && status !== 'error' && status !== 'busy') return 0;
  const err = await ctx.xs.tryRead(`${be}/hotplug-error`);
  await ctx.xs.write(`${be}/online`, '0');
  await ctx.xs.write(`${be}/state`, String(XenbusState.Closing));
  const why =
    status === undefined
      ? 'Hotplug scripts not working.'
      : (err ?? (status === 'busy' ? 'Busy.' : 'Backend device not found.'));
  ctx.log('error', where, `Device ${dev.devid} (vbd) could not be connected. ${why}`);
  return status === undefined ? LibxlError.ERROR_TIMEDOUT : LibxlError.ERROR_FAIL;
}

/** Whether a params value names a tapdev (what xend keys its tapdisk cleanup on). */
export function isTapdevPath(params: string): boolean {
  return params.startsWith(BLKTAP2_IO_DEVICE);
}
