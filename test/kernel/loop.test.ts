/**
 * Loop devices: bind a file (LOOP_SET_FD), read it through /dev/loopN's block device, refuse to unbind
 * while open, unbind; `losetup` as a program (-f --show, -a, -d) and its errors.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { namedHolder } from '../../emulator/kernel/kernel.js';
import { LOOP_MAJOR, LoopDevices } from '../../emulator/kernel/loop.js';
import { LOSETUP_PATH, losetupProgram } from '../../emulator/toolstack/hotplug/losetup.js';
import { testTempDir } from '../temp-dirs.js';
import { inKernel } from './sim-kernel.js';

function imageFile(bytes: Uint8Array): string {
  const path = join(testTempDir('loop'), 'disk.img');
  writeFileSync(path, bytes);
  return path;
}

describe('loop driver', () => {
  test('nodes exist unbound; set-fd binds the lowest free index; the bytes read are the file bytes', async () => {
    const data = new Uint8Array(4096).map((_, i) => i & 0xff);
    const file = imageFile(data);
    const v = await inKernel(async (k) => {
      const loops = new LoopDevices(k, 4);
      const nodes = [0, 1, 2, 3].map((i) => k.ns.exists(`/dev/loop${i}`));
      const unbound = k.blocks.lookup(LOOP_MAJOR, 0);
      const free0 = loops.getFree();
      const b = loops.setFd(free0, file);
      const free1 = loops.getFree();
      const bdev = k.blocks.lookup(LOOP_MAJOR, 0)!;
      const buf = new Uint8Array(512);
      await k.blocks.submitAndWait(bdev, 'read', 1, buf);
      const read = [...buf.subarray(0, 4)];
      return { nodes, unbound, free0, free1, b, read, list: loops.list() };
    });
    expect(v.nodes).toEqual([true, true, true, true]);
    expect(v.unbound).toBeUndefined();
    expect(v.free0).toBe(0);
    expect(v.free1).toBe(1);
    expect(v.b).toEqual({ index: 0, device: '/dev/loop0', backingFile: file, readOnly: false });
    expect(v.list).toEqual([v.b]);
    expect(v.read).toEqual([0, 1, 2, 3]); // sector 1 of the file: bytes 512.. = (512 + i) & 0xff
  });

  test('errors: bound twice EBUSY, clear unbound ENXIO, clear while open EBUSY, missing file ENOENT, none free ENOSPC', async () => {
    const file = imageFile(new Uint8Array(1024));
    const v = await inKernel(async (k) => {
      const loops = new LoopDevices(k, 2);
      const code = (f: () => unknown) => {
        try {
          f();
          return 'ok';
        } catch (e) {
          return (e as { code?: string }).code ?? String(e);
        }
      };
      const missing = code(() => loops.setFd(0, '/nonexistent/disk.img'));
      loops.setFd(0, file);
      const twice = code(() => loops.setFd(0, file));
      const clearUnbound = code(() => loops.clrFd(1));
      loops.setFd(1, file);
      const full = code(() => loops.getFree());
      const bdev = k.blocks.lookup(LOOP_MAJOR, 1)!;
      const holder = namedHolder('test opener');
      await k.blocks.open(bdev, holder, {});
      const clearOpen = code(() => loops.clrFd(1));
      await k.blocks.close(bdev, holder);
      const clear = code(() => loops.clrFd(1));
      const outOfRange = code(() => loops.clrFd(7));
      return { missing, twice, clearUnbound, full, clearOpen, clear, outOfRange, after: loops.list().length };
    });
    expect(v).toEqual({
      missing: 'ENOENT',
      twice: 'EBUSY',
      clearUnbound: 'ENXIO',
      full: 'ENOSPC',
      clearOpen: 'EBUSY',
      clear: 'ok',
      outOfRange: 'ENXIO',
      after: 1,
    });
  });
});

describe('losetup program', () => {
  test('-f --show, -a, -d and the messages of its failures', async () => {
    const file = imageFile(new Uint8Array(1024));
    const v = await inKernel(async (k) => {
      const loops = new LoopDevices(k, 1);
      k.registerProgram(LOSETUP_PATH, losetupProgram(loops));
      const run = async (...args: string[]) => {
        const p = k.spawn(LOSETUP_PATH, args);
        const st = await k.processes.waitExit(p);
        return { code: st?.code, out: p.output.join('\n') };
      };
      return [
        await run('-f', '--show', file),
        await run('-a'),
        await run('-f', '--show', file),
        await run('-d', '/dev/loop0'),
        await run('-d', '/dev/loop0'),
        await run('-d', '/dev/sda'),
        await run('-x'),
        await run('-a'),
      ];
    });
    expect(v[0]).toEqual({ code: 0, out: '/dev/loop0' });
    expect(v[1]).toEqual({ code: 0, out: `/dev/loop0: (${file})` });
    expect(v[2]).toEqual({ code: 1, out: 'losetup: cannot find an unused loop device' });
    expect(v[3]).toEqual({ code: 0, out: '' });
    expect(v[4]!.code).toBe(1);
    expect(v[4]!.out).toMatch(/^losetup: \/dev\/loop0: not bound: No such device or address \(ENXIO\)$/);
    expect(v[5]!.out).toMatch(/not a loop device/);
    expect(v[6]).toEqual({ code: 1, out: "losetup: invalid option -- '-x'" });
    expect(v[7]).toEqual({ code: 0, out: '' });
  });
});
