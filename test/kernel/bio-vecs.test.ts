import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { type Bio, type BioOp, bioSectors, pageVecs } from '../../emulator/kernel/block-device.js';
import type { Kernel } from '../../emulator/kernel/kernel.js';
import { testTempDir } from '../temp-dirs.js';
import { inKernel } from './sim-kernel.js';

describe('pageVecs: a kernel buffer becomes one vec per page it touches', () => {
  const backing = new ArrayBuffer(5 * 4096);
  const CASES: Array<{ name: string; at: number; length: number; vecs: Array<[number, number]> }> = [
    { name: 'empty', at: 0, length: 0, vecs: [] },
    { name: 'one sector', at: 0, length: 512, vecs: [[0, 512]] },
    { name: 'exactly one page', at: 4096, length: 4096, vecs: [[4096, 4096]] },
    {
      name: 'two and a half pages from a page boundary',
      at: 0,
      length: 10240,
      vecs: [
        [0, 4096],
        [4096, 4096],
        [8192, 2048],
      ],
    },
    {
      name: 'starting inside a page: split at the page boundaries',
      at: 3072,
      length: 6144,
      vecs: [
        [3072, 1024],
        [4096, 4096],
        [8192, 1024],
      ],
    },
    {
      name: 'not on a sector boundary: split every 4 KiB from the start',
      at: 100,
      length: 5120,
      vecs: [
        [100, 4096],
        [4196, 1024],
      ],
    },
  ];
  for (const c of CASES) {
    test(c.name, () => {
      const vecs = pageVecs(new Uint8Array(backing, c.at, c.length));
      expect(vecs.map((v) => [v.byteOffset, v.length])).toEqual(c.vecs);
      expect(vecs.every((v) => v.buffer === backing)).toBe(true);
    });
  }
});

/** A bio of `vecs` submitted and awaited; returns its status. */
async function run(k: Kernel, name: string, op: BioOp, sector: number, vecs: Uint8Array[]): Promise<number> {
  const bdev = k.blocks.byName(name)!;
  let status: number | undefined;
  const q = k.env.waitQueue('bio');
  const bio: Bio = {
    op,
    sector,
    vecs,
    end: (e) => {
      status = e;
      q.wakeAll();
    },
  };
  k.blocks.submit(bdev, bio);
  await k.env.wait(q, () => status !== undefined, { what: `${op} of ${bioSectors(bio)} sectors` });
  return status!;
}

/** Vecs scattered over one buffer in reverse order, with gaps: vec i lies at `gaps` slot (n - 1 - i). */
function scattered(lengths: number[]): { vecs: Uint8Array[]; memory: Uint8Array } {
  const memory = new Uint8Array(lengths.length * 8192);
  const vecs = lengths.map((n, i) =>
    memory.subarray((lengths.length - 1 - i) * 8192 + 512, (lengths.length - 1 - i) * 8192 + 512 + n),
  );
  return { vecs, memory };
}

describe('image disks serve bios vec by vec, in disk order', () => {
  const lengths = [512, 4096, 1024, 4096, 2048];
  const total = lengths.reduce((a, b) => a + b, 0);
  const pattern = (i: number) => (i * 13 + 5) & 0xff;

  for (const kind of ['memory', 'file'] as const) {
    test(`${kind}: a write gathers scattered vecs, a read scatters into them`, async () => {
      const path = join(testTempDir('kernel'), 'vecs.img');
      writeFileSync(path, Buffer.alloc(64 * 1024, 0x11));
      const r = await inKernel(async (k) => {
        k.createImageDisk({
          name: 'vd0',
          minor: 9,
          backing: kind === 'memory' ? { kind: 'memory', sizeBytes: 64 * 1024 } : { kind: 'file', path },
        });
        const src = scattered(lengths);
        let n = 0;
        for (const v of src.vecs) for (let i = 0; i < v.length; i++) v[i] = pattern(n++);
        const wrote = await run(k, 'vd0', 'write', 4, src.vecs);
        const dst = scattered([...lengths].reverse());
        const read = await run(k, 'vd0', 'read', 4, dst.vecs);
        const whole = new Uint8Array(total + 1024);
        await k.blocks.submitAndWait(k.blocks.byName('vd0')!, 'read', 3, whole);
        const gaps = dst.memory.filter(
          (_, i) => !dst.vecs.some((v) => i >= v.byteOffset && i < v.byteOffset + v.length),
        );
        return { wrote, read, whole, back: dst.vecs, gapsUntouched: gaps.every((b) => b === 0) };
      });
      expect(r.wrote).toBe(0);
      expect(r.read).toBe(0);
      const expected = Uint8Array.from({ length: total }, (_, i) => pattern(i));
      // On disk: sector 3 as before, then the vecs' bytes in vec order, then sector 4 + total as before.
      const before = kind === 'memory' ? 0 : 0x11;
      expect(r.whole.subarray(0, 512).every((b) => b === before)).toBe(true);
      expect(Buffer.from(r.whole.subarray(512, 512 + total)).equals(Buffer.from(expected))).toBe(true);
      expect(r.whole.subarray(512 + total).every((b) => b === before)).toBe(true);
      // Read back into vecs of other lengths: the stream is the same.
      expect(Buffer.concat(r.back.map((v) => Buffer.from(v))).equals(Buffer.from(expected))).toBe(true);
      expect(r.gapsUntouched).toBe(true);
      if (kind === 'file') {
        const file = readFileSync(path);
        expect(file.subarray(4 * 512, 4 * 512 + total).equals(Buffer.from(expected))).toBe(true);
      }
    });
  }
});
