/**
 * tapdisk's control handlers (Xen's in-tree tools/blktap2/drivers/tapdisk-control.c): read one message
 * from an accepted connection (2 s select timeout), do the work, reply, close the connection.
 * ATTACH/OPEN/CLOSE/DETACH/PAUSE/RESUME/LIST/PID (and FORCE_SHUTDOWN in the xapi variant only);
 * anything else gets ERROR/EINVAL. Replies carry the positive errno in u.response.error.
 * DETACH follows the variant: xen-4.1 closes and unmaps the ring directly; xapi (fa28881) first retries
 * REMOVE_DEVICE while EBUSY, servicing I/O, and gives up if the tap-ctl client goes away.
 * Simplification: replies never block (socket buffers are unbounded), so the 2 s write timeout is moot.
 */
import { BlktapIoctl, encodeBlktap2Params, ringDevicePath } from '../../drivers/blktap/abi.js';
import { ERRNO, isKernelError, KernelError } from '../kernel/errno.js';
import { AioImage } from './drivers/aio.js';
import type { ImageDriver } from './drivers/image-driver.js';
import { RamImage } from './drivers/ram.js';
import { parseDriverStack } from './image-type.js';
import {
  decodeTapdiskMessage,
  encodeTapdiskMessage,
  listReplyMessages,
  responseMessage,
  type TapdiskMessage,
  TapdiskMessageFlag,
  TapdiskMessageType,
  tapdiskMessageName,
  tapdiskValidateRequest,
} from './message.js';
import type { TapdiskServer } from './server.js';
import { Vbd } from './vbd.js';

/** tapdisk_control_read_message() timeout in Xen's tapdisk2. */
export const TAPDISK_CONTROL_READ_TIMEOUT_MS = 2000;

const errno = (e: unknown): number => {
  if (isKernelError(e)) return e.errno;
  throw e;
};

/**
 * A control connection as the handlers see it: its descriptor and how a reply leaves. Xen's copy writes
 * each reply at once; the xapi copy queues it in the connection's output buffer (control-xapi.ts).
 */
export interface ControlConn {
  readonly fd: number;
  send(bytes: Uint8Array): Promise<void>;
}

/** Xen's in-tree control: one accepted connection handled to the end, then closed. */
export async function handleConnection(s: TapdiskServer, fd: number): Promise<void> {
  const conn: ControlConn = {
    fd,
    send: async (bytes) => {
      await s.proc.write(fd, bytes);
    },
  };
  await receiveAndDispatch(s, conn);
  await s.proc.close(fd).catch((e: unknown) => {
    if (!isKernelError(e)) throw e;
  });
}

/** tapdisk_control_read_message() with its 2 s select, validation, and the handler of the message. */
export async function receiveAndDispatch(s: TapdiskServer, conn: ControlConn): Promise<void> {
  const { proc } = s;
  try {
    const ready = await proc.select([conn.fd], [], {
      timeoutMs: TAPDISK_CONTROL_READ_TIMEOUT_MS,
      timeoutName: 'tapdisk control read 2 s',
      what: `a control message on ctl${proc.pid}`,
    });
    if (ready.readable.length === 0) {
      s.trace('control-timeout');
      return;
    }
    const bytes = await proc.read(conn.fd);
    if (bytes === null) return;
    let request: TapdiskMessage;
    if (tapdiskValidateRequest(bytes) !== 0) {
      await reply(s, conn, responseMessage('ERROR', 0, ERRNO.EINVAL, 'invalid request'));
      return;
    }
    try {
      request = decodeTapdiskMessage(bytes);
    } catch (e) {
      await reply(
        s,
        conn,
        responseMessage('ERROR', 0, ERRNO.EINVAL, e instanceof Error ? e.message.slice(0, 200) : ''),
      );
      return;
    }
    s.trace('message', { type: tapdiskMessageName(request.type), cookie: request.cookie });
    await dispatch(s, conn, request);
  } catch (e) {
    if (!isKernelError(e)) throw e;
    s.trace('control-error', { error: e.code });
  }
}

/** Writes one reply; a vanished peer (EPIPE, SIGPIPE ignored) is logged, not fatal. */
async function reply(s: TapdiskServer, conn: ControlConn, msg: TapdiskMessage): Promise<void> {
  try {
    await conn.send(encodeTapdiskMessage(msg));
    s.trace('reply', { type: tapdiskMessageName(msg.type), cookie: msg.cookie });
  } catch (e) {
    if (!isKernelError(e)) throw e;
    s.trace('reply-failed', { type: tapdiskMessageName(msg.type), error: e.code });
  }
}

