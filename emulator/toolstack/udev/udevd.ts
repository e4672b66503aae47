/**
 * udevd as dom0 runs it for Xen (udev 1xx of the 2010-2012 distributions): it reads kernel uevents from
 * its NETLINK_KOBJECT_UEVENT socket, queues them, and runs each in a worker once no earlier event for the
 * same device (or a parent or child of it) is still running (is_devpath_busy). The worker applies the
 * rules and runs every RUN program in order, each with the event's environment, waiting for it up to the
 * event timeout (180 s) and killing it after that. A program that cannot be executed or fails is logged
 * and the next one runs.
 *
 * Simplifications: a worker is a thread of udevd rather than a forked process (the programs it runs are
 * children of udevd either way), and the environment travels as leading NAME=value arguments, as env(1)
 * would pass them (the kernel model's exec has no environment).
 */
import { KernelError } from '../../kernel/errno.js';
import type { Kernel } from '../../kernel/kernel.js';
import type { Process, Program } from '../../kernel/process.js';
import { decodeUevent, type Uevent } from '../../kernel/uevent.js';
import type { WaitQueue } from '../../runtime/engine.js';
import { applyRules, type UdevRule } from './rules.js';

export const UDEVD_PATH = '/sbin/udevd';
/** udevd's default event_timeout (seconds) in udev 1xx. */
export const UDEV_EVENT_TIMEOUT = 180;
/** What udevd asks for with SO_RCVBUFFORCE: 128 MiB, so the kernel never drops an event on it. */
export const UDEV_RCVBUF = 128 * 1024 * 1024;

export interface UdevdOptions {
  readonly rules: readonly UdevRule[];
  /** Event timeout in seconds (default UDEV_EVENT_TIMEOUT). */
  readonly eventTimeoutS?: number;
}

/** What udevadm settle reads: the last event udevd received and how many it has not finished. */
interface UdevQueueState {
  received: number;
  pending: number;
  readonly changed: WaitQueue;
}

const queues = new WeakMap<Kernel, UdevQueueState>();

function queueState(kernel: Kernel): UdevQueueState {
  let s = queues.get(kernel);
  if (s === undefined) {
    s = { received: 0, pending: 0, changed: kernel.env.waitQueue('udev event queue') };
    queues.set(kernel, s);
  }
  return s;
}

/**
 * `udevadm settle`: waits until udevd has received every uevent the kernel sent so far
 * (/sys/kernel/uevent_seqnum) and finished them all; false when `timeoutMs` passed first (exit 1).
 */
export async function udevSettle(kernel: Kernel, timeoutMs: number): Promise<boolean> {
  const s = queueState(kernel);
  const settled = () => s.pending === 0 && s.received >= kernel.uevents.seqnum;
  const r = await kernel.waits.waitInterruptible(s.changed, settled, {
    what: `udevd to handle uevents up to ${kernel.uevents.seqnum}`,
    timeoutMs,
    timeoutName: `udevadm settle ${timeoutMs / 1000} s timeout`,
  });
  return r === 'ok' || settled();
}

/** udevadm's default settle timeout (seconds). */
export const UDEVADM_SETTLE_TIMEOUT = 120;
export const UDEVADM_PATH = '/sbin/udevadm';

/** `udevadm settle [--timeout=N]`; other commands are not modelled. */
export function udevadmProgram(kernel: Kernel): Program {
  return async (proc: Process, args: readonly string[]): Promise<number> => {
    if (args[0] !== 'settle') {
      proc.print(`udevadm: not implemented in the model: ${args.join(' ')}`);
      return 2;
    }
    let timeout = UDEVADM_SETTLE_TIMEOUT;
    for (const a of args.slice(1)) {
      const m = /^--timeout=(\d+)$/.exec(a);
      if (m === null) {
        proc.print(`udevadm settle: unknown option ${a}`);
        return 2;
      }
      timeout = Number(m[1]);
    }
    return (await udevSettle(kernel, timeout * 1000)) ? 0 : 1;
  };
}

