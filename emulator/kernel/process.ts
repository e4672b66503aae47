/**
 * Processes: pids allocated like Linux (increasing, wrapping past pid_max to 300, skipping live ones), a
 * process being a set of tasks plus a descriptor table and an address space, the syscalls user-space
 * components call, exit with Linux's cleanup order (exit_mm: every mapping is closed, then exit_files:
 * every descriptor), SIGKILL that ends interruptible sleeps at once but never an uninterruptible one
 * (D state), zombies until the parent reaps them, and `ps`.
 *
 * User-space code blocks only through these methods: they are the scheduling points where a pending
 * fatal signal takes effect.
 */
import type { Env, Holder, Millis, Task, WaitFor, WaitQueue } from '../runtime/engine.js';
import type { BlockLayer } from './block-device.js';
import type { CharDevices } from './char-device.js';
import { KernelError } from './errno.js';
import { Eventfd } from './eventfd.js';
import { AddressSpace, FdTable, type File, type FileMode, type Vma } from './file.js';
import type { Namespace } from './namespace.js';
import type { PollHub } from './poll.js';
import {
  canIgnore,
  defaultTerminates,
  isSignalName,
  SIGNALS,
  type SignalDisposition,
  type SignalName,
  TaskKilled,
} from './signals.js';
import { openAttributeFile, openBlockFile } from './special-files.js';
import type { UeventHub } from './uevent.js';
import type { UnixSockets } from './unix-socket.js';
import type { FatalSignalSource, KernelWaits } from './waits.js';

/** A user-space program: its main task runs this; the result is the exit code (0 when void). */
// biome-ignore lint/suspicious/noConfusingVoidType: lets `async () => {}` be a program that exits 0
export type Program = (proc: Process, args: readonly string[]) => Promise<number | undefined | void>;

/** include/linux/threads.h PID_MAX_DEFAULT and kernel/pid.c RESERVED_PIDS. */
export const PID_MAX_DEFAULT = 32768;
export const RESERVED_PIDS = 300;
/** The init process every orphan is reparented to; it reaps its children at once. */
export const INIT_PID = 1;

export interface ExitStatus {
  /** exit(code), when the process exited by itself. */
  code?: number;
  /** The signal that ended it. */
  signal?: SignalName;
  /** The wait(2) status word: code << 8, or the signal number. */
  wstatus: number;
}

export interface PsRow {
  pid: number;
  ppid: number;
  name: string;
  args: readonly string[];
  /** R running/runnable, S interruptible sleep, D uninterruptible sleep, Z zombie. */
  state: 'R' | 'S' | 'D' | 'Z';
  /** What a sleeping process waits for (like ps's WCHAN, but in words). */
  wchan?: string;
}

export interface SelectOptions {
  /** Give up after this long; omit to wait until ready (select with a NULL timeout). */
  timeoutMs?: Millis;
  /** Timer name for stall reports: "tap-ctl select() 5 s". */
  timeoutName?: string;
  /** What the caller waits for in words: "DETACH reply from tapdisk 201". */
  what?: string;
}

export interface SelectResult {
  readable: number[];
  writable: number[];
}

export interface OpenFlags {
  read?: boolean;
  write?: boolean;
  nonblocking?: boolean;
  /** O_EXCL on a block device: exclusive claim. */
  exclusive?: boolean;
}

/** What a process needs from its kernel. */
export interface KernelServices {
  readonly env: Env;
  readonly waits: KernelWaits;
  readonly ns: Namespace;
  readonly poll: PollHub;
  readonly chars: CharDevices;
  readonly blocks: BlockLayer;
  readonly sockets: UnixSockets;
  readonly uevents: UeventHub;
  resolveProgram(name: string): Program;
}

/** Thrown by exit() through the caller's stack; the task wrapper turns it into the exit status. */
class ProcessExit extends Error {
  constructor(readonly code: number) {
    super(`exit(${code})`);
  }
}

