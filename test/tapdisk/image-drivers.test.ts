import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { KernelError } from '../../emulator/kernel/errno.js';
import { AioImage } from '../../emulator/tapdisk/drivers/aio.js';
import type { ImageDriver } from '../../emulator/tapdisk/drivers/image-driver.js';
import { RamImage } from '../../emulator/tapdisk/drivers/ram.js';
import { testTempDir } from '../temp-dirs.js';

const SECTOR = 512;

function imageFile(bytes: Uint8Array): string {
  const path = join(testTempDir('image-drivers'), 'disk.img');
  writeFileSync(path, bytes);
  return path;
}

/** Sector s holds bytes (s * 7 + i) & 0xff. */
function sectors(n: number): Uint8Array {
  const out = new Uint8Array(n * SECTOR);
  for (let i = 0; i < out.length; i++) out[i] = (Math.floor(i / SECTOR) * 7 + i) & 0xff;
  return out;
}

/** Views of guest-like memory in one SharedArrayBuffer, `sizes` bytes each, each at a page start. */
function pages(sizes: readonly number[]): Uint8Array[] {
  const slot = Math.max(4096, Math.ceil(Math.max(...sizes) / 4096) * 4096);
  const sab = new SharedArrayBuffer(sizes.length * slot);
  return sizes.map((n, i) => new Uint8Array(sab, i * slot, n));
}

const drivers: [string, (path: string) => ImageDriver][] = [
  ['aio', (p) => new AioImage(p, { readOnly: false }, 0)],
  ['ram', (p) => new RamImage(p, 0)],
];

describe.each(drivers)('%s image: vectored requests', (_name, open) => {
  test('writev puts each segment after the previous one, readv reads them back the same way', () => {
    const path = imageFile(sectors(64));
    const img = open(path);
    const segs = pages([4096, 512, 1024]);
    segs.forEach((s, k) => {
      for (let i = 0; i < s.length; i++) s[i] = (k * 31 + i * 3) & 0xff;
    });
    img.writev(8, segs);
    const back = pages([1024, 4608]);
    img.readv(8, back);
    const wrote = Buffer.concat(segs.map((s) => Buffer.from(s)));
    expect(Buffer.concat(back.map((s) => Buffer.from(s)))).toEqual(wrote);
    // The same bytes sector by sector through read().
    const one = new Uint8Array(SECTOR);
    img.read(8 + 9, one);
    expect(Buffer.from(one)).toEqual(wrote.subarray(9 * SECTOR, 10 * SECTOR));
    // Sectors around the request are untouched.
    img.read(7, one);
    expect(one).toEqual(sectors(64).subarray(7 * SECTOR, 8 * SECTOR));
    img.read(8 + 11, one);
    expect(one).toEqual(sectors(64).subarray(19 * SECTOR, 20 * SECTOR));
    img.close();
  });

  test('any split of a request into segments moves the same bytes as one buffer', () => {
    const img = open(imageFile(sectors(128)));
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 11 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 255 }),
        (segSectors, start, mark) => {
          const segs = pages(segSectors.map((n) => n * SECTOR));
          segs.forEach((s, k) => {
            s.fill((mark + k) & 0xff);
          });
          img.writev(start, segs);
          const total = segSectors.reduce((a, b) => a + b, 0) * SECTOR;
          const whole = new Uint8Array(total);
          img.read(start, whole);
          // equals(): a deep toEqual over tens of KiB per run would dominate the test's time.
          expect(Buffer.from(whole).equals(Buffer.concat(segs.map((s) => Buffer.from(s))))).toBe(true);
        },
      ),
      { numRuns: 50 },
    );
    img.close();
  });

  test('a closed image refuses I/O with EBADF', () => {
    const img = open(imageFile(sectors(8)));
    img.close();
    const err = (() => {
      try {
        img.readv(0, pages([512]));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(KernelError);
    expect((err as KernelError).code).toBe('EBADF');
  });
});

describe('aio image: the file', () => {
  test('writev is in the file when it returns; empty segments are skipped', () => {
    const path = imageFile(new Uint8Array(16 * SECTOR));
    const img = new AioImage(path, { readOnly: false }, 0);
    const segs = pages([512, 0, 1024]);
    segs[0]!.fill(0x11);
    segs[2]!.fill(0x22);
    img.writev(2, segs);
    const file = readFileSync(path);
    expect(file.subarray(2 * SECTOR, 3 * SECTOR).every((b) => b === 0x11)).toBe(true);
    expect(file.subarray(3 * SECTOR, 5 * SECTOR).every((b) => b === 0x22)).toBe(true);
    expect(file.subarray(0, 2 * SECTOR).every((b) => b === 0)).toBe(true);
    expect(file.subarray(5 * SECTOR).every((b) => b === 0)).toBe(true);
    img.close();
  });

  test('readv past the end of the file reads zeros (a short read), stale bytes are overwritten', () => {
    // 3 sectors and a half: the image has 3 sectors, a read from sector 2 crosses the file's end.
    const bytes = sectors(4).subarray(0, 3.5 * SECTOR);
    const img = new AioImage(imageFile(bytes), { readOnly: false }, 0);
    expect(img.info.sectors).toBe(3);
    const into = pages([1024, 1024]);
    for (const p of into) p.fill(0xee);
    img.readv(2, into);
    const got = Buffer.concat(into.map((p) => Buffer.from(p)));
    expect(got.subarray(0, 1.5 * SECTOR)).toEqual(Buffer.from(bytes.subarray(2 * SECTOR)));
    expect(got.subarray(1.5 * SECTOR).every((b) => b === 0)).toBe(true);
    img.close();
  });

  test('a read-only image refuses writev with EBADF and leaves the file as it was', () => {
    const before = sectors(8);
    const path = imageFile(before);
    const img = new AioImage(path, { readOnly: true }, 0);
    const err = (() => {
      try {
        img.writev(0, pages([512]));
      } catch (e) {
        return e;
      }
    })();
    expect((err as KernelError).code).toBe('EBADF');
    expect(new Uint8Array(readFileSync(path))).toEqual(before);
    img.close();
  });
});
