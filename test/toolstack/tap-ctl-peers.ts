/**
 * Test peers for tap-ctl on the kernel model. The real blktap2 driver and tapdisk2 now serve every
 * tap-ctl test (tap-ctl-harness.ts installs them by default); these peers remain only for failures the
 * real pieces cannot produce (today: an ATTACH that fails on a fresh minor). They are:
 * - a minimal blktap control device (misc "blktap-control": ALLOC_TAP takes the lowest free slot and
 *   creates /sys/class/blktap2/blktapN; FREE_TAP refuses with EBUSY while the ring is open) and ring
 *   character devices with a single opener;
 * - a tapdisk2 program speaking the real message codec on `ctl<pid>`: PID, ATTACH (opens the ring),
 *   OPEN, CLOSE, DETACH (closes the ring, exits after its last VBD), PAUSE, RESUME, LIST. A script can
 *   make a request fail, answer EAGAIN, or "block" (the handler waits until the client hangs up before
 *   finishing and replying, as tapdisk blocked in munmap does in teardown §3).
 * These are protocol peers, not fakes of tap-ctl: every byte tap-ctl sees comes through the kernel.
 */
import {
  BLKTAP2_CONTROL_DIR,
  BLKTAP2_SYSFS_CLASS,
  BlktapIoctl,
  ringDevicePath,
} from '../../drivers/blktap/abi.js';
import { MISC_DYNAMIC_MINOR } from '../../emulator/kernel/char-device.js';
import { KernelError } from '../../emulator/kernel/errno.js';
import type { Kernel } from '../../emulator/kernel/kernel.js';
import type { Process, Program } from '../../emulator/kernel/process.js';
import type { SysfsDevice } from '../../emulator/kernel/sysfs.js';
import {
  decodeTapdiskMessage,
  encodeTapdiskMessage,
  listReplyMessages,
  responseMessage,
  type TapdiskMessage,
  TapdiskMessageType,
  type TapdiskMessageTypeName,
  TdVbdState,
  typeName,
} from '../../emulator/tapdisk/message.js';

export const TAPDISK_PATH = '/usr/sbin/tapdisk2';

interface Slot {
  sysfs: SysfsDevice;
  ringOpen: boolean;
}

export class TestBlktap {
  readonly slots: (Slot | undefined)[] = [];
  readonly ringMajor: number;
  readonly blockMajor: number;
  readonly controlMinor: number;

  constructor(readonly k: Kernel) {
    k.sysfs.classCreate(BLKTAP2_SYSFS_CLASS);
    this.blockMajor = k.blocks.registerBlkdev(0, 'tapdev');
    this.ringMajor = k.chars.register(0, 0, 1024, 'blktap2', {
      open: (file) => {
        const slot = this.slots[file.devt!.minor];
        if (slot === undefined) throw new KernelError('ENXIO', `open blktap${file.devt!.minor}`);
        if (slot.ringOpen) throw new KernelError('EBUSY', `open blktap${file.devt!.minor}: ring in use`);
        slot.ringOpen = true;
      },
      release: (file) => {
        const slot = this.slots[file.devt!.minor];
        if (slot) slot.ringOpen = false;
      },
    });
    this.controlMinor = k.chars.miscRegister('blktap-control', MISC_DYNAMIC_MINOR, {
      ioctl: (_file, cmd, arg) => {
        if (cmd === BlktapIoctl.ALLOC_TAP) return this.alloc(arg as Uint8Array);
        if (cmd === BlktapIoctl.FREE_TAP) return this.free(arg as number);
        throw new KernelError('ENOTTY', `blktap-control ioctl ${cmd}`);
      },
    });
  }

  private alloc(handle: Uint8Array): number {
    let minor = this.slots.indexOf(undefined);
    if (minor < 0) minor = this.slots.length;
    const sysfs = this.k.sysfs.deviceCreate(BLKTAP2_SYSFS_CLASS, `blktap${minor}`);
    this.slots[minor] = { sysfs, ringOpen: false };
    const view = new DataView(handle.buffer, handle.byteOffset, handle.byteLength);
    view.setUint32(0, this.ringMajor, true);
    view.setUint32(4, this.blockMajor, true);
    view.setUint32(8, minor, true);
    return 0;
  }

  private free(minor: number): number {
    const slot = this.slots[minor];
    if (slot === undefined) throw new KernelError('ENODEV', `FREE_TAP ${minor}`);
    if (slot.ringOpen) throw new KernelError('EBUSY', `FREE_TAP ${minor}: ring still open`);
    this.k.sysfs.deviceDestroy(slot.sysfs);
    this.slots[minor] = undefined;
    return 0;
  }
}

/** What the scripted tapdisk does with a request type. */
export type Behaviour =
  | { kind: 'fail'; error: number }
  | { kind: 'eagain'; times: number }
  | { kind: 'block-until-hangup' }
  | { kind: 'no-reply' };

export interface TapdiskScript {
  on?: Partial<Record<TapdiskMessageTypeName, Behaviour>>;
}

export interface TapdiskLog {
  /** `<pid> <TYPE> <cookie> @<ms>` for every request the tapdisks received. */
  received: string[];
  /** Reply write failures (EPIPE towards a client that gave up). */
  replyErrors: string[];
}

interface Vbd {
  minor: number;
  ringFd: number | undefined;
  path: string;
  state: number;
}

/** Registers tapdisk2 at TAPDISK_PATH: the launcher prints the socket path and exits once it listens. */
export function installTapdisk(k: Kernel, script: TapdiskScript, log: TapdiskLog): void {
  const server = tapdiskServer(k, script, log);
  const launcher: Program = async (p) => {
    const pid = await p.spawn(server, [], { name: 'tapdisk2', daemonize: true });
    const path = `${BLKTAP2_CONTROL_DIR}/ctl${pid}`;
    while (!(await p.glob(path)).includes(path)) await p.yield();
    p.print(path);
    return 0;
  };
  k.registerProgram(TAPDISK_PATH, launcher);
}