export class Process implements Holder {
  readonly label: string;
  readonly fds: FdTable;
  readonly mm: AddressSpace;
  /** Lines the program printed (its stdout). */
  readonly output: string[] = [];
  ppid: number;
  private readonly liveTasks = new Set<Task>();
  private readonly dispositions = new Map<SignalName, SignalDisposition>();
  /** Set when the process must die: by a signal, or by exit_group from another task. */
  fatal: { reason: string; signal?: SignalName } | undefined;
  exitStatus: ExitStatus | undefined;
  state: 'live' | 'exiting' | 'zombie' | 'reaped' = 'live';
  private threadCount = 0;

  constructor(
    private readonly k: KernelServices,
    private readonly table: ProcessTable,
    readonly pid: number,
    ppid: number,
    readonly name: string,
    readonly args: readonly string[],
  ) {
    this.ppid = ppid;
    this.label = `dom${k.env.domid}/${name}[${pid}]`;
    this.fds = new FdTable(this);
    this.mm = new AddressSpace(this);
  }

  /** What one of this process's blocked tasks waits for (the main one first). */
  blockedOn(): WaitFor | undefined {
    for (const t of this.liveTasks) {
      if (t.state === 'blocked') {
        const w = t.blockedOn();
        if (w !== undefined) return w;
      }
    }
    return undefined;
  }

  tasks(): Task[] {
    return [...this.liveTasks];
  }

  // ---- files ---------------------------------------------------------------------------------------

  /** open(2) of a device node or sysfs attribute. */
  open(path: string, flags: OpenFlags = { read: true }): Promise<number> {
    return this.sys(async () => {
      const node = this.k.ns.lookup(path);
      const mode: FileMode = { read: flags.read ?? !flags.write, write: flags.write ?? false };
      let file: File;
      switch (node.kind) {
        case 'dir':
          throw new KernelError('EISDIR', `open ${path}`);
        case 'sock':
          throw new KernelError('ENXIO', `open ${path}: a socket is reached with connect()`);
        case 'attr':
          file = openAttributeFile(this.k.ns, path, mode);
          break;
        case 'chr':
          file = await this.k.chars.open(path, node.major, node.minor, mode, this);
          break;
        case 'blk':
          file = await openBlockFile(
            this.k.blocks,
            path,
            node.major,
            node.minor,
            { ...mode, exclusive: flags.exclusive },
            this,
          );
          break;
      }
      file.nonblocking = flags.nonblocking ?? false;
      return this.installOrRelease(file);
    });
  }

  /** close(2): drops the descriptor's reference; the driver's release runs here if it was the last. */
  close(fd: number): Promise<void> {
    return this.sys(async () => {
      const file = this.fds.remove(fd, 'close');
      await file.put();
    });
  }

  /** dup(2) */
  dup(fd: number): Promise<number> {
    return this.sys(async () => {
      const file = this.fds.get(fd, 'dup');
      file.get();
      return this.installOrRelease(file);
    });
  }

  ioctl(fd: number, cmd: number, arg?: unknown): Promise<number> {
    return this.sys(async () => {
      const file = this.fds.get(fd, 'ioctl');
      if (file.ops.ioctl === undefined) throw new KernelError('ENOTTY', `ioctl ${cmd} on ${file.describe()}`);
      return await file.ops.ioctl(file, cmd, arg);
    });
  }

  /** mmap(2) of a device: the mapping holds its own reference to the file. */
  mmap(fd: number, length: number, pgoff = 0): Promise<Vma> {
    return this.sys(async () => {
      const file = this.fds.get(fd, 'mmap');
      if (file.ops.mmap === undefined) throw new KernelError('ENODEV', `mmap ${file.describe()}`);
      const vma = this.mm.create(file, length, pgoff);
      await file.ops.mmap(file, vma);
      file.get();
      this.mm.insert(vma);
      return vma;
    });
  }

