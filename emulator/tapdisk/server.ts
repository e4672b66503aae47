/**
 * The tapdisk2 process (tapdisk-server.c): one task, one event loop. Each iteration select()s over the
 * control socket `/var/run/blktap-control/ctl<pid>`, every polled VBD ring and the eventfd its AIO
 * completions signal (tapdisk's libaio queue with IOCB_FLAG_RESFD); then it completes due I/O, services
 * ready rings, and handles one control connection at a time. Any syscall that blocks (munmap in DETACH)
 * blocks the whole process. The kernel side of AIO is a timer task per completion time: image latency
 * is ordinary idleness, not a wait with a timeout.
 * It ignores SIGPIPE, prints its socket path on stdout (what `tap-ctl spawn` reads), and exits after its
 * last VBD is removed, closing the listener (unaccepted connections are dropped) and unlinking its
 * socket. The xapi variant keeps a table of accepted connections instead (control-xapi.ts, C17).
 * A crash of its own (failed assertion, use of freed memory: crash.ts) kills it with the signal.
 */
import { BLKTAP2_CONTROL_DIR, controlSocketPath } from '../../drivers/blktap/abi.js';
import { isKernelError } from '../kernel/errno.js';
import type { Eventfd } from '../kernel/eventfd.js';
import type { Kernel } from '../kernel/kernel.js';
import type { Process, Program } from '../kernel/process.js';
import type { Env } from '../runtime/engine.js';
import { handleConnection } from './control.js';
import { XapiControl } from './control-xapi.js';
import { dieOf, TapdiskCrash } from './crash.js';
import { DEFAULT_TAPDISK_OPTIONS, parseTapdiskArgs, type TapdiskOptions } from './options.js';
import type { Vbd } from './vbd.js';

/** Where tap-ctl spawns tapdisk2 from (TAPDISK2 in tap-ctl-spawn.c defaults to tapdisk2 on the PATH). */
export const TAPDISK2_PATH = '/usr/sbin/tapdisk2';
/** TD_CTL_SOCK_BACKLOG */
export const TAPDISK_SOCKET_BACKLOG = 32;

export class TapdiskServer {
  readonly vbds: Vbd[] = [];
  run = true;
  listenFd = -1;
  readonly controlPath: string;
  /** The xapi variant's connection table; undefined for Xen's one-connection-at-a-time control. */
  readonly control: XapiControl | undefined;
  /** The AIO completion eventfd (td_lio's event fd) and the completion time a kernel timer is armed for. */
  private aio: { fd: number; eventfd: Eventfd } | undefined;
  private aioArmedFor: number | undefined;

  constructor(
    readonly proc: Process,
    readonly env: Env,
    readonly options: TapdiskOptions,
  ) {
    this.controlPath = controlSocketPath(proc.pid);
    this.control = options.variant === 'xapi' ? new XapiControl(this) : undefined;
  }

  trace(kind: string, fields: Record<string, unknown> = {}): void {
    this.env.trace.emit('tapdisk', kind, { pid: this.proc.pid, ...fields });
  }

  /** tapdisk_server_get_vbd(): walks the list, reading each VBD's minor. */
  vbd(minor: number): Vbd | undefined {
    return this.vbds.find((v) => v.minor === minor);
  }

  /** tapdisk_server_remove_vbd(): the last one ends the event loop. */
  removeVbd(vbd: Vbd): void {
    const i = this.vbds.indexOf(vbd);
    if (i >= 0) this.vbds.splice(i, 1);
    this.trace('vbd-removed', { left: this.vbds.length });
    if (this.vbds.length === 0) this.run = false;
  }

