/**
 * tap-ctl-free.c: FREE_TAP(minor) on the control device. The C function returns the raw ioctl result,
 * so a refused free (EBUSY while a tapdisk still has the ring open or mapped) is -1, with errno set.
 * It never unlinks the device nodes.
 */
import { BLKTAP2_CONTROL_DEVICE, BlktapIoctl } from '../../../drivers/blktap/abi.js';
import { eprintf, errnoOf, type TapCtlContext, traceTapCtl } from './context.js';

export async function tapCtlFree(ctx: TapCtlContext, minor: number): Promise<number> {
  let fd: number;
  try {
    fd = await ctx.proc.open(BLKTAP2_CONTROL_DEVICE, { read: true });
  } catch (e) {
    const n = errnoOf(ctx, e);
    eprintf(ctx, 'tap_ctl_free', `failed to open control device: ${n}`);
    return n;
  }
  let ret = 0;
  try {
    await ctx.proc.ioctl(fd, BlktapIoctl.FREE_TAP, minor);
    traceTapCtl(ctx, 'free', { minor });
  } catch (e) {
    const n = errnoOf(ctx, e);
    traceTapCtl(ctx, 'free-failed', { minor, errno: n });
    ret = -1;
  }
  await ctx.proc.close(fd);
  return ret;
}