  /** munmap(2): vm_ops close, then the file reference goes (the driver's release runs if it was the last). */
  munmap(vma: Vma): Promise<void> {
    return this.sys(async () => {
      const taken = this.mm.take(vma.start, vma.length);
      await this.unmap(taken);
    });
  }

  /** read(2)/pread(2); null at end of file or stream. */
  read(fd: number, request: { length?: number; offset?: number } = {}): Promise<Uint8Array | null> {
    return this.sys(async () => {
      const file = this.fds.get(fd, 'read');
      if (file.ops.read === undefined || !file.mode.read)
        throw new KernelError('EBADF', `read ${file.describe()}`);
      return await file.ops.read(file, {
        length: request.length ?? 0,
        ...(request.offset === undefined ? {} : { offset: request.offset }),
      });
    });
  }

  /** write(2)/pwrite(2). EPIPE also raises SIGPIPE, which kills unless ignored. */
  write(fd: number, data: Uint8Array, offset?: number): Promise<number> {
    return this.sys(async () => {
      const file = this.fds.get(fd, 'write');
      if (file.ops.write === undefined || !file.mode.write)
        throw new KernelError('EBADF', `write ${file.describe()}`);
      try {
        return await file.ops.write(file, data, offset);
      } catch (e) {
        if (e instanceof KernelError && e.code === 'EPIPE') this.table.deliver(this, 'SIGPIPE');
        throw e;
      }
    });
  }

  setNonblocking(fd: number, nonblocking: boolean): void {
    this.fds.get(fd, 'fcntl').nonblocking = nonblocking;
  }

  /** The file behind a descriptor (for drivers' tests and the shell). */
  file(fd: number): File {
    return this.fds.get(fd, 'fget');
  }

  // ---- sockets -------------------------------------------------------------------------------------

  /** socket + bind + listen on a unix path. */
  listen(path: string, backlog: number): Promise<number> {
    return this.sys(async () => this.installOrRelease(this.k.sockets.listen(path, backlog)));
  }

  connect(path: string, options: { nonblocking?: boolean } = {}): Promise<number> {
    return this.sys(async () => this.installOrRelease(await this.k.sockets.connect(path, options)));
  }

  accept(fd: number): Promise<number> {
    return this.sys(async () => {
      const listener = this.fds.get(fd, 'accept');
      return this.installOrRelease(await this.k.sockets.accept(listener));
    });
  }