async function dispatch(s: TapdiskServer, conn: ControlConn, req: TapdiskMessage): Promise<void> {
  const minor = req.cookie;
  switch (req.type) {
    case TapdiskMessageType.PID:
      return reply(s, conn, {
        type: TapdiskMessageType.PID_RSP,
        cookie: minor,
        body: { kind: 'pid', pid: s.proc.pid },
      });
    case TapdiskMessageType.LIST:
      for (const m of listReplyMessages(
        minor,
        s.vbds.map((v) => ({ minor: v.minor, state: v.state, path: v.name ?? '' })),
      )) {
        await reply(s, conn, m);
      }
      return;
    case TapdiskMessageType.ATTACH:
      return reply(s, conn, responseMessage('ATTACH_RSP', minor, await attach(s, minor)));
    case TapdiskMessageType.OPEN:
      return open(s, conn, req);
    case TapdiskMessageType.CLOSE:
      return reply(s, conn, responseMessage('CLOSE_RSP', minor, await close(s, minor, false)));
    case TapdiskMessageType.FORCE_SHUTDOWN:
      // Xen 4.1's tapdisk has no case for it: "received unsupported message", ERROR/EINVAL.
      if (s.options.variant === 'xen-4.1') {
        return reply(s, conn, responseMessage('ERROR', 0, ERRNO.EINVAL, 'unsupported message'));
      }
      return reply(s, conn, responseMessage('CLOSE_RSP', minor, await close(s, minor, true)));
    case TapdiskMessageType.DETACH:
      return detach(s, conn, minor);
    case TapdiskMessageType.PAUSE:
      return reply(s, conn, responseMessage('PAUSE_RSP', minor, await pause(s, minor)));
    case TapdiskMessageType.RESUME:
      return reply(s, conn, responseMessage('RESUME_RSP', minor, await resume(s, req)));
    default:
      return reply(s, conn, responseMessage('ERROR', minor, ERRNO.EINVAL, 'unrecognized message'));
  }
}

async function attach(s: TapdiskServer, minor: number): Promise<number> {
  if (s.vbd(minor) !== undefined) return ERRNO.EEXIST;
  const vbd = new Vbd(s.proc, s.env, minor, s.options.imageFaults);
  try {
    await vbd.attach(ringDevicePath(minor));
  } catch (e) {
    const err = errno(e);
    s.trace('attach-failed', { minor, error: err });
    return err;
  }
  s.vbds.push(vbd);
  return 0;
}

function openImage(type: string, path: string, readOnly: boolean, latencyMs: number): ImageDriver {
  if (type === 'aio') return new AioImage(path, { readOnly }, latencyMs);
  if (type === 'ram') return new RamImage(path, latencyMs);
  throw new KernelError('ENOSYS', `open ${type}:${path}: no driver`);
}

async function open(s: TapdiskServer, conn: ControlConn, req: TapdiskMessage): Promise<void> {
  const minor = req.cookie;
  const refuse = (err: number, message = '') => reply(s, conn, responseMessage('ERROR', minor, err, message));
  const vbd = s.vbd(minor);
  if (vbd === undefined || vbd.ringFd === undefined) return refuse(ERRNO.EINVAL);
  if (vbd.name !== undefined) return refuse(ERRNO.EALREADY);
  // The image could not be opened or the device created (tapdisk_control_open_image's fail path):
  // e403288 keeps the VBD (only its name goes); before it the whole VBD was freed while it stayed
  // linked in the server's list, for tap-ctl create's rollback DETACH to find.
  const fail = (err: number, message = '') => {
    if (s.options.openFailure === '2011-06') vbd.free('the OPEN failure path (tapdisk_control_open_image)');
    else vbd.name = undefined;
    return refuse(err, message);
  };
  if (req.body.kind !== 'params') return refuse(ERRNO.EINVAL);
  const params = req.body.path;
  const stack = parseDriverStack(params, s.options.variant === 'xapi' ? 'xapi' : 'xen');
  if (!stack.ok) return fail(-stack.err, stack.reason.slice(0, 200));
  if (stack.stack.length !== 1) return fail(ERRNO.ENOSYS, 'driver stacks are not modelled');
  const { type, path } = stack.stack[0]!;
  let image: ImageDriver;
  try {
    image = openImage(
      type.name,
      path,
      (req.body.flags & TapdiskMessageFlag.RDONLY) !== 0,
      s.options.latencyMs,
    );
  } catch (e) {
    return fail(errno(e));
  }
  try {
    await s.proc.ioctl(
      vbd.ringFd,
      BlktapIoctl.CREATE_DEVICE,
      encodeBlktap2Params({
        name: params,
        capacity: BigInt(image.info.sectors),
        sectorSize: image.info.sectorSize,
      }),
    );
  } catch (e) {
    // The gendisk outlives CLOSE; a reopen finds it in place.
    if (!isKernelError(e, 'EEXIST')) {
      image.close();
      return fail(errno(e));
    }
  }
  vbd.image = image;
  vbd.name = params;
  vbd.setFlag('CLOSED', false);
  s.trace('open', { minor, params, sectors: image.info.sectors });
  return reply(s, conn, {
    type: TapdiskMessageType.OPEN_RSP,
    cookie: minor,
    body: {
      kind: 'image',
      sectors: BigInt(image.info.sectors),
      sectorSize: image.info.sectorSize,
      info: image.info.info,
    },
  });
}

