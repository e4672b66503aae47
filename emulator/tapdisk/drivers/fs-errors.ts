/** Turns a node:fs error into the KernelError (errno) tapdisk would see from the same syscall. */
import { type ErrnoName, isErrnoName, KernelError } from '../../kernel/errno.js';

export function fsError(e: unknown, what: string): KernelError {
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && isErrnoName(code)) return new KernelError(code as ErrnoName, what);
  if (e instanceof Error) return new KernelError('EIO', `${what}: ${e.message}`);
  return new KernelError('EIO', what);
}
