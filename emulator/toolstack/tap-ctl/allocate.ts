/**
 * tap-ctl-allocate.c: make sure the control directory and control device node exist (the node is made
 * from the blktap-control minor in /proc/misc when udev did not), ALLOC_TAP on the control device,
 * then mknod the ring device `blktapN` (char) and the I/O device `tapdevN` or the `-d` name (block),
 * replacing stale nodes. A failed mknod frees the minor again. Errors are positive errnos.
 *
 * ioctl contract with the blktap driver: ALLOC_TAP copies a 12-byte `struct blktap2_handle` (u32 ring
 * major, u32 device major, u32 minor, little-endian) into the Uint8Array passed as the argument
 * (`BLKTAP2_HANDLE_SIZE`, `decodeBlktapHandle` in drivers/blktap/abi.ts).
 */
import {
  BLKTAP2_CONTROL_DEVICE,
  BLKTAP2_CONTROL_DIR,
  BLKTAP2_CONTROL_NAME,
  BLKTAP2_HANDLE_SIZE,
  BlktapIoctl,
  decodeBlktapHandle,
  ioDevicePath,
  ringDevicePath,
} from '../../../drivers/blktap/abi.js';
import { MISC_MAJOR } from '../../kernel/char-device.js';
import { isKernelError } from '../../kernel/errno.js';
import { eprintf, errno, errnoOf, type TapCtlContext, traceTapCtl } from './context.js';
import { tapCtlFree } from './free.js';
import { findMiscMinor, PROC_MISC, readProcFile } from './procfs.js';

export interface TapCtlAllocation {
  /** 0 or a positive errno. */
  err: number;
  /** -1 unless allocated. */
  minor: number;
  /** The I/O device path (the caller's name when one was given). */
  devname: string | null;
}

/** access(path, F_OK). Simplification: the model has no permissions, so R_OK/W_OK mean "exists". */
async function access(ctx: TapCtlContext, path: string): Promise<boolean> {
  return (await ctx.proc.glob(path)).includes(path);
}

/** tap_ctl_prepare_directory(): mkdir each component; EEXIST is fine. */
async function prepareDirectory(ctx: TapCtlContext, dir: string): Promise<number> {
  if (await access(ctx, dir)) return 0;
  const parts = dir.split('/').filter((p) => p !== '');
  for (let i = 1; i <= parts.length; i++) {
    const name = `/${parts.slice(0, i).join('/')}`;
    try {
      await ctx.proc.mkdir(name);
    } catch (e) {
      if (isKernelError(e, 'EEXIST')) continue;
      const n = errnoOf(ctx, e);
      eprintf(ctx, 'tap_ctl_prepare_directory', `mkdir ${name}: ${n}`);
      return n;
    }
  }
  return 0;
}

/** tap_ctl_make_device(): parent directory, unlink a stale node, mknod. */
async function makeDevice(
  ctx: TapCtlContext,
  devname: string,
  kind: 'chr' | 'blk',
  major: number,
  minor: number,
): Promise<number> {
  const slash = devname.lastIndexOf('/');
  const dir = slash <= 0 ? '/' : devname.slice(0, slash);
  const err = await prepareDirectory(ctx, dir);
  if (err) return err;
  try {
    if (await access(ctx, devname)) await ctx.proc.unlink(devname);
  } catch (e) {
    const n = errnoOf(ctx, e);
    eprintf(ctx, 'tap_ctl_make_device', `unlink ${devname}: ${n}`);
    return n;
  }
  try {
    await ctx.proc.mknod(devname, kind, major, minor);
  } catch (e) {
    const n = errnoOf(ctx, e);
    eprintf(ctx, 'tap_ctl_make_device', `mknod ${devname}: ${n}`);
    return n;
  }
  return 0;
}

/** tap_ctl_check_environment() */
async function checkEnvironment(ctx: TapCtlContext): Promise<number> {
  const err = await prepareDirectory(ctx, BLKTAP2_CONTROL_DIR);
  if (err) return err;
  if (await access(ctx, BLKTAP2_CONTROL_DEVICE)) return 0;
  const misc = await readProcFile(ctx, PROC_MISC);
  if ('errno' in misc) {
    eprintf(ctx, 'tap_ctl_check_environment', `failed to open /proc/misc: ${misc.errno}`);
    return misc.errno;
  }
  // fscanf("%d %256s") into char[256]
  const minor = findMiscMinor(misc.text, BLKTAP2_CONTROL_NAME, 256);
  if (minor === undefined) {
    eprintf(ctx, 'tap_ctl_check_environment', `didn't find ${BLKTAP2_CONTROL_NAME} in /proc/misc`);
    return errno('ENOSYS');
  }
  return makeDevice(ctx, BLKTAP2_CONTROL_DEVICE, 'chr', MISC_MAJOR, minor);
}

async function allocateDevice(ctx: TapCtlContext, devname: string | null): Promise<TapCtlAllocation> {
  let fd: number;
  try {
    fd = await ctx.proc.open(BLKTAP2_CONTROL_DEVICE, { read: true });
  } catch (e) {
    const n = errnoOf(ctx, e);
    eprintf(ctx, 'tap_ctl_allocate_device', `failed to open control device: ${n}`);
    return { err: n, minor: -1, devname };
  }
  const handle = new Uint8Array(BLKTAP2_HANDLE_SIZE);
  try {
    await ctx.proc.ioctl(fd, BlktapIoctl.ALLOC_TAP, handle);
  } catch (e) {
    const n = errnoOf(ctx, e);
    await ctx.proc.close(fd);
    eprintf(ctx, 'tap_ctl_allocate_device', `failed to allocate new device: ${n}`);
    return { err: n, minor: -1, devname };
  }
  await ctx.proc.close(fd);
  const { ring, device, minor } = decodeBlktapHandle(handle);

  const fail = async (err: number): Promise<TapCtlAllocation> => {
    await tapCtlFree(ctx, minor);
    return { err, minor: -1, devname };
  };
  let err = await makeDevice(ctx, ringDevicePath(minor), 'chr', ring, minor);
  if (err) {
    eprintf(ctx, 'tap_ctl_allocate_device', `creating ring device for ${minor} failed: ${err}`);
    return fail(err);
  }
  const name = devname ?? ioDevicePath(minor);
  err = await makeDevice(ctx, name, 'blk', device, minor);
  if (err) {
    eprintf(ctx, 'tap_ctl_allocate_device', `creating IO device for ${minor} failed: ${err}`);
    return fail(err);
  }
  traceTapCtl(ctx, 'allocate', { minor, ring, device, devname: name });
  return { err: 0, minor, devname: name };
}

/** tap_ctl_allocate(minor, devname) */
export async function tapCtlAllocate(
  ctx: TapCtlContext,
  devname: string | null = null,
): Promise<TapCtlAllocation> {
  const err = await checkEnvironment(ctx);
  if (err) return { err, minor: -1, devname };
  return allocateDevice(ctx, devname);
}
