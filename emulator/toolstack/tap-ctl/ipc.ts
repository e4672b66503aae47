/**
 * tap-ctl-ipc.c: connect to a tapdisk's control socket `ctl<id>`, write one tapdisk_message_t and
 * select() for the reply with the per-command timeout. Errors are the C ones: -errno from connect
 * (-ENOENT when the socket name is gone, -ECONNREFUSED when nobody listens), -EINVAL for a negative id,
 * -EIO when the write fails or the reply does not come in time (or the peer hung up).
 *
 * The select() is a declared wait that names the tapdisk as the one who must act, so a stall report
 * reads "tap-ctl select() 5 s: DETACH_RSP from tapdisk 201" broken by "tap-ctl select() timeout".
 * Simplification: socket data moves as whole messages, so each select()/read() loop runs once.
 */
import { controlSocketPath } from '../../../drivers/blktap/abi.js';
import {
  decodeTapdiskMessage,
  encodeTapdiskMessage,
  TAPDISK_MESSAGE_SIZE,
  type TapdiskMessage,
  TapdiskMessageError,
  tapdiskMessageName,
  typeName,
} from '../../tapdisk/message.js';
import { eprintf, errno, errnoOf, type TapCtlContext, traceTapCtl } from './context.js';

export const TAP_CTL_SELECT_TIMER = 'tap-ctl select() timeout';

/** What a read delivered: the decoded message, or the raw bytes when they do not decode. */
export interface ReadResult {
  err: number;
  message?: TapdiskMessage;
  /** Bytes that arrived but are not a valid message (C would read them through the union anyway). */
  undecodable?: string;
}

/** tap_ctl_socket_name() */
export function tapCtlSocketName(id: number): string {
  return controlSocketPath(id);
}

/** tap_ctl_connect(): 0 and the descriptor, or -errno. */
export async function tapCtlConnect(ctx: TapCtlContext, path: string): Promise<{ err: number; fd: number }> {
  try {
    return { err: 0, fd: await ctx.proc.connect(path) };
  } catch (e) {
    const n = errnoOf(ctx, e);
    eprintf(ctx, 'tap_ctl_connect', `couldn't connect to ${path}: ${n}`);
    return { err: -n, fd: -1 };
  }
}

/** tap_ctl_connect_id() */
export async function tapCtlConnectId(ctx: TapCtlContext, id: number): Promise<{ err: number; fd: number }> {
  if (!Number.isInteger(id) || id < 0) {
    eprintf(ctx, 'tap_ctl_connect_id', `invalid id ${id}`);
    return { err: -errno('EINVAL'), fd: -1 };
  }
  return tapCtlConnect(ctx, tapCtlSocketName(id));
}

/** The name of the reply tap-ctl waits for, as used in wait descriptions. */
export function expectedReplyName(request: TapdiskMessage): string {
  const name = typeName(request.type);
  if (name === 'FORCE_SHUTDOWN') return 'CLOSE_RSP';
  return name.endsWith('_RSP') ? name : `${name}_RSP`;
}

/** tap_ctl_write_message(): -EIO when the message could not be written. */
export async function tapCtlWriteMessage(
  ctx: TapCtlContext,
  fd: number,
  message: TapdiskMessage,
  timeoutSeconds: number,
  peer: number,
): Promise<number> {
  const bytes = encodeTapdiskMessage(message);
  traceTapCtl(ctx, 'send', { to: peer, type: typeName(message.type), cookie: message.cookie });
  try {
    const ready = await ctx.proc.select([], [fd], {
      ...(timeoutSeconds ? { timeoutMs: timeoutSeconds * 1000 } : {}),
      timeoutName: TAP_CTL_SELECT_TIMER,
      what: `tap-ctl select() ${timeoutSeconds} s: room to send ${typeName(message.type)} to tapdisk ${peer}`,
    });
    if (ready.writable.length > 0 && (await ctx.proc.write(fd, bytes)) === bytes.length) return 0;
  } catch (e) {
    errnoOf(ctx, e);
  }
  eprintf(ctx, 'tap_ctl_write_message', 'failure writing message');
  return -errno('EIO');
}

/**
 * tap_ctl_read_message(): select() for readability with the timeout (0 = none), then read one message.
 * Timeout, end of stream or a read error all give -EIO.
 */
export async function tapCtlReadMessage(
  ctx: TapCtlContext,
  fd: number,
  timeoutSeconds: number,
  expect: { reply: string; peer: number },
): Promise<ReadResult> {
  let data: Uint8Array | null = null;
  try {
    const ready = await ctx.proc.select([fd], [], {
      ...(timeoutSeconds ? { timeoutMs: timeoutSeconds * 1000 } : {}),
      timeoutName: TAP_CTL_SELECT_TIMER,
      what: `tap-ctl select() ${timeoutSeconds} s: ${expect.reply} from tapdisk ${expect.peer}`,
    });
    if (ready.readable.length === 0) {
      traceTapCtl(ctx, 'timeout', { from: expect.peer, waited: expect.reply, seconds: timeoutSeconds });
    } else {
      data = await ctx.proc.read(fd);
    }
  } catch (e) {
    errnoOf(ctx, e);
  }
  if (data === null || data.length !== TAPDISK_MESSAGE_SIZE) {
    eprintf(ctx, 'tap_ctl_read_message', 'failure reading message');
    return { err: -errno('EIO') };
  }
  try {
    const message = decodeTapdiskMessage(data);
    traceTapCtl(ctx, 'receive', { from: expect.peer, type: typeName(message.type), cookie: message.cookie });
    return { err: 0, message };
  } catch (e) {
    if (!(e instanceof TapdiskMessageError)) throw e;
    traceTapCtl(ctx, 'receive', { from: expect.peer, undecodable: e.message });
    return { err: 0, undecodable: e.message };
  }
}

/** tap_ctl_send_and_receive() */
export async function tapCtlSendAndReceive(
  ctx: TapCtlContext,
  fd: number,
  message: TapdiskMessage,
  timeoutSeconds: number,
  peer: number,
): Promise<ReadResult> {
  const name = tapdiskMessageName(message.type);
  const werr = await tapCtlWriteMessage(ctx, fd, message, timeoutSeconds, peer);
  if (werr) {
    eprintf(ctx, 'tap_ctl_send_and_receive', `failed to send '${name}' message`);
    return { err: werr };
  }
  const r = await tapCtlReadMessage(ctx, fd, timeoutSeconds, { reply: expectedReplyName(message), peer });
  if (r.err) eprintf(ctx, 'tap_ctl_send_and_receive', `failed to receive '${name}' message`);
  return r;
}

/** tap_ctl_connect_send_and_receive(): one connection per request, closed afterwards. */
export async function tapCtlConnectSendAndReceive(
  ctx: TapCtlContext,
  id: number,
  message: TapdiskMessage,
  timeoutSeconds: number,
): Promise<ReadResult> {
  const c = await tapCtlConnectId(ctx, id);
  if (c.err) return { err: c.err };
  try {
    return await tapCtlSendAndReceive(ctx, c.fd, message, timeoutSeconds, id);
  } finally {
    await ctx.proc.close(c.fd);
  }
}

/** The name tap-ctl logs for a reply it did not expect ("got unexpected result '%s' from %d"). */
export function replyName(r: ReadResult): string {
  return r.message === undefined ? 'unknown' : tapdiskMessageName(r.message.type);
}

/** u.response.error of a reply known to carry a response body. */
export function responseError(message: TapdiskMessage): number {
  return message.body.kind === 'response' ? message.body.error : 0;
}