  async main(): Promise<number> {
    this.proc.signal('SIGPIPE', 'ignore');
    this.aio = await this.proc.eventfd(`tapdisk[${this.proc.pid}] aio`, { nonblocking: true });
    await this.proc.mkdir(BLKTAP2_CONTROL_DIR, { parents: true });
    this.listenFd = await this.proc.listen(this.controlPath, TAPDISK_SOCKET_BACKLOG);
    this.proc.print(this.controlPath);
    this.trace('start', { socket: this.controlPath, variant: this.options.variant });
    const control = this.control;
    while (this.run) {
      const ready = await this.pump(control ? control.readFds() : [this.listenFd]);
      if (!this.run) break;
      if (control) await control.handleReady(ready);
      else if (ready.includes(this.listenFd)) {
        const conn = await this.proc.accept(this.listenFd);
        await handleConnection(this, conn);
      }
      await this.reapShutdowns();
    }
    // tapdisk_control_close(): drain, then unlink the socket and close the listener.
    await control?.drain();
    await this.proc.close(this.listenFd);
    await this.proc.unlink(this.controlPath);
    this.trace('exit');
    return 0;
  }

  /**
   * One pass of the scheduler: wait until a ring or one of `extra` is readable or I/O falls due, then
   * complete due I/O and service ready rings. Returns the ready descriptors among `extra`.
   */
  async pump(extra: readonly number[]): Promise<number[]> {
    const rings = new Map<number, Vbd>();
    for (const v of this.vbds) {
      const fd = v.pollFd();
      if (fd !== undefined) rings.set(fd, v);
    }
    let due: number | undefined;
    for (const v of this.vbds) {
      const d = v.nextDue();
      if (d !== undefined && (due === undefined || d < due)) due = d;
    }
    if (due !== undefined) this.armCompletion(due);
    const aioFd = this.aio?.fd;
    const r = await this.proc.select(
      [...extra, ...(aioFd === undefined ? [] : [aioFd]), ...rings.keys()],
      [],
      {
        what: `tapdisk[${this.proc.pid}] event loop`,
      },
    );
    if (aioFd !== undefined && r.readable.includes(aioFd)) await this.proc.read(aioFd, { length: 8 });
    const now = this.env.now();
    for (const v of [...this.vbds]) await v.complete(now);
    for (const fd of r.readable) {
      const v = rings.get(fd);
      if (v !== undefined && v.ringFd === fd) await v.serviceRing(now);
    }
    return r.readable.filter((fd) => extra.includes(fd));
  }

  /** The kernel completes the AIO due at `due` then and signals the eventfd (one timer per time). */
  private armCompletion(due: number): void {
    const aio = this.aio;
    if (aio === undefined || (this.aioArmedFor !== undefined && this.aioArmedFor <= due)) return;
    this.aioArmedFor = due;
    this.env.spawn(
      `tapdisk[${this.proc.pid}] aio`,
      async () => {
        await this.env.sleep(Math.max(0, due - this.env.now()), { what: 'image I/O in progress' });
        if (this.aioArmedFor === due) this.aioArmedFor = undefined;
        aio.eventfd.signal();
      },
      { component: 'tapdisk' },
    );
  }

  /** VBDs asked to close through the ring message: close, detach and remove once idle. */
  private async reapShutdowns(): Promise<void> {
    for (const v of [...this.vbds]) {
      if (!v.shutdownRequested || v.inflight.length > 0) continue;
      v.closeImage();
      v.name = undefined;
      try {
        await v.detach();
      } catch (e) {
        if (!isKernelError(e)) throw e;
        this.trace('detach-error', { error: e.code });
      }
      this.removeVbd(v);
    }
  }
}

/** The tapdisk2 program body, with the version switches it was installed with as defaults. */
export function tapdiskProgram(k: Kernel, defaults: TapdiskOptions = DEFAULT_TAPDISK_OPTIONS): Program {
  return async function tapdisk2(proc: Process, args: readonly string[]): Promise<number> {
    const env = k.env;
    let options: TapdiskOptions;
    try {
      options = parseTapdiskArgs(args, defaults);
    } catch (e) {
      proc.print(String(e instanceof Error ? e.message : e));
      return 1;
    }
    try {
      return await new TapdiskServer(proc, env, options).main();
    } catch (e) {
      if (e instanceof TapdiskCrash) return dieOf(env, proc, e);
      throw e;
    }
  };
}

/** Installs tapdisk2 at TAPDISK2_PATH so tap-ctl can spawn it. */
export function registerTapdisk(k: Kernel, defaults: TapdiskOptions = DEFAULT_TAPDISK_OPTIONS): void {
  k.registerProgram(TAPDISK2_PATH, tapdiskProgram(k, defaults));
}