async function close(s: TapdiskServer, minor: number, force: boolean): Promise<number> {
  const vbd = s.vbd(minor);
  if (vbd === undefined) return ERRNO.EINVAL;
  if (vbd.inflight.length > 0) {
    if (!force) return ERRNO.EAGAIN;
    await vbd.failInflight();
  }
  vbd.closeImage();
  vbd.name = undefined;
  vbd.setFlag('CLOSED', true);
  s.trace('close', { minor });
  return 0;
}

async function detach(s: TapdiskServer, conn: ControlConn, minor: number): Promise<void> {
  const vbd = s.vbd(minor);
  const respond = (err: number) => reply(s, conn, responseMessage('DETACH_RSP', minor, err));
  if (vbd === undefined) return respond(ERRNO.EINVAL);
  // xapi refuses to detach an open image; Xen 4.1 detaches anyway and the VBD lingers (minor -1).
  if (s.options.variant === 'xapi' && vbd.name !== undefined) return respond(ERRNO.EBUSY);
  if (s.options.variant === 'xapi' && !(await removeDevice(s, conn, vbd))) return;
  if (s.options.replyBeforeTeardown) await respond(0);
  await vbd.detach();
  if (vbd.image === undefined) s.removeVbd(vbd);
  if (!s.options.replyBeforeTeardown) await respond(0);
}

/**
 * fa28881: REMOVE_DEVICE until it stops failing with EBUSY, running the event loop meanwhile (the
 * tapdev's last close makes the ring readable). False when the tap-ctl client went away first.
 */
async function removeDevice(s: TapdiskServer, conn: ControlConn, vbd: Vbd): Promise<boolean> {
  for (;;) {
    const fd = vbd.ringFd;
    if (fd === undefined) return true;
    try {
      await s.proc.ioctl(fd, BlktapIoctl.REMOVE_DEVICE);
      return true;
    } catch (e) {
      if (!isKernelError(e, 'EBUSY')) throw e;
    }
    s.trace('remove-device-busy', { minor: vbd.minor });
    // tapdisk_server_iterate(): the xapi control also accepts and serves other connections meanwhile.
    const others = s.control?.readFds() ?? [];
    const ready = await s.pump([conn.fd, ...others]);
    await s.control?.handleReady(ready.filter((fd) => fd !== conn.fd));
    if (ready.includes(conn.fd)) {
      const data = await s.proc
        .read(conn.fd)
        .catch((e: unknown) => (isKernelError(e) ? null : Promise.reject(e)));
      if (data === null) {
        s.trace('detach-abandoned', { minor: vbd.minor });
        return false;
      }
    }
  }
}

async function pause(s: TapdiskServer, minor: number): Promise<number> {
  const vbd = s.vbd(minor);
  if (vbd === undefined) return ERRNO.EINVAL;
  if (vbd.test('PAUSED')) return 0;
  vbd.setFlag('PAUSE_REQUESTED', true);
  vbd.setFlag('QUIESCE_REQUESTED', true);
  while (vbd.inflight.length > 0) await s.pump([]);
  vbd.closeImage();
  vbd.setFlag('PAUSE_REQUESTED', false);
  vbd.setFlag('QUIESCE_REQUESTED', false);
  vbd.setFlag('QUIESCED', true);
  vbd.setFlag('PAUSED', true);
  return 0;
}

async function resume(s: TapdiskServer, req: TapdiskMessage): Promise<number> {
  const vbd = s.vbd(req.cookie);
  if (vbd === undefined || !vbd.test('PAUSED')) return ERRNO.EINVAL;
  const params = req.body.kind === 'params' && req.body.path !== '' ? req.body.path : vbd.name;
  if (params === undefined) return ERRNO.EINVAL;
  const stack = parseDriverStack(params, s.options.variant === 'xapi' ? 'xapi' : 'xen');
  if (!stack.ok) return -stack.err;
  if (stack.stack.length !== 1) return ERRNO.ENOSYS;
  try {
    vbd.image = openImage(stack.stack[0]!.type.name, stack.stack[0]!.path, false, s.options.latencyMs);
  } catch (e) {
    return errno(e);
  }
  vbd.name = params;
  vbd.setFlag('PAUSED', false);
  vbd.setFlag('QUIESCED', false);
  await vbd.serviceRing(s.env.now());
  return 0;
}
