/**
 * One domain's kernel model: the name space (/dev, /sys, socket names), block layer, character devices,
 * unix sockets, poll, the D/S wait layer and the process table, built on the runtime `Env`. It knows
 * nothing of Xen devices: drivers (blkback, blktap2, blkfront) register themselves into it.
 */
import type { Env, Holder, WaitFor } from '../runtime/engine.js';
import { BlockLayer } from './block-device.js';
import { CharDevices } from './char-device.js';
import { KernelError } from './errno.js';
import { ImageDisk, type ImageDiskOptions } from './image-disk.js';
import { Namespace } from './namespace.js';
import { PollHub } from './poll.js';
import { type KernelServices, type Process, ProcessTable, type Program } from './process.js';
import { mountProcfs } from './procfs.js';
import { Sysfs } from './sysfs.js';
import { UeventHub } from './uevent.js';
import { UnixSockets } from './unix-socket.js';
import { KernelWaits } from './waits.js';

export interface KernelOptions {
  /** First pid handed out (default 100). */
  firstPid?: number;
  /** pid_max (default 32768). */
  pidMax?: number;
}

export class Kernel implements KernelServices {
  readonly ns = new Namespace();
  readonly sysfs: Sysfs;
  readonly waits: KernelWaits;
  readonly poll: PollHub;
  readonly chars = new CharDevices();
  readonly blocks: BlockLayer;
  readonly sockets: UnixSockets;
  /** Device add/remove events for udevd (NETLINK_KOBJECT_UEVENT). */
  readonly uevents: UeventHub;
  readonly processes: ProcessTable;
  private readonly programs = new Map<string, Program>();
  private imageMajor: number | undefined;

  constructor(
    readonly env: Env,
    options: KernelOptions = {},
  ) {
    this.sysfs = new Sysfs(this.ns);
    this.waits = new KernelWaits(env);
    this.poll = new PollHub(env);
    this.blocks = new BlockLayer(env, this.waits);
    this.sockets = new UnixSockets(env, this.ns, this.poll, this.waits);
    this.uevents = new UeventHub(env, this.poll, this.waits);
    this.processes = new ProcessTable(this, options);
    for (const dir of ['/var/run', '/tmp']) this.ns.mkdir(dir, { parents: true });
    mountProcfs(this.ns, this.chars, this.blocks);
  }

  /** Installs a program under a path so `spawn("/usr/sbin/tapdisk2")` finds it (exec). */
  registerProgram(path: string, program: Program): void {
    if (!path.startsWith('/'))
      throw new KernelError('EINVAL', `register program "${path}": path must be absolute`);
    if (this.programs.has(path)) throw new KernelError('EEXIST', `register program ${path}`);
    this.programs.set(path, program);
  }

  resolveProgram(name: string): Program {
    const program = this.programs.get(name);
    if (program === undefined) throw new KernelError('ENOENT', `exec ${name}: no such program installed`);
    return program;
  }

  /** Starts a process whose parent is init (reaped at exit; its status stays on the Process). */
  spawn(
    program: string | Program,
    args: readonly string[] = [],
    options: { name?: string; bootPid?: number } = {},
  ): Process {
    return this.processes.spawn(program, args, options);
  }

  /**
   * A plain block device (memory or image file) for the phy path, under a shared dynamic major named
   * "xenpv-img" unless a major is given.
   */
  createImageDisk(options: Omit<ImageDiskOptions, 'major'> & { major?: number }): ImageDisk {
    let major = options.major;
    if (major === undefined) {
      this.imageMajor ??= this.blocks.registerBlkdev(0, 'xenpv-img');
      major = this.imageMajor;
    }
    return new ImageDisk(this.env, this.blocks, { ...options, major });
  }
}

/** A holder that is not a task, e.g. "blkback vbd-1-51712" holding a block device open. */
export function namedHolder(label: string, blockedOn: () => WaitFor | undefined = () => undefined): Holder {
  return { label, blockedOn };
}
