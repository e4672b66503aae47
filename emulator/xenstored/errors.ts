/**
 * The daemon's request failure: `errno` is the xs_wire.h error name its ERROR reply carries. The
 * in-process XsClient throws it too. (The kernel-side client has its own XenstoreError, with the request
 * and path, in drivers/xenbus/errors.ts.)
 */
import type { XsErrorName } from '../../drivers/xenbus/xs-wire.js';

export class XsError extends Error {
  constructor(
    readonly errno: XsErrorName,
    detail?: string,
  ) {
    super(detail ? `${errno}: ${detail}` : errno);
    this.name = 'XsError';
  }
}
