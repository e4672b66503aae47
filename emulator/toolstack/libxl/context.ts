/**
 * libxl_ctx as it lives inside one xl process: the process's xenstore handle, dom0's hypercalls, the
 * tap-ctl library bound to the same process, the libxl version whose teardown order is followed, and
 * libxl's logger (xtl to stderr; the kernel model has one output stream per process).
 */
import { errnoName, strerror } from '../../kernel/errno.js';
import type { Process } from '../../kernel/process.js';
import { type TapCtlContext, tapCtlContext } from '../tap-ctl/context.js';
import type { LibxlVersion, ToolstackHost } from './host.js';
import { type TeardownKind, type ToolstackHolder, toolstackHolder } from './toolstack-holder.js';
import { XsHandle } from './xs-handle.js';

export type LibxlLogLevel = 'error' | 'warning' | 'info' | 'debug';

/** libxl error codes (libxl_types.idl libxl_error). */
export const LibxlError = {
  ERROR_NONSPECIFIC: -1,
  ERROR_VERSION: -2,
  ERROR_FAIL: -3,
  ERROR_NI: -4,
  ERROR_NOMEM: -5,
  ERROR_INVAL: -6,
  ERROR_BADFAIL: -7,
  ERROR_GUEST_TIMEDOUT: -8,
  ERROR_TIMEDOUT: -9,
  ERROR_NOPARAVIRT: -10,
} as const;

/** Timeouts of libxl_internal.h (seconds). */
export const LIBXL_DESTROY_TIMEOUT = 10;
export const LIBXL_INIT_TIMEOUT = 10;
export const LIBXL_HOTPLUG_TIMEOUT = 10;
/** xend's DevController DEVICE_CREATE_TIMEOUT and DEVICE_DESTROY_TIMEOUT (seconds). */
export const XEND_DEVICE_CREATE_TIMEOUT = 100;
export const XEND_DEVICE_DESTROY_TIMEOUT = 100;

export class LibxlCtx {
  readonly xs: XsHandle;
  readonly tap: TapCtlContext;
  readonly version: LibxlVersion;
  /** The host's "toolstack" holder (published in host.holders when given). */
  readonly holder: ToolstackHolder;

  constructor(
    readonly proc: Process,
    readonly host: ToolstackHost,
    options: { version?: LibxlVersion } = {},
  ) {
    this.version = options.version ?? host.libxl;
    this.xs = new XsHandle(proc, host.kernel, host.xenstored, {
      ...(host.xenstoredHolder ? { server: host.xenstoredHolder } : {}),
    });
    this.holder = toolstackHolder(host);
    this.tap = tapCtlContext(proc, host.kernel, {
      variant: 'xen',
      ...(host.tapdiskProgram ? { tapdiskProgram: host.tapdiskProgram } : {}),
    });
  }

  /** libxl_ctx_free: closes the xenstore connection (the process's exit would close it too). */
  async free(): Promise<void> {
    await this.xs.close();
  }

  /**
   * Runs a teardown (domain destroy, device remove) in the calling task of this process; meanwhile the
   * "toolstack" holder is blocked on whatever that task waits for.
   */
  teardown<T>(kind: TeardownKind, target: string, body: () => Promise<T>): Promise<T> {
    return this.holder.during(this.kernel.env.current(), kind, target, body);
  }

  get kernel() {
    return this.host.kernel;
  }

  get hc() {
    return this.host.privcmd.dom0;
  }

  now(): number {
    return this.host.kernel.env.now();
  }

  /** LIBXL__LOG: "libxl: error: libxl_device.c:libxl__device_destroy: message" on stderr. */
  log(level: LibxlLogLevel, where: string, message: string): void {
    const line = `libxl: ${level}: ${where}: ${message}`;
    this.host.kernel.env.trace.emit('libxl', 'log', { pid: this.proc.pid, level, where, message });
    if (level !== 'debug') this.proc.print(line);
  }

  /** LOGEV / LIBXL__LOG_ERRNOVAL: the message followed by strerror of a positive errno. */
  logErrno(level: LibxlLogLevel, where: string, errno: number, message: string): void {
    let text: string;
    try {
      text = strerror(errnoName(errno));
    } catch {
      text = `Unknown error ${errno}`;
    }
    this.log(level, where, `${message}: ${text}`);
  }

  /** A step of the control path (xenstore operation, tap-ctl call, wait) as a trace event. */
  op(op: string, fields: Record<string, unknown> = {}): void {
    this.host.kernel.env.trace.emit('libxl', 'op', {
      pid: this.proc.pid,
      version: this.version,
      op,
      ...fields,
    });
  }
}
