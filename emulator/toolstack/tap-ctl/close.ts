/**
 * tap-ctl-close.c: CLOSE (FORCE_SHUTDOWN with force), cookie = minor, 5 s per attempt. EAGAIN (tapdisk
 * still has requests in flight) is retried up to 20 times with usleep(1000) after each attempt; then
 * EIO. Every error comes back as a positive errno.
 */
import { requestMessage, TapdiskMessageType } from '../../tapdisk/message.js';
import {
  CLOSE_RETRIES,
  CLOSE_RETRY_SLEEP_MS,
  eprintf,
  errno,
  type TapCtlContext,
  TapCtlTimeout,
} from './context.js';
import { replyName, responseError, tapCtlConnectSendAndReceive } from './ipc.js';

async function closeOnce(ctx: TapCtlContext, id: number, minor: number, force: boolean): Promise<number> {
  const request = requestMessage(force ? 'FORCE_SHUTDOWN' : 'CLOSE', minor);
  const r = await tapCtlConnectSendAndReceive(ctx, id, request, TapCtlTimeout.CLOSE);
  if (r.err) return r.err;
  if (r.message?.type === TapdiskMessageType.CLOSE_RSP) {
    const err = responseError(r.message);
    if (err) eprintf(ctx, '__tap_ctl_close', `close failed: ${err}`);
    return err;
  }
  eprintf(ctx, '__tap_ctl_close', `got unexpected result '${replyName(r)}' from ${id}`);
  return errno('EINVAL');
}

export async function tapCtlClose(
  ctx: TapCtlContext,
  id: number,
  minor: number,
  force = false,
): Promise<number> {
  for (let i = 0; i < CLOSE_RETRIES; i++) {
    let err = await closeOnce(ctx, id, minor, force);
    if (!err) return 0;
    err = Math.abs(err);
    if (err !== errno('EAGAIN')) {
      eprintf(ctx, 'tap_ctl_close', `close failed: ${err}`);
      return err;
    }
    await ctx.proc.sleep(CLOSE_RETRY_SLEEP_MS);
  }
  eprintf(ctx, 'tap_ctl_close', 'close timed out');
  return errno('EIO');
}
