/**
 * tap-ctl-detach.c: DETACH, cookie = minor, 5 s. This copy reports with printf (stdout of the calling
 * process, which is xl's when libxl calls it), not syslog.
 */
import { requestMessage, TapdiskMessageType } from '../../tapdisk/message.js';
import { errno, type TapCtlContext, TapCtlTimeout } from './context.js';
import { replyName, responseError, tapCtlConnectSendAndReceive } from './ipc.js';

export async function tapCtlDetach(ctx: TapCtlContext, id: number, minor: number): Promise<number> {
  const r = await tapCtlConnectSendAndReceive(ctx, id, requestMessage('DETACH', minor), TapCtlTimeout.DETACH);
  if (r.err) return r.err;
  if (r.message?.type === TapdiskMessageType.DETACH_RSP) {
    const err = responseError(r.message);
    if (err < 0) ctx.proc.print(`detach failed: ${err}`);
    return err;
  }
  ctx.proc.print(`got unexpected result '${replyName(r)}' from ${id}`);
  return errno('EINVAL');
}
