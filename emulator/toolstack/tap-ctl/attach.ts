/** tap-ctl-attach.c: ATTACH, cookie = minor, 5 s; the reply's u.response.error is returned as is. */
import { requestMessage, TapdiskMessageType } from '../../tapdisk/message.js';
import { eprintf, errno, type TapCtlContext, TapCtlTimeout } from './context.js';
import { replyName, responseError, tapCtlConnectSendAndReceive } from './ipc.js';

export async function tapCtlAttach(ctx: TapCtlContext, id: number, minor: number): Promise<number> {
  const r = await tapCtlConnectSendAndReceive(ctx, id, requestMessage('ATTACH', minor), TapCtlTimeout.ATTACH);
  if (r.err) return r.err;
  if (r.message?.type === TapdiskMessageType.ATTACH_RSP) {
    const err = responseError(r.message);
    if (err) eprintf(ctx, 'tap_ctl_attach', `attach failed: ${err}`);
    return err;
  }
  eprintf(ctx, 'tap_ctl_attach', `got unexpected result '${replyName(r)}' from ${id}`);
  return errno('EINVAL');
}