  /**
   * select(2) for readability and writability. The wait carries the caller's timeout and timer name and
   * names as holders whoever must act on the other end of each descriptor. Returns empty sets on timeout.
   */
  select(
    readFds: readonly number[],
    writeFds: readonly number[],
    options: SelectOptions = {},
  ): Promise<SelectResult> {
    return this.sys(async () => {
      const reads = readFds.map((fd) => [fd, this.fds.get(fd, 'select')] as const);
      const writes = writeFds.map((fd) => [fd, this.fds.get(fd, 'select')] as const);
      const { timeoutMs } = options;
      if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs < 0)) {
        throw new KernelError('EINVAL', `select: timeout ${timeoutMs} ms`);
      }
      const ready = (): SelectResult => ({
        readable: reads.filter(([, f]) => f.ops.poll?.(f).readable ?? true).map(([fd]) => fd),
        writable: writes.filter(([, f]) => f.ops.poll?.(f).writable ?? true).map(([fd]) => fd),
      });
      const any = (): boolean => {
        const r = ready();
        return r.readable.length > 0 || r.writable.length > 0;
      };
      if (any() || timeoutMs === 0) return ready();
      const describe = (list: ReadonlyArray<readonly [number, File]>, how: string): string[] =>
        list.map(([fd, f]) => `${how} fd ${fd} (${f.describe()})`);
      const what =
        options.what ?? [...describe(reads, 'readable'), ...describe(writes, 'writable')].join(', ');
      const holders = (): Holder[] => {
        const all = new Set<Holder>();
        for (const [, f] of [...reads, ...writes]) for (const h of f.ops.pollHolders?.(f) ?? []) all.add(h);
        all.delete(this);
        return [...all];
      };
      const result = await this.k.waits.waitInterruptible(this.k.poll.queue, any, {
        what,
        holders,
        ...(timeoutMs === undefined
          ? {}
          : { timeoutMs, timeoutName: options.timeoutName ?? `select() ${timeoutMs} ms` }),
      });
      if (result === 'timeout') return { readable: [], writable: [] };
      return ready();
    });
  }

  /** eventfd(2): returns the descriptor and the kernel object (for kernel code that signals it). */
  eventfd(name: string, options: { nonblocking?: boolean } = {}): Promise<{ fd: number; eventfd: Eventfd }> {
    return this.sys(async () => {
      const eventfd = new Eventfd(this.k.poll, this.k.waits, name);
      const file = eventfd.file();
      file.nonblocking = options.nonblocking ?? false;
      return { fd: await this.installOrRelease(file), eventfd };
    });
  }

  /** socket(AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT) + bind to the kernel's group (udevd). */
  ueventSocket(options: { rcvbuf?: number; nonblocking?: boolean } = {}): Promise<number> {
    return this.sys(async () => {
      const file = this.k.uevents.openSocket(
        this.label,
        options.rcvbuf === undefined ? {} : { rcvbuf: options.rcvbuf },
      );
      file.nonblocking = options.nonblocking ?? false;
      return this.installOrRelease(file);
    });
  }

  // ---- names ---------------------------------------------------------------------------------------

  unlink(path: string): Promise<void> {
    return this.sys(async () => this.k.ns.unlink(path));
  }

  mkdir(path: string, options: { parents?: boolean } = {}): Promise<void> {
    return this.sys(async () => this.k.ns.mkdir(path, options));
  }

  mknod(path: string, kind: 'chr' | 'blk', major: number, minor: number): Promise<void> {
    return this.sys(async () => this.k.ns.mknod(path, kind, major, minor));
  }

  glob(pattern: string): Promise<string[]> {
    return this.sys(async () => this.k.ns.glob(pattern));
  }

  /** Reads a whole sysfs attribute as text (open + read + close). */
  readText(path: string): Promise<string> {
    return this.sys(async () => this.k.ns.readAttribute(path));
  }

  /** Writes a sysfs attribute (open + write + close); the store callback runs in this task. */
  writeText(path: string, value: string): Promise<void> {
    return this.sys(async () => this.k.ns.writeAttribute(path, value));
  }

  // ---- time, signals, children --------------------------------------------------------------------

  /** nanosleep(2): interruptible. */
  sleep(ms: Millis): Promise<void> {
    return this.sys(() =>
      this.k.waits.sleep(ms, { interruptible: true, what: `${this.name} sleep ${ms} ms` }),
    );
  }

  /** sched_yield(2): a scheduling point. */
  yield(): Promise<void> {
    return this.sys(() => this.k.env.yield());
  }

  /** sigaction(SIG_IGN / SIG_DFL). */
  signal(sig: SignalName, disposition: SignalDisposition): void {
    if (!isSignalName(sig)) throw new KernelError('EINVAL', `sigaction: signal ${String(sig)}`);
    if (disposition === 'ignore' && !canIgnore(sig))
      throw new KernelError('EINVAL', `sigaction: ${sig} cannot be ignored`);
    this.dispositions.set(sig, disposition);
  }

  disposition(sig: SignalName): SignalDisposition {
    return this.dispositions.get(sig) ?? 'default';
  }

  kill(pid: number, sig: SignalName): Promise<void> {
    return this.sys(async () => this.table.kill(pid, sig));
  }

  /** fork+exec: the child's parent is this process (or init with `daemonize`, as tapdisk2 daemonizes). */
  spawn(
    program: string | Program,
    args: readonly string[] = [],
    options: { name?: string; daemonize?: boolean } = {},
  ): Promise<number> {
    return this.sys(
      async () =>
        this.table.spawn(program, args, { ...options, parent: options.daemonize ? INIT_PID : this.pid }).pid,
    );
  }

  /**
   * waitpid(2) for a child (pid -1: any child), reaping it. With a timeout, returns undefined when no
   * child exited in time. ECHILD when there is no such child.
   */
  waitpid(
    pid: number,
    options: { timeoutMs?: Millis } = {},
  ): Promise<{ pid: number; status: ExitStatus } | undefined> {
    return this.sys(() => this.table.waitChild(this, pid, options.timeoutMs));
  }

  /** exit(2) (exit_group): never returns. */
  exit(code: number): never {
    if (!Number.isInteger(code)) throw new KernelError('EINVAL', `exit: code ${code}`);
    throw new ProcessExit(code & 0xff);
  }

  /** Starts another task (thread) in this process. */
  spawnThread(name: string, body: () => Promise<void>): Task {
    if (this.state !== 'live' || this.fatal !== undefined)
      throw new KernelError('EAGAIN', `clone in ${this.label}: exiting`);
    return this.table.startTask(this, `${this.name}[${this.pid}]/${name}#${++this.threadCount}`, body, false);
  }

  /** Appends a line to the program's output. */
  print(line: string): void {
    this.output.push(line);
    this.k.env.trace.emit('proc', 'stdout', { pid: this.pid, line });
    this.table.outputWritten();
  }

  /**
   * read(2) on a pipe from the stdout of process `pid` (tap-ctl reading what tapdisk2 printed): blocks
   * until it printed a line or exited, then returns every line printed so far (none at end of file).
   * Simplification: stdout is a line log, so the pipe is modelled by waiting on it rather than by bytes.
   */
  readOutput(pid: number, options: { what?: string } = {}): Promise<readonly string[]> {
    return this.sys(async () => {
      const child = this.table.get(pid);
      if (child === undefined) throw new KernelError('EBADF', `read stdout of ${pid}: no such process`);
      const exited = () => child.state === 'zombie' || child.state === 'reaped';
      await this.table.waitOutput(() => child.output.length > 0 || exited(), {
        what: options.what ?? `a line on the stdout of ${child.label}`,
        holders: () => [child],
      });
      return [...child.output];
    });
  }

  // ---- internals -----------------------------------------------------------------------------------

  /** @internal */
  addTask(task: Task): void {
    this.liveTasks.add(task);
  }

  /** @internal */
  removeTask(task: Task): number {
    this.liveTasks.delete(task);
    return this.liveTasks.size;
  }

  /** @internal exit_mm then exit_files, in the last task; a blocking release blocks it here. */
  async cleanup(): Promise<void> {
    for (const vma of this.mm.removeAll())
      await this.bestEffort(`unmap ${vma.file.describe()}`, () => this.unmap(vma));
    for (const [fd] of this.fds.list()) {
      const file = this.fds.remove(fd, 'exit');
      await this.bestEffort(`close fd ${fd} (${file.describe()})`, () => file.put());
    }
  }

  private async unmap(vma: Vma): Promise<void> {
    await vma.file.ops.vmClose?.(vma);
    await vma.file.put();
  }

  private async bestEffort(what: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      if (!(e instanceof KernelError) && !(e instanceof TaskKilled)) throw e;
      this.k.env.trace.log('proc', `${this.label} exit: ${what}: ${e.message}`);
    }
  }

  private async installOrRelease(file: File): Promise<number> {
    try {
      return this.fds.install(file);
    } catch (e) {
      await file.put();
      throw e;
    }
  }

  /** Syscall entry and exit: the points where a pending fatal signal ends the task. */
  private async sys<T>(body: () => Promise<T>): Promise<T> {
    const task = this.k.env.current();
    if (!this.liveTasks.has(task)) {
      throw new Error(`syscall of ${this.label} made from task ${task.label}, which is not one of its tasks`);
    }
    this.k.waits.checkpoint();
    let value: T;
    try {
      value = await body();
    } catch (e) {
      if (e instanceof KernelError) this.k.waits.checkpoint();
      throw e;
    }
    this.k.waits.checkpoint();
    return value;
  }
}

