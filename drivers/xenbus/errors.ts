/**
 * A xenstore request that the daemon refused (an XS_ERROR reply) or that could not be carried out.
 * `code` is the error name from the wire ("ENOENT", "EAGAIN", ...), `errno` its number (public/errno.h).
 */
import { isXsErrorName, XS_ERRNO, type XsErrorName } from './xs-wire.js';

export class XenstoreError extends Error {
  override readonly name = 'XenstoreError';
  readonly errno: number;

  constructor(
    readonly code: XsErrorName,
    /** The request type, e.g. "READ". */
    readonly op: string,
    /** The path the request named, when it names one. */
    readonly path: string | undefined,
    detail?: string,
  ) {
    super(`xenstore ${op}${path === undefined ? '' : ` ${path}`}: ${code}${detail ? ` (${detail})` : ''}`);
    this.errno = XS_ERRNO[code];
  }

  /** Build from the name in an XS_ERROR reply; a name not in xs_wire.h's table becomes EINVAL, as in C xenstored. */
  static fromWire(name: string, op: string, path: string | undefined): XenstoreError {
    if (isXsErrorName(name)) return new XenstoreError(name, op, path);
    return new XenstoreError('EINVAL', op, path, `daemon sent unknown error name ${JSON.stringify(name)}`);
  }
}

export function isXenstoreError(e: unknown, code?: XsErrorName): e is XenstoreError {
  return e instanceof XenstoreError && (code === undefined || e.code === code);
}

/**
 * An Error that records a state (a connection closed or lost) to be reported by later calls, not a call
 * that failed: it carries no stack, since the stack of the moment the state began says nothing about
 * the call that later reports it, and capturing one costs more than a request.
 */
export function stateError(message: string): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new Error(message);
  } finally {
    Error.stackTraceLimit = limit;
  }
}
