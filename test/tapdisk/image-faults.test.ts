import { join, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ImageFaults } from '../../emulator/tapdisk/image-faults.js';

describe('ImageFaults', () => {
  test('no fault armed: no delay and no failure, for any path', () => {
    const f = new ImageFaults();
    expect(f.delayFor('/img/a.img')).toBe(0);
    expect(f.admit('/img/a.img')).toBeUndefined();
  });

  test('a fault is keyed by the resolved path, whatever spelling arms or asks', () => {
    const f = new ImageFaults();
    const abs = resolve('work/disk.img');
    f.setDelay('work/./disk.img', 25);
    expect(f.delayFor(abs)).toBe(25);
    expect(f.delayFor(join('work', 'x', '..', 'disk.img'))).toBe(25);
    expect(f.delayFor(resolve('work/other.img'))).toBe(0);
    f.setFailure(abs, 'EIO', 2);
    expect([1, 2, 3, 4].map(() => f.admit('work/disk.img'))).toEqual([undefined, undefined, 'EIO', 'EIO']);
    f.clear('./work/disk.img');
    expect(f.delayFor(abs)).toBe(0);
    expect(f.admit(abs)).toBeUndefined();
  });

  test.each([
    ['delay -1', (f: ImageFaults) => f.setDelay('/a', -1), 'delay -1 is not a duration'],
    ['delay NaN', (f: ImageFaults) => f.setDelay('/a', Number.NaN), 'delay NaN is not a duration'],
    ['errno', (f: ImageFaults) => f.setFailure('/a', 'EWHAT', 0), 'unknown errno "EWHAT"'],
    ['after 1.5', (f: ImageFaults) => f.setFailure('/a', 'EIO', 1.5), 'after 1.5 is not a count'],
  ])('bad %s is refused and arms nothing', (_what, arm, message) => {
    const f = new ImageFaults();
    expect(() => arm(f)).toThrow(message);
    expect(f.delayFor('/a')).toBe(0);
    expect(f.admit('/a')).toBeUndefined();
  });
});
