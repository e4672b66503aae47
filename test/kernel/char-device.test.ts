import { describe, expect, test } from 'vitest';
import type { BlockDevice } from '../../emulator/kernel/block-device.js';
import { CharDevices, MISC_DYNAMIC_MINOR } from '../../emulator/kernel/char-device.js';
import { KernelError } from '../../emulator/kernel/errno.js';
import type { File, Vma } from '../../emulator/kernel/file.js';
import { type Kernel, namedHolder } from '../../emulator/kernel/kernel.js';
import type { Process } from '../../emulator/kernel/process.js';
import { runKernel } from './sim-kernel.js';

function code(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof KernelError) return e.code;
    throw e;
  }
}

describe('character device registry', () => {
  test('dynamic majors from 254 down, misc minors from 63 down, overlaps refused', () => {
    const chars = new CharDevices();
    const drv = {};
    expect(chars.register(0, 0, 1024, 'blktap2', drv)).toBe(254);
    expect(chars.register(0, 0, 1, 'other', drv)).toBe(253);
    expect(code(() => chars.register(254, 1000, 100, 'clash', drv))).toBe('EBUSY');
    expect(chars.register(254, 1024, 10, 'after', drv)).toBe(254);
    expect(chars.miscRegister('blktap-control', MISC_DYNAMIC_MINOR, drv)).toBe(63);
    expect(chars.miscRegister('second', MISC_DYNAMIC_MINOR, drv)).toBe(62);
    expect(code(() => chars.miscRegister('fixed', 63, drv))).toBe('EBUSY');
    expect(chars.lookup(254, 5)).toBe(drv);
    expect(chars.lookup(254, 2000)).toBeUndefined();
    chars.unregister(254, 0, 1024);
    expect(chars.lookup(254, 5)).toBeUndefined();
    expect(code(() => chars.unregister(254, 0, 1024))).toBe('EINVAL');
  });
});

/**
 * A ring-like device modelled on blktap's: one opener, mmap of a page, vm_close logged, and a release
 * that waits uninterruptibly until a block device has no openers (blktap_device_destroy_sync).
 */
function installRing(k: Kernel, log: string[], bdev: BlockDevice): void {
  const major = k.chars.register(0, 0, 1, 'ring', {
    open: (file: File) => {
      log.push(`open ${file.path}`);
    },
    mmap: (_file: File, vma: Vma) => {
      vma.memory = new Uint8Array(vma.length);
      log.push('mmap');
    },
    vmClose: () => void log.push('vm_close'),
    release: async (file: File) => {
      log.push(`release begins (refs ${file.refs})`);
      await k.waits.waitUninterruptible(
        bdev.openersChanged,
        () => bdev.bdOpeners === 0,
        bdev.noOpenersWait('tapdev0'),
      );
      k.blocks.tryDestroy(bdev);
      log.push('release ends');
    },
  });
  k.ns.mkdir('/dev/xen/blktap-2', { parents: true });
  k.ns.mknod('/dev/xen/blktap-2/blktap0', 'chr', major, 0);
}

function tapdev(k: Kernel): BlockDevice {
  const major = k.blocks.registerBlkdev(0, 'tapdev');
  return k.blocks.addDisk({
    name: 'tapdev0',
    major,
    minor: 0,
    capacitySectors: 8,
    driver: { submit: (_b, bio) => bio.end(0) },
  });
}

describe('files: release runs on the last reference', () => {
  test.each([
    ['close then munmap', true],
    ['munmap then close', false],
  ])('%s', async (_name, closeFirst) => {
    const log: string[] = [];
    const r = await runKernel(async (k) => {
      installRing(k, log, tapdev(k));
      const proc = k.spawn(
        async (p: Process) => {
          const fd = await p.open('/dev/xen/blktap-2/blktap0', { read: true, write: true });
          const vma = await p.mmap(fd, 4096);
          log.push(`refs ${p.file(fd).refs}`);
          if (closeFirst) {
            await p.close(fd);
            log.push('close returned');
            await p.munmap(vma);
            log.push('munmap returned');
          } else {
            await p.munmap(vma);
            log.push('munmap returned');
            await p.close(fd);
            log.push('close returned');
          }
        },
        [],
        { name: 'tapdisk' },
      );
      return k.processes.waitExit(proc);
    });
    expect(r.outcome).toBe('completed');
    expect(r.value).toEqual({ code: 0, wstatus: 0 });
    const expected = closeFirst
      ? ['close returned', 'vm_close', 'release begins (refs 0)', 'release ends', 'munmap returned']
      : ['vm_close', 'munmap returned', 'release begins (refs 0)', 'release ends', 'close returned'];
    expect(log).toEqual(['open /dev/xen/blktap-2/blktap0', 'mmap', 'refs 2', ...expected]);
  });

  test('a blocking release blocks munmap in D state, shows in the wait-for graph, ignores SIGKILL', async () => {
    const log: string[] = [];
    const r = await runKernel(async (k, env) => {
      const bdev = tapdev(k);
      installRing(k, log, bdev);
      const blkback = namedHolder('blkback vbd-1-51712');
      await k.blocks.open(bdev, blkback, { write: true });
      const proc = k.spawn(
        async (p: Process) => {
          const fd = await p.open('/dev/xen/blktap-2/blktap0', { read: true, write: true });
          const vma = await p.mmap(fd, 4096);
          await p.close(fd);
          await p.munmap(vma);
          log.push('not reached: killed on the way out of munmap');
        },
        [],
        { name: 'tapdisk' },
      );
      const early = await k.processes.waitExit(proc, 5000);
      const ps = k.processes.ps();
      k.processes.kill(proc.pid, 'SIGKILL');
      await env.sleep(100);
      const stillThere = k.processes.ps();
      await k.blocks.close(bdev, blkback);
      const status = await k.processes.waitExit(proc);
      return { early, ps, stillThere, status, at: env.now(), disk: k.blocks.list().length };
    });
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.early).toBeUndefined();
    expect(v.ps).toEqual([
      { pid: 100, ppid: 1, name: 'tapdisk', args: [], state: 'D', wchan: 'tapdev0 to have no openers' },
    ]);
    expect(v.stillThere[0]?.state).toBe('D');
    expect(v.status).toEqual({ signal: 'SIGKILL', wstatus: 9 });
    expect(v.at).toBe(5100);
    expect(v.disk).toBe(0);
    // The release finishes once blkback lets go; the pending SIGKILL then ends tapdisk on its way out of munmap.
    expect(log.slice(-3)).toEqual(['vm_close', 'release begins (refs 0)', 'release ends']);
    // The stall: the controller's 5 s wait, through tapdisk, to the bdev opener.
    expect(r.stalls).toHaveLength(1);
    const stall = r.stalls[0]!;
    expect(stall.at).toBe(0);
    expect(stall.brokenBy?.at).toBe(5000);
    expect(stall.chain.map((l) => [l.waitsFor, l.heldBy])).toEqual([
      ['exit of dom-1/tapdisk[100]', 'dom-1/tapdisk[100]'],
      ['tapdev0 to have no openers', 'blkback vbd-1-51712'],
    ]);
  });
});
