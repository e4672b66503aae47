/** tap-ctl-check.c: is the blktap control device registered (blktap-control in /proc/misc)? */
import { BLKTAP2_CONTROL_NAME } from '../../../drivers/blktap/abi.js';
import { errno, type TapCtlContext } from './context.js';
import { findMiscMinor, PROC_MISC, readProcFile } from './procfs.js';

export interface TapCtlCheck {
  /** 0, -errno when /proc/misc cannot be opened, or -ENOSYS when the module is missing. */
  err: number;
  message: string;
}

/** tap_ctl_check_blktap() and tap_ctl_check(): main() runs this before every command. */
export async function tapCtlCheck(ctx: TapCtlContext): Promise<TapCtlCheck> {
  const misc = await readProcFile(ctx, PROC_MISC);
  if ('errno' in misc) return { err: -misc.errno, message: 'failed to open /proc/misc' };
  // fscanf("%d %32s") into char[32]: names are compared on their first 32 bytes.
  if (findMiscMinor(misc.text, BLKTAP2_CONTROL_NAME, 32) === undefined) {
    return { err: -errno('ENOSYS'), message: 'blktap kernel module not installed' };
  }
  return { err: 0, message: 'ok' };
}
