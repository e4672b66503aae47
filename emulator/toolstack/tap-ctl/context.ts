/**
 * What every libblktapctl operation runs with: the calling process (tap-ctl itself, or the xl process
 * when libxl calls tap_ctl_* as a library), that process's kernel (for the procfs tables and the pipe
 * from a spawned tapdisk2), and the variant of the tool.
 *
 * Return values follow the C functions exactly, sign conventions included: some return -errno, some a
 * positive errno, tap_ctl_free returns the raw ioctl result (-1). Callers (libxl, the command runner)
 * interpret them as the real callers do.
 */
import { ERRNO, type ErrnoName, isKernelError } from '../../kernel/errno.js';
import type { Kernel } from '../../kernel/kernel.js';
import type { Process } from '../../kernel/process.js';
import type { TapCtlVariant } from '../tap-ctl-args.js';

/** execlp("tapdisk2") resolved to the installed program path ($TAPDISK2 overrides it in C). */
export const DEFAULT_TAPDISK_PROGRAM = '/usr/sbin/tapdisk2';

/** Per-message select() timeouts in seconds (Xen tools/blktap2/control/tap-ctl-*.c). */
export const TapCtlTimeout = {
  ATTACH: 5,
  OPEN: 5,
  CLOSE: 5,
  DETACH: 5,
  PAUSE: 5,
  UNPAUSE: 15,
  PID: 2,
  LIST: 2,
} as const;

/** tap_ctl_close(): EAGAIN is retried this many times with usleep(1000) after each attempt. */
export const CLOSE_RETRIES = 20;
export const CLOSE_RETRY_SLEEP_MS = 1;

export interface TapCtlContext {
  readonly proc: Process;
  readonly kernel: Kernel;
  readonly variant: TapCtlVariant;
  /** Program spawned by tap_ctl_spawn. */
  readonly tapdiskProgram: string;
  /** errno as the C code leaves it after the last failed call (tap-ctl spawn prints it). */
  errno: number;
}

export function tapCtlContext(
  proc: Process,
  kernel: Kernel,
  options: { variant?: TapCtlVariant; tapdiskProgram?: string } = {},
): TapCtlContext {
  return {
    proc,
    kernel,
    variant: options.variant ?? 'xen',
    tapdiskProgram: options.tapdiskProgram ?? DEFAULT_TAPDISK_PROGRAM,
    errno: 0,
  };
}

export function errno(name: ErrnoName): number {
  return ERRNO[name];
}

/** The errno a failed syscall leaves; anything that is not a KernelError is a bug and is rethrown. */
export function errnoOf(ctx: TapCtlContext, e: unknown): number {
  if (!isKernelError(e)) throw e;
  ctx.errno = e.errno;
  return e.errno;
}

/** EPRINTF(): syslog(LOG_ERR, "tap-err:<function>: ..."); traced, never printed on the terminal. */
export function eprintf(ctx: TapCtlContext, fn: string, message: string): void {
  ctx.kernel.env.trace.emit('tap-ctl', 'syslog', {
    pid: ctx.proc.pid,
    level: 'err',
    message: `tap-err:${fn}: ${message}`,
  });
}

/** A structured trace event of the library (send, receive, timeout ...). */
export function traceTapCtl(ctx: TapCtlContext, kind: string, fields: Record<string, unknown>): void {
  ctx.kernel.env.trace.emit('tap-ctl', kind, { pid: ctx.proc.pid, ...fields });
}