interface QueuedEvent {
  readonly event: Uevent;
  state: 'queued' | 'running' | 'done';
}

/** True when one devpath is the other or a parent of it (is_devpath_busy's checks). */
export function devpathsRelated(a: string, b: string): boolean {
  if (a === b) return true;
  const [short, long] = a.length < b.length ? [a, b] : [b, a];
  return long.startsWith(short) && long[short.length] === '/';
}

/** Splits a RUN command line at blanks (udev_build_argv; the model's rules quote nothing). */
export function runArgv(command: string): string[] {
  return command.split(/\s+/).filter((s) => s !== '');
}

export function udevdProgram(kernel: Kernel, options: UdevdOptions): Program {
  const timeoutMs = (options.eventTimeoutS ?? UDEV_EVENT_TIMEOUT) * 1000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new RangeError(`udevd: eventTimeoutS ${options.eventTimeoutS} is not a positive number`);
  return async (proc: Process): Promise<number> => {
    const log = (msg: string) => {
      kernel.env.trace.log('udevd', msg);
      proc.print(msg);
    };
    const fd = await proc.ueventSocket({ rcvbuf: UDEV_RCVBUF });
    const queue: QueuedEvent[] = [];
    const settle = queueState(kernel);

    /** Starts every queued event whose device has no earlier event still queued or running. */
    const dispatch = () => {
      for (const [i, q] of queue.entries()) {
        if (q.state !== 'queued') continue;
        const busy = queue
          .slice(0, i)
          .some((e) => e.state !== 'done' && devpathsRelated(e.event.devpath, q.event.devpath));
        if (busy) continue;
        q.state = 'running';
        proc.spawnThread(`worker-${q.event.seqnum}`, async () => {
          try {
            await runEvent(q.event);
          } finally {
            q.state = 'done';
            queue.splice(queue.indexOf(q), 1);
            settle.pending--;
            settle.changed.wakeAll();
            dispatch();
          }
        });
      }
    };

    const runEvent = async (event: Uevent) => {
      const result = applyRules(options.rules, { env: event.env });
      kernel.env.trace.emit('udevd', 'event', {
        seqnum: event.seqnum,
        action: event.action,
        devpath: event.devpath,
        run: [...result.run],
      });
      const envArgs = [...result.env].map(([k, v]) => `${k}=${v}`);
      for (const command of result.run) {
        const [path, ...args] = runArgv(command);
        if (path === undefined) continue;
        let pid: number;
        try {
          pid = await proc.spawn(path, [...envArgs, ...args]);
        } catch (e) {
          if (!(e instanceof KernelError)) throw e;
          log(`failed to execute '${path}' '${command}': ${e.message}`);
          continue;
        }
        let waited = await proc.waitpid(pid, { timeoutMs });
        if (waited === undefined) {
          log(`timeout: killing '${command}' [${pid}]`);
          await proc.kill(pid, 'SIGKILL');
          waited = await proc.waitpid(pid);
        }
        const st = waited?.status;
        if (st?.signal !== undefined) log(`'${command}' [${pid}] terminated by signal ${st.signal}`);
        else if ((st?.code ?? 0) !== 0) log(`'${command}' [${pid}] exit with return code ${st?.code}`);
      }
    };

    for (;;) {
      let datagram: Uint8Array | null;
      try {
        datagram = await proc.read(fd, { length: 8192 });
      } catch (e) {
        if (e instanceof KernelError && e.code === 'ENOBUFS') {
          log(`uevent socket: ${e.message}`);
          continue;
        }
        throw e;
      }
      if (datagram === null) return 0;
      settle.changed.wakeAll();
      let event: Uevent;
      try {
        event = decodeUevent(datagram);
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        log(`invalid uevent ignored: ${e.message}`);
        continue;
      }
      queue.push({ event, state: 'queued' });
      settle.received = Math.max(settle.received, event.seqnum);
      settle.pending++;
      dispatch();
    }
  };
}
