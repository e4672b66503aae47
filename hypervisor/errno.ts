/**
 * Xen's errno values (xen/include/public/errno.h). Hypercalls return them negated, as Xen does.
 */

export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EIO = 5;
export const E2BIG = 7;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENOSPC = 28;
export const EROFS = 30;
export const ENOSYS = 38;
export const ENOTEMPTY = 39;
export const EOVERFLOW = 75;
export const EOPNOTSUPP = 95;
export const EISCONN = 106;

const NAMES: Record<number, string> = {
  [EPERM]: 'EPERM',
  [ENOENT]: 'ENOENT',
  [ESRCH]: 'ESRCH',
  [EIO]: 'EIO',
  [E2BIG]: 'E2BIG',
  [EAGAIN]: 'EAGAIN',
  [ENOMEM]: 'ENOMEM',
  [EACCES]: 'EACCES',
  [EFAULT]: 'EFAULT',
  [EBUSY]: 'EBUSY',
  [EEXIST]: 'EEXIST',
  [EINVAL]: 'EINVAL',
  [ENOSPC]: 'ENOSPC',
  [EROFS]: 'EROFS',
  [ENOSYS]: 'ENOSYS',
  [ENOTEMPTY]: 'ENOTEMPTY',
  [EOVERFLOW]: 'EOVERFLOW',
  [EOPNOTSUPP]: 'EOPNOTSUPP',
  [EISCONN]: 'EISCONN',
};

/** "EINVAL" for 22 or -22; "E<n>" for numbers Xen does not define. */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return NAMES[n] ?? `E${n}`;
}

/**
 * Thrown by the accessors that have no status word to report through (memory views, frame
 * allocation) and for arguments a C caller could not even express (a domid that is not a u16).
 * `errno` is negative, as a hypercall would have returned it.
 */
export class XenError extends Error {
  readonly errno: number;
  constructor(errno: number, message: string) {
    super(`${errnoName(errno)}: ${message}`);
    this.name = 'XenError';
    this.errno = -Math.abs(errno);
  }
}
