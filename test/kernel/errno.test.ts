import { describe, expect, test } from 'vitest';
import {
  ERRNO,
  errnoName,
  isErrnoName,
  isKernelError,
  KernelError,
  strerror,
} from '../../emulator/kernel/errno.js';

describe('errno', () => {
  test.each([
    ['ENOENT', 2],
    ['EIO', 5],
    ['ENXIO', 6],
    ['EBADF', 9],
    ['ECHILD', 10],
    ['EAGAIN', 11],
    ['EBUSY', 16],
    ['EEXIST', 17],
    ['EINVAL', 22],
    ['ENOTTY', 25],
    ['EROFS', 30],
    ['EPIPE', 32],
    ['ENOTSOCK', 88],
    ['EADDRINUSE', 98],
    ['ECONNRESET', 104],
    ['ETIMEDOUT', 110],
    ['ECONNREFUSED', 111],
  ] as const)('%s is %i and maps back', (name, number) => {
    expect(ERRNO[name]).toBe(number);
    expect(errnoName(number)).toBe(name);
    expect(errnoName(-number)).toBe(name);
  });

  test('unknown numbers and names are refused', () => {
    expect(() => errnoName(4242)).toThrow(/unknown error number 4242/);
    expect(isErrnoName('EBUSY')).toBe(true);
    expect(isErrnoName('EWHATEVER')).toBe(false);
  });

  test('KernelError carries name, number and a message naming what failed', () => {
    const e = new KernelError('EBUSY', 'open /dev/xen/blktap-2/blktap0');
    expect(e.code).toBe('EBUSY');
    expect(e.errno).toBe(16);
    expect(e.message).toBe('open /dev/xen/blktap-2/blktap0: Device or resource busy (EBUSY)');
    expect(isKernelError(e, 'EBUSY')).toBe(true);
    expect(isKernelError(e, 'EIO')).toBe(false);
    expect(strerror('EPIPE')).toBe('Broken pipe');
  });
});
