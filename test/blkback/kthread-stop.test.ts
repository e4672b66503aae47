/**
 * C10 (XSA-350, mainline 1c728719a4da): the ring thread's kthread_stop. A xenblkd stopped before it was
 * first scheduled never runs its function, and before the fix only the function cleared
 * ring->xenblkd, so the pointer kept naming a freed task and the next disconnect stopped it again.
 * Driven at the ring level: start the thread and stop it before the scheduler ran it, then stop again.
 */
import { describe, expect, it } from 'vitest';
import { type BlkbackKthreadStop, versionBehaviour } from '../../drivers/blkback/common.js';
import type { BlkbackContext } from '../../drivers/blkback/context.js';
import { BlkifRing } from '../../drivers/blkback/ring-thread.js';
import { XenBlkif } from '../../drivers/blkback/xen-blkif.js';
import type { XenbusDevice } from '../../drivers/xenbus/device.js';
import type { Env } from '../../emulator/runtime/engine.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';

function ringFor(env: Env, kthreadStop: BlkbackKthreadStop): BlkifRing {
  // Only what a ring's thread start/stop touches; the hypercall side is never reached.
  const ctx = {
    env,
    behaviour: versionBehaviour('2017'),
    version: '2017',
    kthreadStop,
    reconnect: 'ef9e715c419c',
    maxPersistentGrants: 16,
    log: (m: string) => env.trace.log('blkback', `xen-blkback: ${m}`),
  } as unknown as BlkbackContext;
  const dev = { busId: 'vbd-1-51712', nodename: 'backend/vbd/1/51712' } as XenbusDevice;
  return new BlkifRing(new XenBlkif(ctx, 1, dev), 0);
}

async function stopTwice(kthreadStop: BlkbackKthreadStop, letItRun: boolean) {
  const engine = createSimEngine({ seed: 1 });
  try {
    return await engine.run(async (ctl) => {
      const ring = ringFor(ctl.env, kthreadStop);
      ring.start('blkback.1.xvda-0');
      if (letItRun) await ctl.env.sleep(1);
      const first = ring.threads.size;
      await ring.stopThread();
      const dangling = ring.thread !== undefined;
      // the next disconnect (fe toggling states while a second ring is busy keeps the rings allocated)
      await ring.stopThread();
      await ctl.env.sleep(1);
      return { first, dangling, after: ring.thread === undefined };
    });
  } finally {
    await engine.close();
  }
}

describe('C10: kthread_stop of a xenblkd that never ran (XSA-350, 1c728719a4da)', () => {
  it('xsa-350: the pointer survives the stop, and the second stop is a KASAN use-after-free oops', async () => {
    const r = await stopTwice('xsa-350', false);
    expect(r.outcome).toBe('error');
    expect(r.error?.message).toMatch(/BUG: KASAN: use-after-free in kthread_stop/);
    expect(r.trace.filter((e) => e.kind === 'oops')).toHaveLength(1);
    expect((r.dmesg[-1] ?? Object.values(r.dmesg).flat()).join('\n')).toContain(
      'BUG: KASAN: use-after-free in kthread_stop',
    );
  });

  it('1c728719a4da: the pointer is cleared after the stop; the second stop does nothing', async () => {
    const r = await stopTwice('1c728719a4da', false);
    expect(r.outcome).toBe('completed');
    expect(r.value).toEqual({ first: 1, dangling: false, after: true });
    expect(r.trace.some((e) => e.kind === 'oops')).toBe(false);
  });

  it('xsa-350: a thread that ran clears the pointer itself on exit; stopping twice is harmless', async () => {
    const r = await stopTwice('xsa-350', true);
    expect(r.outcome).toBe('completed');
    expect(r.value).toEqual({ first: 1, dangling: false, after: true });
  });
});
