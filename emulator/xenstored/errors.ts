/**
 * The daemon's request failure: `errno` is the xs_wire.h error name its ERROR reply carries. The
 * in-process XsClient throws it too. (The kernel-side client has its own XenstoreError, with the request
 * and path, in drivers/xenbus/errors.ts.)
 *
 * An XsError is an answer, not a bug (a READ of an absent node is ENOENT in normal flow: ~170 per guest
 * lifecycle), so it carries no stack: capturing one cost more than serving the request.
 */
import type { XsErrorName } from '../../drivers/xenbus/xs-wire.js';

export class XsError extends Error {
  readonly errno: XsErrorName;

  constructor(errno: XsErrorName, detail?: string) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(detail ? `${errno}: ${detail}` : errno);
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.errno = errno;
    this.name = 'XsError';
  }
}
