/**
 * Linux errno numbers (x86/generic: include/uapi/asm-generic/errno-base.h and errno.h) with glibc's
 * strerror texts, and the error every syscall of the kernel model throws.
 */

/** name → number, exactly as asm-generic defines them. */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  ENOTBLK: 15,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  EDOM: 33,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENOMSG: 42,
  ENODATA: 61,
  ETIME: 62,
  EPROTO: 71,
  EOVERFLOW: 75,
  EBADFD: 77,
  ENOTSOCK: 88,
  EDESTADDRREQ: 89,
  EMSGSIZE: 90,
  EPROTOTYPE: 91,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ECONNABORTED: 103,
  ECONNRESET: 104,
  ENOBUFS: 105,
  EISCONN: 106,
  ENOTCONN: 107,
  ESHUTDOWN: 108,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EALREADY: 114,
  EINPROGRESS: 115,
  ESTALE: 116,
  EDQUOT: 122,
  ENOMEDIUM: 123,
  ECANCELED: 125,
} as const;

export type ErrnoName = keyof typeof ERRNO;

/** Aliases Linux defines to the same number. */
export const EWOULDBLOCK = ERRNO.EAGAIN;
export const ENOTSUP = ERRNO.EOPNOTSUPP;

/** glibc strerror() texts. */
const MESSAGES: Record<ErrnoName, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EINTR: 'Interrupted system call',
  EIO: 'Input/output error',
  ENXIO: 'No such device or address',
  E2BIG: 'Argument list too long',
  ENOEXEC: 'Exec format error',
  EBADF: 'Bad file descriptor',
  ECHILD: 'No child processes',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EFAULT: 'Bad address',
  ENOTBLK: 'Block device required',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  EXDEV: 'Invalid cross-device link',
  ENODEV: 'No such device',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EINVAL: 'Invalid argument',
  ENFILE: 'Too many open files in system',
  EMFILE: 'Too many open files',
  ENOTTY: 'Inappropriate ioctl for device',
  ETXTBSY: 'Text file busy',
  EFBIG: 'File too large',
  ENOSPC: 'No space left on device',
  ESPIPE: 'Illegal seek',
  EROFS: 'Read-only file system',
  EMLINK: 'Too many links',
  EPIPE: 'Broken pipe',
  EDOM: 'Numerical argument out of domain',
  ERANGE: 'Numerical result out of range',
  EDEADLK: 'Resource deadlock avoided',
  ENAMETOOLONG: 'File name too long',
  ENOLCK: 'No locks available',
  ENOSYS: 'Function not implemented',
  ENOTEMPTY: 'Directory not empty',
  ELOOP: 'Too many levels of symbolic links',
  ENOMSG: 'No message of desired type',
  ENODATA: 'No data available',
  ETIME: 'Timer expired',
  EPROTO: 'Protocol error',
  EOVERFLOW: 'Value too large for defined data type',
  EBADFD: 'File descriptor in bad state',
  ENOTSOCK: 'Socket operation on non-socket',
  EDESTADDRREQ: 'Destination address required',
  EMSGSIZE: 'Message too long',
  EPROTOTYPE: 'Protocol wrong type for socket',
  EOPNOTSUPP: 'Operation not supported',
  EADDRINUSE: 'Address already in use',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  ENETDOWN: 'Network is down',
  ECONNABORTED: 'Software caused connection abort',
  ECONNRESET: 'Connection reset by peer',
  ENOBUFS: 'No buffer space available',
  EISCONN: 'Transport endpoint is already connected',
  ENOTCONN: 'Transport endpoint is not connected',
  ESHUTDOWN: 'Cannot send after transport endpoint shutdown',
  ETIMEDOUT: 'Connection timed out',
  ECONNREFUSED: 'Connection refused',
  EALREADY: 'Operation already in progress',
  EINPROGRESS: 'Operation now in progress',
  ESTALE: 'Stale file handle',
  EDQUOT: 'Disk quota exceeded',
  ENOMEDIUM: 'No medium found',
  ECANCELED: 'Operation canceled',
};

const BY_NUMBER = new Map<number, ErrnoName>(
  (Object.keys(ERRNO) as ErrnoName[]).map((name) => [ERRNO[name], name] as const),
);

export function errnoNumber(name: ErrnoName): number {
  return ERRNO[name];
}

/** The name for a number (positive, or negative as the kernel returns it); throws for unknown numbers. */
export function errnoName(errno: number): ErrnoName {
  const name = BY_NUMBER.get(Math.abs(errno));
  if (name === undefined) throw new RangeError(`errno: unknown error number ${errno}`);
  return name;
}

export function isErrnoName(name: string): name is ErrnoName {
  return Object.hasOwn(ERRNO, name);
}

/** strerror(3). */
export function strerror(name: ErrnoName): string {
  return MESSAGES[name];
}

/**
 * A failed syscall or kernel call: user space catches it as `-1` with `errno` set. The message says what
 * was being done to what, e.g. "open /dev/xen/blktap-2/blktap0: Device or resource busy (EBUSY)".
 */
export class KernelError extends Error {
  readonly code: ErrnoName;
  readonly errno: number;
  readonly detail: string;

  constructor(code: ErrnoName, detail: string) {
    super(`${detail}: ${MESSAGES[code]} (${code})`);
    this.name = 'KernelError';
    this.code = code;
    this.errno = ERRNO[code];
    this.detail = detail;
  }
}

/** True when `e` is a KernelError, optionally with the given code. */
export function isKernelError(e: unknown, code?: ErrnoName): e is KernelError {
  return e instanceof KernelError && (code === undefined || e.code === code);
}
