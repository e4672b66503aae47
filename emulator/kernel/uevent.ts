/**
 * Device uevents (lib/kobject_uevent.c) and the NETLINK_KOBJECT_UEVENT socket udevd reads them from.
 * A bus that registers or unregisters a device calls `emit` (kobject_uevent_env): the event gets the
 * next SEQNUM, its environment ACTION, DEVPATH, SUBSYSTEM, the bus's own variables, SEQNUM, and is
 * broadcast as one datagram "action@devpath\0KEY=value\0..." to every open uevent socket. A socket
 * whose receive queue is full drops the datagram and its next recv() fails with ENOBUFS, as netlink does.
 * The kernel model knows nothing of the devices: buses pass names and variables.
 */
import type { Env } from '../runtime/engine.js';
import { KernelError } from './errno.js';
import { File, type FileOps } from './file.js';
import type { PollHub } from './poll.js';
import type { KernelWaits } from './waits.js';

/** kobject_action names (kobject_actions[] in lib/kobject_uevent.c). */
export const UEVENT_ACTIONS = [
  'add',
  'remove',
  'change',
  'move',
  'online',
  'offline',
  'bind',
  'unbind',
] as const;
export type UeventAction = (typeof UEVENT_ACTIONS)[number];

/** include/linux/kobject.h: at most 32 variables and 2048 bytes of them per event. */
export const UEVENT_NUM_ENVP = 32;
export const UEVENT_BUFFER_SIZE = 2048;
/** net.core.rmem_default: a socket's receive queue unless its owner asks for more. */
export const NETLINK_RMEM_DEFAULT = 212992;

/** What a bus says about the device an event is for. */
export interface UeventSource {
  /** sysfs path below /sys, e.g. "/devices/xen-backend/vbd-1-51712". */
  readonly devpath: string;
  readonly subsystem: string;
  /** The bus's uevent callback's variables, in order (e.g. XENBUS_TYPE, XENBUS_PATH). */
  readonly vars?: ReadonlyArray<readonly [string, string]>;
}

/** One event as a listener decodes it. */
export interface Uevent {
  readonly action: UeventAction;
  readonly devpath: string;
  readonly seqnum: number;
  /** Every KEY=value of the datagram, in order (ACTION, DEVPATH, SUBSYSTEM, ..., SEQNUM). */
  readonly env: ReadonlyMap<string, string>;
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function isAction(s: string): s is UeventAction {
  return (UEVENT_ACTIONS as readonly string[]).includes(s);
}

/** The datagram kobject_uevent_env broadcasts: "action@devpath\0" then each "KEY=value\0". */
export function encodeUevent(
  action: UeventAction,
  devpath: string,
  env: ReadonlyArray<readonly [string, string]>,
) {
  const text = `${action}@${devpath}\0${env.map(([k, v]) => `${k}=${v}\0`).join('')}`;
  return new TextEncoder().encode(text);
}

/**
 * Parses a uevent datagram. Throws RangeError naming the part that is wrong (header, a variable, a
 * missing ACTION/DEVPATH/SEQNUM or one that disagrees with the header).
 */
export function decodeUevent(bytes: Uint8Array): Uevent {
  const text = new TextDecoder().decode(bytes);
  if (!text.endsWith('\0')) throw new RangeError('uevent datagram: not NUL-terminated');
  const parts = text.slice(0, -1).split('\0');
  const header = parts[0]!;
  const at = header.indexOf('@');
  if (at <= 0) throw new RangeError(`uevent header ${JSON.stringify(header)}: not action@devpath`);
  const action = header.slice(0, at);
  const devpath = header.slice(at + 1);
  if (!isAction(action)) throw new RangeError(`uevent header: action ${JSON.stringify(action)} is unknown`);
  if (!devpath.startsWith('/')) throw new RangeError(`uevent header: devpath ${JSON.stringify(devpath)}`);
  const env = new Map<string, string>();
  for (const [i, part] of parts.slice(1).entries()) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (eq < 0 || !VAR_NAME.test(key))
      throw new RangeError(`uevent variable ${i}: ${JSON.stringify(part)} is not KEY=value`);
    env.set(key, part.slice(eq + 1));
  }
  if (env.get('ACTION') !== action)
    throw new RangeError(`uevent ACTION ${JSON.stringify(env.get('ACTION'))} is not the header's ${action}`);
  if (env.get('DEVPATH') !== devpath)
    throw new RangeError(
      `uevent DEVPATH ${JSON.stringify(env.get('DEVPATH'))} is not the header's ${devpath}`,
    );
  const seq = env.get('SEQNUM');
  if (seq === undefined || !/^\d+$/.test(seq)) throw new RangeError(`uevent SEQNUM ${JSON.stringify(seq)}`);
  return { action, devpath, seqnum: Number(seq), env };
}

interface Listener {
  readonly queue: Uint8Array[];
  queued: number;
  readonly rcvbuf: number;
  /** sk_err = ENOBUFS after a drop; reported by the next recv(). */
  overrun: boolean;
  readonly label: string;
}