export class ProcessTable implements FatalSignalSource {
  private readonly procs = new Map<number, Process>();
  private readonly byTask = new Map<number, Process>();
  private readonly childExit: WaitQueue;
  /** Readers of a process's stdout (Process.readOutput); woken by print and by exit (EOF). */
  private readonly stdout: WaitQueue;
  private lastPid: number;

  constructor(
    private readonly k: KernelServices,
    options: { firstPid?: number; pidMax?: number } = {},
  ) {
    this.pidMax = options.pidMax ?? PID_MAX_DEFAULT;
    const first = options.firstPid ?? 100;
    if (!Number.isInteger(first) || first < 2 || first >= this.pidMax) {
      throw new KernelError('EINVAL', `process table: firstPid ${first} outside 2..${this.pidMax - 1}`);
    }
    this.lastPid = first - 1;
    this.firstPid = first;
    this.childExit = k.env.waitQueue('child exit');
    this.stdout = k.env.waitQueue('stdout pipes');
    k.waits.setSignalSource(this);
  }

  private readonly pidMax: number;
  private readonly firstPid: number;

  /** Starts a program. Without `parent`, init is the parent (the process is reaped as soon as it exits). */
  spawn(
    program: string | Program,
    args: readonly string[] = [],
    options: { name?: string; parent?: number; bootPid?: number } = {},
  ): Process {
    const body = typeof program === 'string' ? this.k.resolveProgram(program) : program;
    const name = options.name ?? (typeof program === 'string' ? basename(program) : body.name || 'a.out');
    const parent = options.parent ?? INIT_PID;
    if (parent !== INIT_PID && !this.procs.has(parent))
      throw new KernelError('ESRCH', `spawn ${name}: parent ${parent}`);
    const pid = options.bootPid === undefined ? this.allocPid(name) : this.takeBootPid(name, options.bootPid);
    const proc = new Process(this.k, this, pid, parent, name, [...args]);
    this.procs.set(pid, proc);
    this.k.env.trace.emit('proc', 'spawn', { pid, ppid: parent, name, args: [...args] });
    this.startTask(
      proc,
      `${name}[${pid}]`,
      async () => {
        const code = await body(proc, proc.args);
        throw new ProcessExit(typeof code === 'number' ? code & 0xff : 0);
      },
      true,
    );
    return proc;
  }

