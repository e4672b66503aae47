/**
 * The C3 switch (teardown.md §4 C3; blktap-module 2ab5e84, 2010-08-03, "Avoid a tapdisk deadlock in
 * device destruction"): REMOVE_DEVICE from tapdisk while a last close holds the tapdev's bd_mutex and
 * waits for tapdisk to service its writeback. Before the fix the destroy slept on bd_mutex (mutex_lock):
 * tapdisk waits for the closer, the closer for tapdisk, no timer: a deadlock. With the fix (trylock)
 * REMOVE_DEVICE fails with EBUSY at once, tapdisk goes back to its loop, services the I/O, the close
 * finishes, and the retry destroys the device.
 */
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
import { KernelError } from '../../emulator/kernel/errno.js';
import { namedHolder } from '../../emulator/kernel/kernel.js';
import { runKernel } from '../kernel/sim-kernel.js';

type Lock = 'trylock' | 'lock';

/**
 * "closer": the last close of tapdev0, holding bd_mutex while its writeback waits for tapdisk (the
 * writeback is modelled as a flag the tapdisk process sets when it next runs its event loop).
 * "tapdisk": REMOVE_DEVICE until it succeeds, servicing I/O between tries as fa28881's loop does.
 */
function race(destroyLock: Lock) {
  return runKernel(async (k, env) => {
    const drv = installBlktap(k, { destroySemantics: '2010-08', destroyLock });
    const log: string[] = [];
    let writebackDone = false;
    const serviced = env.waitQueue('tapdev0 writeback');
    let removeDone = false;
    const proc = k.spawn(
      async (p) => {
        const cfd = await p.open(BLKTAP2_CONTROL_DEVICE, { read: true, write: true });
        const h = new Uint8Array(BLKTAP2_HANDLE_SIZE);
        await p.ioctl(cfd, BlktapIoctl.ALLOC_TAP, h);
        const minor = decodeBlktapHandle(h).minor;
        const fd = await p.open(ringDevicePath(minor), { read: true, write: true });
        await p.mmap(fd, 4096);
        await p.ioctl(
          fd,
          BlktapIoctl.CREATE_DEVICE,
          encodeBlktap2Params({ name: 'aio:/srv/a.img', capacity: 2048n, sectorSize: 512 }),
        );
        const bdev = drv.tap(minor)!.device.bdev!;
        const closer = namedHolder('closer');
        await k.blocks.open(bdev, closer, { write: true });
        env.spawn('last close of tapdev0', async () => {
          await k.waits.lock(bdev.bdMutex, 'bd_mutex of tda (close)');
          log.push('closer: holds bd_mutex, writeback in flight');
          await env.wait(serviced, () => writebackDone, {
            what: 'tapdisk to complete the writeback',
            holders: () => [...proc.tasks()],
          });
          bdev.bdMutex.unlock();
          await k.blocks.close(bdev, closer);
          log.push('closer: closed');
        });
        await env.yield();
        for (let tries = 1; ; tries++) {
          try {
            await p.ioctl(fd, BlktapIoctl.REMOVE_DEVICE);
            log.push(`tapdisk: REMOVE_DEVICE ok after ${tries} tries`);
            removeDone = true;
            return 0;
          } catch (e) {
            if (!(e instanceof KernelError) || e.code !== 'EBUSY') throw e;
            log.push(`tapdisk: REMOVE_DEVICE EBUSY`);
          }
          // Back in the event loop: the writeback on the ring is serviced.
          writebackDone = true;
          serviced.wakeAll();
          await env.sleep(1);
        }
      },
      [],
      { name: 'tapdisk2' },
    );
    await k.processes.waitExit(proc);
    return { log, removeDone, disks: k.blocks.list().map((d) => d.name) };
  });
}

describe('blktap destroyLock (C3)', () => {
  test("'lock' (before 2ab5e84): REMOVE_DEVICE sleeps on bd_mutex behind the closer: deadlock, no timer", async () => {
    const r = await race('lock');
    expect(r.outcome).toBe('deadlock');
    const stall = r.stalls.at(-1)!;
    const waits = stall.chain.map((l) => l.waitsFor);
    expect(waits.some((w) => /bd_mutex of tda \(destroy\)/.test(w))).toBe(true);
    expect(waits).toContain('tapdisk to complete the writeback');
    expect(stall.brokenBy).toBeUndefined();
  });

  test("'trylock' (2ab5e84): EBUSY at once, tapdisk services the writeback, the retry destroys tda", async () => {
    const r = await race('trylock');
    expect(r.outcome).toBe('completed');
    expect(r.value!.log).toEqual([
      'closer: holds bd_mutex, writeback in flight',
      'tapdisk: REMOVE_DEVICE EBUSY',
      'closer: closed',
      'tapdisk: REMOVE_DEVICE ok after 2 tries',
    ]);
    expect(r.value!.disks).toEqual([]);
  });
});
