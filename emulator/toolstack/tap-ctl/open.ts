/**
 * tap-ctl-open.c: OPEN with params {storage DEFAULT, devnum = minor, path = type:path}, cookie = minor,
 * 5 s. OPEN_RSP is success; an ERROR reply gives -u.response.error.
 */
import { openMessage, TAPDISK_MESSAGE_MAX_PATH_LENGTH, TapdiskMessageType } from '../../tapdisk/message.js';
import { eprintf, errno, type TapCtlContext, TapCtlTimeout } from './context.js';
import { cString, truncateUtf8 } from './cstring.js';
import { replyName, responseError, tapCtlConnectSendAndReceive } from './ipc.js';

export async function tapCtlOpen(
  ctx: TapCtlContext,
  id: number,
  minor: number,
  params: string,
): Promise<number> {
  // snprintf(path, sizeof(path) - 1, "%s", params): refused only when 256 bytes or more; 255 are cut.
  const cstring = cString(params);
  if (new TextEncoder().encode(cstring).length >= TAPDISK_MESSAGE_MAX_PATH_LENGTH) {
    eprintf(ctx, 'tap_ctl_open', 'name too long');
    return errno('ENAMETOOLONG');
  }
  const path = truncateUtf8(cstring, TAPDISK_MESSAGE_MAX_PATH_LENGTH - 2);
  const r = await tapCtlConnectSendAndReceive(ctx, id, openMessage(minor, path), TapCtlTimeout.OPEN);
  if (r.err) return r.err;
  switch (r.message?.type) {
    case TapdiskMessageType.OPEN_RSP:
      return 0;
    case TapdiskMessageType.ERROR: {
      const err = -responseError(r.message);
      eprintf(ctx, 'tap_ctl_open', `open failed, err ${err}`);
      return err;
    }
    default:
      eprintf(ctx, 'tap_ctl_open', `got unexpected result '${replyName(r)}' from ${id}`);
      return errno('EINVAL');
  }
}