  get(pid: number): Process | undefined {
    return this.procs.get(pid);
  }

  /** The process the current task belongs to, or undefined for a kernel thread. */
  current(): Process | undefined {
    return this.byTask.get(this.k.env.current().id);
  }

  /** kill(2). ESRCH for no such process; a zombie accepts and ignores signals. */
  kill(pid: number, sig: SignalName): void {
    if (!isSignalName(sig)) throw new KernelError('EINVAL', `kill ${pid}: signal ${String(sig)}`);
    const proc = this.procs.get(pid);
    if (proc === undefined) throw new KernelError('ESRCH', `kill ${pid} ${sig}`);
    this.deliver(proc, sig);
  }

  /** Applies a signal's disposition: ignored, or the process starts dying. */
  deliver(proc: Process, sig: SignalName): void {
    if (proc.state === 'zombie' || proc.state === 'reaped') return;
    this.k.env.trace.emit('proc', 'signal', { pid: proc.pid, signal: sig });
    if (proc.disposition(sig) === 'ignore' || !defaultTerminates(sig)) return;
    if (proc.fatal !== undefined) return;
    proc.fatal = { reason: `killed by ${sig}`, signal: sig };
    for (const t of proc.tasks()) this.k.waits.interrupt(t);
  }

  fatalPending(task: Task): { pid: number; reason: string } | undefined {
    const proc = this.byTask.get(task.id);
    if (proc === undefined || proc.fatal === undefined) return undefined;
    // The task running exit cleanup after exit() is not itself signalled.
    if (proc.state === 'exiting' && proc.fatal.signal === undefined) return undefined;
    return { pid: proc.pid, reason: proc.fatal.reason };
  }

