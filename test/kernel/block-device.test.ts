import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { Bio, BlockDevice, BlockDriver } from '../../emulator/kernel/block-device.js';
import { KernelError } from '../../emulator/kernel/errno.js';
import { namedHolder } from '../../emulator/kernel/kernel.js';
import { testTempDir } from '../temp-dirs.js';
import { inKernel } from './sim-kernel.js';

/** A driver that records calls and completes bios at once. */
function recordingDriver(log: string[]): BlockDriver {
  return {
    open: (b, h) => void log.push(`open ${b.name} by ${h.label} (openers before ${b.bdOpeners})`),
    release: (b, h) => void log.push(`release ${b.name} by ${h.label} (openers now ${b.bdOpeners})`),
    submit: (_b: BlockDevice, bio: Bio) => bio.end(0),
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (e instanceof KernelError) return e.code;
    throw e;
  }
}

describe('block layer', () => {
  test('open counts, release on every close, EBUSY destroy while open, ENXIO after', async () => {
    const log: string[] = [];
    const result = await inKernel(async (k) => {
      const major = k.blocks.registerBlkdev(0, 'tapdev');
      const bdev = k.blocks.addDisk({
        name: 'tda',
        major,
        minor: 0,
        capacitySectors: 8,
        driver: recordingDriver(log),
      });
      const blkback = namedHolder('blkback vbd-1-51712');
      const other = namedHolder('dd');
      await k.blocks.open(bdev, blkback, { write: true });
      await k.blocks.open({ major, minor: 0 }, other);
      const openers = bdev.openers().map((h) => h.label);
      const busy = await codeOf(Promise.resolve().then(() => k.blocks.tryDestroy(bdev)));
      await k.blocks.close(bdev, other);
      const busyAgain = await codeOf(k.blocks.destroy(bdev));
      await k.blocks.close(bdev, blkback);
      k.blocks.tryDestroy(bdev);
      const reopen = await codeOf(k.blocks.open({ major, minor: 0 }, blkback));
      return { major, openers, busy, busyAgain, reopen, left: k.blocks.list().length, dead: bdev.dead };
    });
    expect(result).toEqual({
      major: 254,
      openers: ['blkback vbd-1-51712', 'dd'],
      busy: 'EBUSY',
      busyAgain: 'EBUSY',
      reopen: 'ENXIO',
      left: 0,
      dead: true,
    });
    expect(log).toEqual([
      'open tda by blkback vbd-1-51712 (openers before 0)',
      'open tda by dd (openers before 1)',
      'release tda by dd (openers now 1)',
      'release tda by blkback vbd-1-51712 (openers now 0)',
    ]);
  });

  test('exclusive claims, read-only, closing by a non-opener', async () => {
    const r = await inKernel(async (k) => {
      const major = k.blocks.registerBlkdev(0, 'img');
      const bdev = k.blocks.addDisk({
        name: 'ro0',
        major,
        minor: 1,
        capacitySectors: 8,
        readOnly: true,
        driver: recordingDriver([]),
      });
      const a = namedHolder('a');
      const b = namedHolder('b');
      await k.blocks.open(bdev, a, { exclusive: true });
      return {
        exclB: await codeOf(k.blocks.open(bdev, b, { exclusive: true })),
        sharedB: await codeOf(k.blocks.open(bdev, b)),
        exclAAgain: await codeOf(k.blocks.open(bdev, a, { exclusive: true })),
        write: await codeOf(k.blocks.open(bdev, b, { write: true })),
        stranger: await codeOf(k.blocks.close(bdev, namedHolder('stranger'))),
        owner: bdev.exclusiveOwner?.label,
        openers: bdev.bdOpeners,
        dupName: await codeOf(
          Promise.resolve().then(() =>
            k.blocks.addDisk({
              name: 'ro0',
              major,
              minor: 2,
              capacitySectors: 1,
              driver: recordingDriver([]),
            }),
          ),
        ),
        dupMajor: await codeOf(Promise.resolve().then(() => k.blocks.registerBlkdev(major, 'again'))),
      };
    });
    expect(r).toEqual({
      exclB: 'EBUSY',
      sharedB: 'ok',
      exclAAgain: 'ok',
      write: 'EROFS',
      stranger: 'EINVAL',
      owner: 'a',
      openers: 3,
      dupName: 'EEXIST',
      dupMajor: 'EBUSY',
    });
  });

  test('bios: malformed ones throw naming the field; past the end completes with -EIO', async () => {
    const r = await inKernel(async (k) => {
      const disk = k.createImageDisk({
        name: 'ram0',
        minor: 0,
        backing: { kind: 'memory', sizeBytes: 4096 },
      });
      const errors: string[] = [];
      const bad: Array<Partial<Bio>> = [
        { op: 'write', sector: 0, vecs: [new Uint8Array(512), new Uint8Array(100)] },
        { op: 'write', sector: 0, vecs: [new Uint8Array(8192)] },
        { op: 'write', sector: 0, vecs: [new Uint8Array(512), new Uint8Array(0)] },
        { op: 'write', sector: 0, vecs: [new Uint8Array(512), [0, 0] as unknown as Uint8Array] },
        { op: 'write', sector: 0, vecs: new Uint8Array(512) as unknown as Uint8Array[] },
        { op: 'read', sector: -1, vecs: [new Uint8Array(512)] },
        { op: 'read', sector: 0, vecs: [] },
        { op: 'flush', sector: 0, vecs: [new Uint8Array(512)] },
        { op: 'discard', sector: 0, vecs: [] },
        { op: 'trim' as Bio['op'], sector: 0, vecs: [] },
      ];
      for (const b of bad) {
        try {
          k.blocks.submit(disk.bdev, { end: () => {}, ...b } as Bio);
        } catch (e) {
          errors.push((e as KernelError).message);
        }
      }
      let status: number | undefined;
      k.blocks.submit(disk.bdev, {
        op: 'read',
        sector: 8,
        vecs: [new Uint8Array(512)],
        end: (e) => (status = e),
      });
      return { errors, status };
    });
    expect(r.errors).toEqual([
      'bio on ram0: vecs[1] length 100 (must be a multiple of 512, 512..4096): Invalid argument (EINVAL)',
      'bio on ram0: vecs[0] length 8192 (must be a multiple of 512, 512..4096): Invalid argument (EINVAL)',
      'bio on ram0: vecs[1] length 0 (must be a multiple of 512, 512..4096): Invalid argument (EINVAL)',
      'bio on ram0: vecs[1] is not a Uint8Array: Invalid argument (EINVAL)',
      'bio on ram0: vecs is not an array: Invalid argument (EINVAL)',
      'bio on ram0: sector -1: Invalid argument (EINVAL)',
      'bio on ram0: read with no data: Invalid argument (EINVAL)',
      'bio on ram0: flush carries 1 vec(s) of data: Invalid argument (EINVAL)',
      'bio on ram0: discard sectors undefined: Invalid argument (EINVAL)',
      'bio on ram0: op "trim": Invalid argument (EINVAL)',
    ]);
    expect(r.status).toBe(-5);
  });

  test('memory disk: data round trip, latency in virtual time, faults and slowdown', async () => {
    const r = await inKernel(async (k, env) => {
      const disk = k.createImageDisk({
        name: 'ram0',
        minor: 0,
        backing: { kind: 'memory', sizeBytes: 8192 },
        latencyMs: 10,
      });
      const t0 = env.now();
      const data = new Uint8Array(1024).map((_, i) => i & 0xff);
      await k.blocks.submitAndWait(disk.bdev, 'write', 2, data);
      const back = new Uint8Array(1024);
      await k.blocks.submitAndWait(disk.bdev, 'read', 2, back);
      const t1 = env.now();
      disk.setFault({ error: 'EIO', ops: ['write'], fromSector: 4, toSector: 6, count: 1 });
      const outside = await codeOf(k.blocks.submitAndWait(disk.bdev, 'write', 0, new Uint8Array(512)));
      const inside = await codeOf(k.blocks.submitAndWait(disk.bdev, 'write', 3, new Uint8Array(1024)));
      const afterCount = await codeOf(k.blocks.submitAndWait(disk.bdev, 'write', 4, new Uint8Array(512)));
      disk.setSlowdown(3);
      const t2 = env.now();
      await k.blocks.submitAndWait(disk.bdev, 'flush', 0, new Uint8Array(0));
      const t3 = env.now();
      await k.blocks.submitAndWait(disk.bdev, 'discard', 2, new Uint8Array(0), 1);
      const afterDiscard = new Uint8Array(1024);
      await k.blocks.submitAndWait(disk.bdev, 'read', 2, afterDiscard);
      return {
        same: back.every((v, i) => v === data[i]),
        elapsed: t1 - t0,
        outside,
        inside,
        afterCount,
        slow: t3 - t2,
        discarded:
          afterDiscard.slice(0, 512).every((v) => v === 0) && afterDiscard[512 + 1] === data[512 + 1],
        inflight: disk.bdev.inflight,
      };
    });
    expect(r).toEqual({
      same: true,
      elapsed: 20,
      outside: 'ok',
      inside: 'EIO',
      afterCount: 'ok',
      slow: 30,
      discarded: true,
      inflight: 0,
    });
  });

  test('file-backed disk reads and writes the image file', async () => {
    const dir = testTempDir('kernel');
    const path = join(dir, 'disk.img');
    writeFileSync(path, Buffer.alloc(4096, 0x11));
    const r = await inKernel(async (k) => {
      const disk = k.createImageDisk({ name: 'img0', minor: 3, backing: { kind: 'file', path } });
      const first = new Uint8Array(512);
      await k.blocks.submitAndWait(disk.bdev, 'read', 0, first);
      await k.blocks.submitAndWait(disk.bdev, 'write', 7, new Uint8Array(512).fill(0xab));
      await k.blocks.submitAndWait(disk.bdev, 'flush', 0, new Uint8Array(0));
      return {
        sectors: disk.bdev.capacitySectors,
        first: first[0],
        missing: await codeOf(
          Promise.resolve().then(() =>
            k.createImageDisk({
              name: 'img1',
              minor: 4,
              backing: { kind: 'file', path: join(dir, 'nope.img') },
            }),
          ),
        ),
      };
    });
    expect(r).toEqual({ sectors: 8, first: 0x11, missing: 'ENOENT' });
    const bytes = readFileSync(path);
    expect(bytes[7 * 512]).toBe(0xab);
    expect(bytes[6 * 512]).toBe(0x11);
  });
});
