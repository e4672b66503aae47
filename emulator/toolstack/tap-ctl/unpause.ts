/** tap-ctl-unpause.c: RESUME with an optional new `type:path`, cookie = minor, 15 s. */
import { resumeMessage, TAPDISK_MESSAGE_MAX_PATH_LENGTH, TapdiskMessageType } from '../../tapdisk/message.js';
import { eprintf, errno, type TapCtlContext, TapCtlTimeout } from './context.js';
import { cString, truncateUtf8 } from './cstring.js';
import { replyName, responseError, tapCtlConnectSendAndReceive } from './ipc.js';

export async function tapCtlUnpause(
  ctx: TapCtlContext,
  id: number,
  minor: number,
  params: string | null,
): Promise<number> {
  // strncpy(path, params, sizeof(path) - 1): longer parameters are cut, never rejected.
  const path = params === null ? '' : truncateUtf8(cString(params), TAPDISK_MESSAGE_MAX_PATH_LENGTH - 1);
  const r = await tapCtlConnectSendAndReceive(ctx, id, resumeMessage(minor, path), TapCtlTimeout.UNPAUSE);
  if (r.err) return r.err;
  if (r.message?.type === TapdiskMessageType.RESUME_RSP) return responseError(r.message);
  eprintf(ctx, 'tap_ctl_unpause', `got unexpected result '${replyName(r)}' from ${id}`);
  return errno('EINVAL');
}