export class UeventHub {
  private seq = 0;
  private readonly listeners = new Set<Listener>();

  constructor(
    private readonly env: Env,
    private readonly poll: PollHub,
    private readonly waits: KernelWaits,
  ) {}

  /** /sys/kernel/uevent_seqnum: the SEQNUM of the last event. */
  get seqnum(): number {
    return this.seq;
  }

  /**
   * kobject_uevent_env(kobj, action): builds and broadcasts the event; returns it. ENOMEM (as
   * add_uevent_var) when the variables exceed UEVENT_NUM_ENVP or UEVENT_BUFFER_SIZE; EINVAL for a
   * malformed name or a value with a NUL. Nothing is sent and SEQNUM does not move on error.
   */
  emit(action: UeventAction, source: UeventSource): Uevent {
    if (!isAction(action))
      throw new KernelError('EINVAL', `kobject_uevent: action ${JSON.stringify(action)}`);
    if (!source.devpath.startsWith('/') || source.devpath.includes('\0'))
      throw new KernelError('EINVAL', `kobject_uevent: devpath ${JSON.stringify(source.devpath)}`);
    const vars: Array<readonly [string, string]> = [
      ['ACTION', action],
      ['DEVPATH', source.devpath],
      ['SUBSYSTEM', source.subsystem],
      ...(source.vars ?? []),
    ];
    let size = 0;
    for (const [k, v] of vars) {
      if (!VAR_NAME.test(k) || v.includes('\0'))
        throw new KernelError('EINVAL', `kobject_uevent ${source.devpath}: variable ${JSON.stringify(k)}`);
      size += k.length + 1 + v.length + 1;
    }
    const seqnum = this.seq + 1;
    vars.push(['SEQNUM', String(seqnum)]);
    size += `SEQNUM=${seqnum}`.length + 1;
    if (vars.length > UEVENT_NUM_ENVP)
      throw new KernelError(
        'ENOMEM',
        `kobject_uevent ${source.devpath}: ${vars.length} variables > ${UEVENT_NUM_ENVP}`,
      );
    if (size > UEVENT_BUFFER_SIZE)
      throw new KernelError(
        'ENOMEM',
        `kobject_uevent ${source.devpath}: ${size} bytes > ${UEVENT_BUFFER_SIZE}`,
      );
    this.seq = seqnum;
    const datagram = encodeUevent(action, source.devpath, vars);
    this.env.trace.emit('uevent', action, { devpath: source.devpath, subsystem: source.subsystem, seqnum });
    for (const l of this.listeners) {
      if (l.queued + datagram.length > l.rcvbuf) {
        l.overrun = true;
        this.env.trace.emit('uevent', 'drop', { socket: l.label, seqnum });
        continue;
      }
      l.queue.push(datagram);
      l.queued += datagram.length;
    }
    this.poll.wake();
    return { action, devpath: source.devpath, seqnum, env: new Map(vars) };
  }

  /** Open uevent sockets. */
  get listenerCount(): number {
    return this.listeners.size;
  }

  /**
   * socket(AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT) bound to the kernel's multicast group 1:
   * recv() returns one datagram, blocking interruptibly while none is queued (EAGAIN when nonblocking).
   */
  openSocket(owner: string, options: { rcvbuf?: number } = {}): File {
    const rcvbuf = options.rcvbuf ?? NETLINK_RMEM_DEFAULT;
    if (!Number.isInteger(rcvbuf) || rcvbuf <= 0)
      throw new KernelError('EINVAL', `uevent socket of ${owner}: rcvbuf ${rcvbuf}`);
    const l: Listener = { queue: [], queued: 0, rcvbuf, overrun: false, label: `uevent socket of ${owner}` };
    this.listeners.add(l);
    const ready = () => l.queue.length > 0 || l.overrun;
    const ops: FileOps = {
      describe: () => l.label,
      poll: () => ({ readable: ready(), writable: false }),
      release: () => {
        this.listeners.delete(l);
      },
      read: async (file, request) => {
        if (!ready()) {
          if (file.nonblocking) throw new KernelError('EAGAIN', `recv ${l.label}: no event queued`);
          await this.waits.waitInterruptible(this.poll.queue, ready, { what: `a uevent on the ${l.label}` });
        }
        if (l.overrun) {
          l.overrun = false;
          throw new KernelError('ENOBUFS', `recv ${l.label}: events were dropped (receive queue full)`);
        }
        const d = l.queue.shift()!;
        l.queued -= d.length;
        // A datagram longer than the buffer is truncated (MSG_TRUNC), as recv() does.
        return request.length < d.length ? d.slice(0, request.length) : d;
      },
      write: async () => {
        throw new KernelError('EOPNOTSUPP', `send on ${l.label}: user space does not send uevents here`);
      },
    };
    return new File('socket:[NETLINK_KOBJECT_UEVENT]', ops, { read: true, write: false });
  }
}
