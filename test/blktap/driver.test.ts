import { describe, expect, test } from 'vitest';
import {
  BLKTAP2_CONTROL_DEVICE,
  BLKTAP2_HANDLE_SIZE,
  BlktapIoctl,
  decodeBlktapHandle,
  encodeBlktap2Params,
  ringDevicePath,
} from '../../drivers/blktap/abi.js';
import { installBlktap } from '../../drivers/blktap/driver.js';
import { tapdevDiskName } from '../../drivers/blktap/tap.js';
import { KernelError } from '../../emulator/kernel/errno.js';
import { type Kernel, namedHolder } from '../../emulator/kernel/kernel.js';
import type { Process } from '../../emulator/kernel/process.js';
import { inKernel } from '../kernel/sim-kernel.js';

async function code<T>(fn: () => Promise<T>): Promise<T | string> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof KernelError) return e.code;
    throw e;
  }
}

/** Runs `body` in a process of `k` and waits for it. */
async function inProcess(k: Kernel, name: string, body: (p: Process) => Promise<void>): Promise<void> {
  await k.processes.waitExit(k.spawn(body, [], { name }));
}

async function control(p: Process, cmd: number, arg: unknown): Promise<number | string> {
  const fd = await p.open(BLKTAP2_CONTROL_DEVICE, { read: true, write: true });
  try {
    return await code(() => p.ioctl(fd, cmd, arg));
  } finally {
    await p.close(fd);
  }
}

async function alloc(p: Process): Promise<number | string> {
  const h = new Uint8Array(BLKTAP2_HANDLE_SIZE);
  const r = await control(p, BlktapIoctl.ALLOC_TAP, h);
  return r === 0 ? decodeBlktapHandle(h).minor : r;
}

const params = (capacity: bigint, sectorSize = 512) =>
  encodeBlktap2Params({ name: 'aio:/srv/a.img', capacity, sectorSize });

describe('blktap control device', () => {
  test('ALLOC_TAP takes the lowest free minor, fills the handle, creates sysfs; FREE_TAP errors', async () => {
    const r = await inKernel(async (k) => {
      const drv = installBlktap(k, { destroySemantics: '2010-08', maxDevices: 3 });
      const out: unknown[] = [];
      await inProcess(k, 'tap-ctl', async (p) => {
        const h = new Uint8Array(BLKTAP2_HANDLE_SIZE);
        out.push(await control(p, BlktapIoctl.ALLOC_TAP, h), decodeBlktapHandle(h));
        out.push(await alloc(p), await alloc(p), await alloc(p));
        out.push(await control(p, BlktapIoctl.FREE_TAP, 1), await alloc(p));
        out.push(await control(p, BlktapIoctl.FREE_TAP, 4), await control(p, BlktapIoctl.FREE_TAP, 3));
        out.push(await control(p, BlktapIoctl.FREE_TAP, 2), await control(p, BlktapIoctl.FREE_TAP, 2));
        out.push(await control(p, 999, 0), await control(p, BlktapIoctl.ALLOC_TAP, null));
        // A handle buffer of the wrong size faults in copy_to_user: the new tap is destroyed again.
        out.push(await control(p, BlktapIoctl.ALLOC_TAP, new Uint8Array(8)), await alloc(p));
        out.push(await control(p, BlktapIoctl.FREE_TAP, 2));
        out.push(await p.glob('/sys/class/blktap2/*'), await p.readText('/sys/class/blktap2/blktap0/name'));
        out.push(await p.glob('/sys/class/blktap2/blktap0/*'));
      });
      return { out, refs: [drv.moduleRefs, drv.poolRefs], dev: [drv.ringMajor, drv.deviceMajor] };
    });
    const [ringMajor, deviceMajor] = r.dev;
    expect(r.out).toEqual([
      0,
      { ring: ringMajor, device: deviceMajor, minor: 0 },
      1,
      2,
      'ENOMEM',
      0,
      1,
      'EINVAL',
      'ENODEV',
      0,
      'ENODEV',
      'ENOTTY',
      'EFAULT',
      'EFAULT',
      2,
      0,
      ['/sys/class/blktap2/blktap0', '/sys/class/blktap2/blktap1'],
      '0\n',
      ['debug', 'dev', 'name', 'pool', 'remove', 'task'].map((a) => `/sys/class/blktap2/blktap0/${a}`),
    ]);
    expect(r.refs).toEqual([2, 2]);
  });

  test('FREE_TAP is EBUSY while the ring is open or mapped, in either order of close and munmap', async () => {
    const r = await inKernel(async (k) => {
      installBlktap(k, { destroySemantics: '2010-08' });
      const out: unknown[] = [];
      await inProcess(k, 'tapdisk', async (p) => {
        const minor = (await alloc(p)) as number;
        const fd = await p.open(ringDevicePath(minor), { read: true, write: true });
        out.push(await control(p, BlktapIoctl.FREE_TAP, minor));
        const vma = await p.mmap(fd, 4096 * 353);
        await p.close(fd);
        out.push(
          await control(p, BlktapIoctl.FREE_TAP, minor),
          await p.readText('/sys/class/blktap2/blktap0/task'),
        );
        await p.munmap(vma);
        out.push(await control(p, BlktapIoctl.FREE_TAP, minor));
      });
      return out;
    });
    expect(r).toEqual(['EBUSY', 'EBUSY', '100\n', 0]);
  });
});

