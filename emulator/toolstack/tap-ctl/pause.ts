/** tap-ctl-pause.c: PAUSE, cookie = minor, 5 s. */
import { requestMessage, TapdiskMessageType } from '../../tapdisk/message.js';
import { eprintf, errno, type TapCtlContext, TapCtlTimeout } from './context.js';
import { replyName, responseError, tapCtlConnectSendAndReceive } from './ipc.js';

export async function tapCtlPause(ctx: TapCtlContext, id: number, minor: number): Promise<number> {
  const r = await tapCtlConnectSendAndReceive(ctx, id, requestMessage('PAUSE', minor), TapCtlTimeout.PAUSE);
  if (r.err) return r.err;
  if (r.message?.type === TapdiskMessageType.PAUSE_RSP) return responseError(r.message);
  eprintf(ctx, 'tap_ctl_pause', `got unexpected result '${replyName(r)}' from ${id}`);
  return errno('EINVAL');
}
