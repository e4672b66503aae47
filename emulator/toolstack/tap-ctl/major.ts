/**
 * tap-ctl-major.c: the block major registered as "tapdev", read from /proc/devices.
 * The kernel model's block layer does not list its registered majors yet, so this cannot be answered
 * from the mechanism; it throws rather than guess.
 */
import type { TapCtlContext } from './context.js';

export function tapCtlBlkMajor(_ctx: TapCtlContext): number {
  throw new Error(
    'not implemented: tap_ctl_blk_major needs /proc/devices "Block devices:" (BlockLayer has no listing of registered majors)',
  );
}