describe('blktap ring device', () => {
  test('one opener; ENXIO for a free minor and after shutdown was requested; EBUSY for a second mmap', async () => {
    const r = await inKernel(async (k) => {
      installBlktap(k, { destroySemantics: '2010-08' });
      const out: unknown[] = [];
      await inProcess(k, 'tapdisk', async (p) => {
        const minor = (await alloc(p)) as number;
        await alloc(p);
        await p.mknod(ringDevicePath(5), 'chr', k.chars.list().find((c) => c.name === 'blktap2')!.major, 5);
        const fd = await p.open(ringDevicePath(minor), { read: true, write: true });
        out.push(await code(() => p.open(ringDevicePath(minor), { read: true })));
        out.push(await code(() => p.open(ringDevicePath(5), { read: true })));
        await p.mmap(fd, 4096);
        out.push(await code(() => p.mmap(fd, 4096)));
        await p.writeText('/sys/class/blktap2/blktap1/remove', '1');
        out.push(await p.glob('/sys/class/blktap2/*'));
        await p.writeText('/sys/class/blktap2/blktap0/remove', '1');
        out.push(await code(() => p.open(ringDevicePath(minor), { read: true })));
      });
      return out;
    });
    expect(r).toEqual(['EBUSY', 'ENXIO', 'EBUSY', ['/sys/class/blktap2/blktap0'], 'ENXIO']);
  });

  test('CREATE_DEVICE / REMOVE_DEVICE: EACCES without the mapping, EINVAL params, EEXIST, EBUSY while open', async () => {
    const r = await inKernel(async (k) => {
      const drv = installBlktap(k, { destroySemantics: '2010-08' });
      const out: unknown[] = [];
      const blkback = namedHolder('blkback vbd-1-51712');
      await inProcess(k, 'tapdisk', async (p) => {
        const minor = (await alloc(p)) as number;
        const fd = await p.open(ringDevicePath(minor), { read: true, write: true });
        out.push(await code(() => p.ioctl(fd, BlktapIoctl.CREATE_DEVICE, params(2048n))));
        await p.mmap(fd, 4096);
        out.push(await code(() => p.ioctl(fd, BlktapIoctl.CREATE_DEVICE, params(0n))));
        out.push(await code(() => p.ioctl(fd, BlktapIoctl.CREATE_DEVICE, params(2048n, 520))));
        out.push(await code(() => p.ioctl(fd, BlktapIoctl.CREATE_DEVICE, null)));
        out.push(await code(() => p.ioctl(fd, BlktapIoctl.CREATE_DEVICE, params(2048n))));
        out.push(await code(() => p.ioctl(fd, BlktapIoctl.CREATE_DEVICE, params(2048n))));
        out.push(k.blocks.list().map((d) => [d.name, d.capacitySectors, d.major === drv.deviceMajor]));
        out.push(k.ns.lookup('/dev/xen/blktap-2/tapdev0'));
        await k.blocks.open(drv.tap(minor)!.device.bdev!, blkback, { write: true });
        out.push(await code(() => p.ioctl(fd, BlktapIoctl.REMOVE_DEVICE)));
        await k.blocks.close(drv.tap(minor)!.device.bdev!, blkback);
        out.push(await code(() => p.ioctl(fd, BlktapIoctl.REMOVE_DEVICE)));
        out.push(k.blocks.list().length, await code(() => p.ioctl(fd, 77)));
      });
      return { out, dmesg: drv.minors() };
    });
    expect(r.out).toEqual([
      'EACCES',
      'EINVAL',
      'EINVAL',
      'EINVAL',
      0,
      'EEXIST',
      [['tda', 2048, true]],
      { kind: 'blk', major: expect.any(Number), minor: 0 },
      'EBUSY',
      0,
      0,
      'ENOTTY',
    ]);
  });

  test('tapdev disk names follow blktap_device_create', () => {
    expect([0, 25, 26, 27, 701, 702].map(tapdevDiskName)).toEqual([
      'tda',
      'tdz',
      'tdaa',
      'tdab',
      'tdzz',
      'tdaaa',
    ]);
  });

  test('options are validated', () => {
    expect(() => installBlktap({} as Kernel, { destroySemantics: '2011' as never })).toThrow(
      /destroySemantics/,
    );
  });
});