function tapdiskServer(k: Kernel, script: TapdiskScript, log: TapdiskLog): Program {
  return async (p: Process) => {
    p.signal('SIGPIPE', 'ignore');
    await p.mkdir(BLKTAP2_CONTROL_DIR, { parents: true });
    const path = `${BLKTAP2_CONTROL_DIR}/ctl${p.pid}`;
    const listener = await p.listen(path, 10);
    const vbds = new Map<number, Vbd>();
    const eagainLeft = new Map<string, number>();
    for (;;) {
      const conn = await p.accept(listener);
      const data = await p.read(conn);
      if (data === null) {
        await p.close(conn);
        continue;
      }
      const msg = decodeTapdiskMessage(data);
      const type = typeName(msg.type);
      log.received.push(`${p.pid} ${type} ${msg.cookie} @${k.env.now()}`);
      const behaviour = script.on?.[type];
      let reply: TapdiskMessage[] | undefined;
      if (behaviour?.kind === 'eagain') {
        const left = eagainLeft.get(type) ?? behaviour.times;
        if (left > 0) {
          eagainLeft.set(type, left - 1);
          reply = [responseMessage('CLOSE_RSP', msg.cookie, 11)];
        }
      }
      if (behaviour?.kind === 'block-until-hangup') {
        // Like tapdisk stuck in the kernel: it only gets on once the client has gone.
        while ((await p.read(conn)) !== null);
      }
      if (behaviour?.kind === 'fail') reply = failure(type, msg.cookie, behaviour.error);
      reply ??= await handle(p, msg, vbds);
      if (behaviour?.kind !== 'no-reply') {
        for (const r of reply) {
          try {
            await p.write(conn, encodeTapdiskMessage(r));
          } catch (e) {
            if (!(e instanceof KernelError)) throw e;
            log.replyErrors.push(`${p.pid} ${type}: ${e.code}`);
            break;
          }
        }
      }
      await p.close(conn);
      if (type === 'DETACH' && vbds.size === 0) {
        await p.unlink(path);
        return 0;
      }
    }
  };
}

function failure(type: TapdiskMessageTypeName, cookie: number, error: number): TapdiskMessage[] {
  switch (type) {
    case 'ATTACH':
      return [responseMessage('ATTACH_RSP', cookie, error)];
    case 'CLOSE':
      return [responseMessage('CLOSE_RSP', cookie, error)];
    case 'DETACH':
      return [responseMessage('DETACH_RSP', cookie, error)];
    case 'PAUSE':
      return [responseMessage('PAUSE_RSP', cookie, error)];
    case 'RESUME':
      return [responseMessage('RESUME_RSP', cookie, error)];
    default:
      return [responseMessage('ERROR', cookie, error)];
  }
}

async function handle(p: Process, msg: TapdiskMessage, vbds: Map<number, Vbd>): Promise<TapdiskMessage[]> {
  const minor = msg.cookie;
  const vbd = vbds.get(minor);
  switch (typeName(msg.type)) {
    case 'PID':
      return [{ type: TapdiskMessageType.PID_RSP, cookie: msg.cookie, body: { kind: 'pid', pid: p.pid } }];
    case 'LIST':
      return listReplyMessages(
        msg.cookie,
        [...vbds.values()].map((v) => ({ minor: v.minor, state: v.state, path: v.path })),
      );
    case 'ATTACH': {
      if (vbd) return [responseMessage('ATTACH_RSP', minor, 17)];
      try {
        const ringFd = await p.open(ringDevicePath(minor), { read: true, write: true });
        vbds.set(minor, { minor, ringFd, path: '', state: 0 });
        return [responseMessage('ATTACH_RSP', minor, 0)];
      } catch (e) {
        if (!(e instanceof KernelError)) throw e;
        return [responseMessage('ATTACH_RSP', minor, e.errno)];
      }
    }
    case 'OPEN': {
      if (!vbd || msg.body.kind !== 'params') return [responseMessage('ERROR', minor, 22)];
      vbd.path = msg.body.path;
      vbd.state = 0;
      return [
        {
          type: TapdiskMessageType.OPEN_RSP,
          cookie: minor,
          body: { kind: 'image', sectors: 2048n, sectorSize: 512, info: 0 },
        },
      ];
    }
    case 'CLOSE':
    case 'FORCE_SHUTDOWN':
      if (!vbd) return [responseMessage('CLOSE_RSP', minor, 22)];
      vbd.path = '';
      vbd.state = TdVbdState.CLOSED;
      return [responseMessage('CLOSE_RSP', minor, 0)];
    case 'PAUSE':
      if (!vbd) return [responseMessage('PAUSE_RSP', minor, 22)];
      vbd.state |= TdVbdState.PAUSED;
      return [responseMessage('PAUSE_RSP', minor, 0)];
    case 'RESUME':
      if (!vbd) return [responseMessage('RESUME_RSP', minor, 22)];
      vbd.state &= ~TdVbdState.PAUSED;
      if (msg.body.kind === 'params' && msg.body.path !== '') vbd.path = msg.body.path;
      return [responseMessage('RESUME_RSP', minor, 0)];
    case 'DETACH':
      if (!vbd) return [responseMessage('DETACH_RSP', minor, 22)];
      if (vbd.ringFd !== undefined) await p.close(vbd.ringFd);
      vbds.delete(minor);
      return [responseMessage('DETACH_RSP', minor, 0)];
    default:
      return [responseMessage('ERROR', minor, 95)];
  }
}