  /** @internal a process printed a line: wake readers of its stdout. */
  outputWritten(): void {
    this.stdout.wakeAll();
  }

  /** @internal Process.readOutput's interruptible wait (pipe_read). */
  async waitOutput(cond: () => boolean, options: { what: string; holders: () => Holder[] }): Promise<void> {
    await this.k.waits.waitInterruptible(this.stdout, cond, options);
  }

  /** Waits until `proc` has exited (any caller, no reaping); undefined on timeout. */
  async waitExit(proc: Process, timeoutMs?: Millis): Promise<ExitStatus | undefined> {
    const done = () => proc.state === 'zombie' || proc.state === 'reaped';
    const result = await this.k.waits.waitUninterruptible(this.childExit, done, {
      what: `exit of ${proc.label}`,
      holders: () => [proc],
      ...(timeoutMs === undefined
        ? {}
        : { timeoutMs, timeoutName: `wait for ${proc.label} ${timeoutMs} ms` }),
    });
    return result === 'timeout' ? undefined : proc.exitStatus;
  }

  /** @internal waitpid for `parent`. */
  async waitChild(
    parent: Process,
    pid: number,
    timeoutMs?: Millis,
  ): Promise<{ pid: number; status: ExitStatus } | undefined> {
    const children = (): Process[] =>
      [...this.procs.values()].filter((p) => p.ppid === parent.pid && (pid === -1 || p.pid === pid));
    if (children().length === 0) throw new KernelError('ECHILD', `waitpid ${pid} in ${parent.label}`);
    const zombie = (): Process | undefined => children().find((p) => p.state === 'zombie');
    if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs < 0)) {
      throw new KernelError('EINVAL', `waitpid ${pid}: timeout ${timeoutMs} ms`);
    }
    if (zombie() === undefined) {
      if (timeoutMs === 0) return undefined;
      const result = await this.k.waits.waitInterruptible(
        this.childExit,
        () => zombie() !== undefined || children().length === 0,
        {
          what: pid === -1 ? `exit of a child of ${parent.label}` : `exit of child ${pid} of ${parent.label}`,
          holders: () => children(),
          ...(timeoutMs === undefined ? {} : { timeoutMs, timeoutName: `waitpid ${pid} ${timeoutMs} ms` }),
        },
      );
      if (result === 'timeout') return undefined;
    }
    const child = zombie();
    if (child === undefined) throw new KernelError('ECHILD', `waitpid ${pid} in ${parent.label}`);
    this.reap(child);
    return { pid: child.pid, status: child.exitStatus! };
  }

  /** The process table, by pid. */
  ps(): PsRow[] {
    return [...this.procs.values()]
      .sort((a, b) => a.pid - b.pid)
      .map((p) => {
        const row: PsRow = { pid: p.pid, ppid: p.ppid, name: p.name, args: p.args, state: 'R' };
        if (p.state === 'zombie') return { ...row, state: 'Z' };
        const tasks = p.tasks();
        const sleeping = tasks.map((t) => (t.state === 'blocked' ? this.sleepOf(t) : undefined));
        const d = sleeping.find((s) => s?.state === 'D');
        if (d !== undefined) return { ...row, state: 'D', wchan: d.what };
        if (tasks.length > 0 && sleeping.every((s) => s !== undefined))
          return { ...row, state: 'S', wchan: sleeping[0]!.what };
        return row;
      });
  }

  /** @internal */
  startTask(proc: Process, taskName: string, body: () => Promise<void>, main: boolean): Task {
    let task: Task | undefined;
    const run = async (): Promise<void> => {
      // The contract does not say whether spawn() may start the body at once: wait for registration.
      if (task === undefined) await this.k.env.yield();
      let crash: unknown;
      try {
        await body();
        if (!main) return await this.taskEnded(proc, task!, undefined);
      } catch (e) {
        if (e instanceof ProcessExit) return await this.taskEnded(proc, task!, { code: e.code });
        if (e instanceof TaskKilled) return await this.taskEnded(proc, task!, undefined);
        crash = e;
      }
      this.k.env.trace.log('proc', `${proc.label}: crashed: ${String(crash)}`);
      await this.taskEnded(proc, task!, { signal: 'SIGABRT' });
      throw crash;
    };
    task = this.k.env.spawn(taskName, run, { component: proc.name });
    proc.addTask(task);
    this.byTask.set(task.id, proc);
    return task;
  }

  private sleepOf(t: Task): { state: 'D' | 'S'; what: string } {
    return this.k.waits.sleepStateOf(t) ?? { state: 'S', what: t.blockedOn()?.what ?? '?' };
  }

  /** A task is done; the last one runs the exit cleanup. `exit` is set for exit()/crash. */
  private async taskEnded(
    proc: Process,
    task: Task,
    exit: { code?: number; signal?: SignalName } | undefined,
  ): Promise<void> {
    if (exit !== undefined && proc.fatal === undefined) {
      proc.fatal =
        exit.signal === undefined
          ? { reason: `exit(${exit.code})` }
          : { reason: `${exit.signal}`, signal: exit.signal };
    }
    if (proc.exitStatus === undefined && proc.fatal !== undefined) {
      proc.exitStatus =
        proc.fatal.signal !== undefined
          ? { signal: proc.fatal.signal, wstatus: SIGNALS[proc.fatal.signal] }
          : { code: exit?.code ?? 0, wstatus: (exit?.code ?? 0) << 8 };
    }
    const left = proc.removeTask(task);
    if (left > 0) {
      // exit_group: the other tasks die at their next scheduling point.
      if (proc.fatal !== undefined) for (const t of proc.tasks()) this.k.waits.interrupt(t);
      this.byTask.delete(task.id);
      return;
    }
    if (proc.exitStatus === undefined) proc.exitStatus = { code: 0, wstatus: 0 }; // last thread returned
    proc.state = 'exiting';
    proc.addTask(task); // cleanup runs in this task, still part of the process
    try {
      await proc.cleanup();
    } finally {
      proc.removeTask(task);
      this.byTask.delete(task.id);
    }
    proc.state = 'zombie';
    this.k.env.trace.emit('proc', 'exit', { pid: proc.pid, ...proc.exitStatus });
    for (const child of this.procs.values()) {
      if (child.ppid !== proc.pid) continue;
      child.ppid = INIT_PID;
      if (child.state === 'zombie') this.reap(child);
    }
    if (proc.ppid === INIT_PID) this.reap(proc);
    this.childExit.wakeAll();
    this.stdout.wakeAll();
  }

  private reap(proc: Process): void {
    proc.state = 'reaped';
    this.procs.delete(proc.pid);
  }

  /**
   * A daemon the boot scripts started (udevd) keeps a pid below firstPid, the range boot used up, so the
   * pids a run hands out do not depend on which daemons dom0 runs.
   */
  private takeBootPid(name: string, pid: number): number {
    if (!Number.isInteger(pid) || pid <= INIT_PID || pid >= this.firstPid)
      throw new KernelError(
        'EINVAL',
        `spawn ${name}: boot pid ${pid} outside ${INIT_PID + 1}..${this.firstPid - 1}`,
      );
    if (this.procs.has(pid)) throw new KernelError('EEXIST', `spawn ${name}: boot pid ${pid} in use`);
    return pid;
  }

  private allocPid(name: string): number {
    let pid = this.lastPid;
    for (let tries = 0; tries < this.pidMax; tries++) {
      pid = pid + 1 >= this.pidMax ? RESERVED_PIDS : pid + 1;
      if (!this.procs.has(pid)) {
        this.lastPid = pid;
        return pid;
      }
    }
    throw new KernelError('EAGAIN', `spawn ${name}: no free pid below ${this.pidMax}`);
  }
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
