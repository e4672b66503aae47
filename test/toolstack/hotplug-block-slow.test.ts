/**
 * The slow-hotplug fault (C16's trigger): an armed delay makes the next `block add` run sleep before
 * it writes physical-device, one run per arm, interruptibly; a run that gives up earlier keeps none.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { Kernel } from '../../emulator/kernel/kernel.js';
import { LoopDevices } from '../../emulator/kernel/loop.js';
import type { Process } from '../../emulator/kernel/process.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import {
  armSlowHotplugAdd,
  BLOCK_SCRIPT,
  blockScript,
  pendingSlowHotplugAdds,
} from '../../emulator/toolstack/hotplug/block.js';
import { LOSETUP_PATH, losetupProgram } from '../../emulator/toolstack/hotplug/losetup.js';
import { hotplugArgs } from '../../emulator/toolstack/libxl/hotplug-exec.js';
import { XsClient } from '../../emulator/xenstored/client.js';
import { XenstoreDaemon } from '../../emulator/xenstored/daemon.js';
import { testTempDir } from '../temp-dirs.js';

const SCRIPT = `/etc/xen/scripts/${BLOCK_SCRIPT}`;
const be = (devid: number) => `/local/domain/0/backend/vbd/1/${devid}`;

function imageFile(): string {
  const path = join(testTempDir('hotplug-slow'), 'disk.img');
  writeFileSync(path, new Uint8Array(64 * 512));
  return path;
}

interface Host {
  k: Kernel;
  xs: XsClient;
  now: () => number;
  /** Writes a file disk's backend dir (state InitWait unless given) and starts `block add` on it. */
  add: (devid: number, state?: string) => Process;
  /** Virtual time at which the script ended, and the code it ended with. */
  exit: (p: Process) => Promise<{ t: number; code: number | undefined; signal: string | undefined }>;
}

async function onHost<T>(drive: (h: Host) => Promise<T>): Promise<T> {
  const file = imageFile();
  const r = await createSimEngine({ seed: 1 }).run(async (ctl) => {
    const k = new Kernel(ctl.env);
    const daemon = new XenstoreDaemon({});
    const xs = new XsClient(daemon.connect({ domid: 0, privileged: true, send: () => true }));
    const loops = new LoopDevices(k, 4);
    k.registerProgram(LOSETUP_PATH, losetupProgram(loops));
    k.registerProgram(SCRIPT, blockScript(k, daemon));
    const add = (devid: number, state = '2') => {
      for (const [n, v] of [
        ['params', file],
        ['type', 'phy'],
        ['mode', 'w'],
        ['state', state],
        ['script', SCRIPT],
      ])
        xs.write(`${be(devid)}/${n}`, v!);
      return k.spawn(SCRIPT, hotplugArgs(SCRIPT, 'add', be(devid)), { name: `block-add-${devid}` });
    };
    const exit = async (p: Process) => {
      const st = await k.processes.waitExit(p);
      return { t: ctl.env.now(), code: st?.code, signal: st?.signal };
    };
    return drive({ k, xs, now: () => ctl.env.now(), add, exit });
  });
  if (r.outcome !== 'completed') throw new Error(`run ${r.outcome}: ${r.error?.stack}`);
  return r.value as T;
}

describe('block script: slow-hotplug', () => {
  test('unarmed, add writes physical-device at once', async () => {
    const o = await onHost(async ({ xs, add, exit }) => {
      const end = await exit(add(51712));
      return { ...end, dev: xs.tryRead(`${be(51712)}/physical-device`) };
    });
    expect(o).toEqual({ t: 0, code: 0, signal: undefined, dev: '7:0' });
  });

  test('armed, the next add sleeps the delay before physical-device and hotplug-status appear; the one after does not', async () => {
    const o = await onHost(async ({ k, xs, add, exit, now }) => {
      armSlowHotplugAdd(k, 2000);
      const p = add(51712);
      const seen: Array<[number, string | undefined, string | undefined]> = [];
      for (const at of [0, 1999]) {
        await k.env.sleep(at - now());
        seen.push([
          now(),
          xs.tryRead(`${be(51712)}/physical-device`),
          xs.tryRead(`${be(51712)}/hotplug-status`),
        ]);
      }
      const first = await exit(p);
      const second = await exit(add(51728));
      return { seen, first, second, pending: pendingSlowHotplugAdds(k) };
    });
    expect(o.seen).toEqual([
      [0, undefined, undefined],
      [1999, undefined, undefined],
    ]);
    expect(o.first).toEqual({ t: 2000, code: 0, signal: undefined });
    expect(o.second).toEqual({ t: 2000, code: 0, signal: undefined });
    expect(o.pending).toBe(0);
  });

  test('two arms delay two runs, one delay each, in the order they reach physical-device', async () => {
    const o = await onHost(async ({ k, add, exit }) => {
      armSlowHotplugAdd(k, 300);
      armSlowHotplugAdd(k, 50);
      const ends: number[] = [];
      const q = k.env.waitQueue('both block runs');
      for (const p of [add(51712), add(51728)]) {
        k.env.spawn(`wait ${p.pid}`, async () => {
          ends.push((await exit(p)).t);
          q.wakeAll();
        });
      }
      await k.env.wait(q, () => ends.length === 2, { what: 'both block runs' });
      return { ends, pending: pendingSlowHotplugAdds(k) };
    });
    // The two runs share the "block" lock: the second one's 50 ms start when the first releases it.
    expect(o).toEqual({ ends: [300, 350], pending: 0 });
  });

  test('a run that gives up before writing the device keeps no delay; the next one takes it', async () => {
    const o = await onHost(async ({ k, xs, add, exit }) => {
      armSlowHotplugAdd(k, 1000);
      // The toolstack already gave up on this device (Closed): the fixed script stops under the lock.
      const gone = await exit(add(51712, '6'));
      const pendingAfterGone = pendingSlowHotplugAdds(k);
      const next = await exit(add(51728));
      return {
        gone,
        error: xs.tryRead(`${be(51712)}/hotplug-error`),
        pendingAfterGone,
        next,
      };
    });
    expect(o.gone).toEqual({ t: 0, code: 1, signal: undefined });
    expect(o.error).toBe(`Path closed or removed during hotplug add: ${be(51712)} state: 6`);
    expect(o.pendingAfterGone).toBe(1);
    expect(o.next).toEqual({ t: 1000, code: 0, signal: undefined });
  });

  test("SIGKILL during the sleep (libxl's hotplug timeout): the script dies without writing the device", async () => {
    const o = await onHost(async ({ k, xs, add, exit }) => {
      armSlowHotplugAdd(k, 20_000);
      const p = add(51712);
      await k.env.sleep(10_000);
      k.processes.kill(p.pid, 'SIGKILL');
      const end = await exit(p);
      return { ...end, dev: xs.tryRead(`${be(51712)}/physical-device`) };
    });
    // The kernel model ends an interruptible sleep's fatal signal when the sleep ends (waits.ts).
    expect(o).toEqual({ t: 20_000, code: undefined, signal: 'SIGKILL', dev: undefined });
  });

  test.each([0, -5, Number.NaN, Number.POSITIVE_INFINITY])(
    'a delay of %s is refused and arms nothing',
    async (ms) => {
      const o = await onHost(async ({ k }) => {
        let error = '';
        try {
          armSlowHotplugAdd(k, ms);
        } catch (e) {
          error = (e as Error).message;
        }
        return { error, pending: pendingSlowHotplugAdds(k) };
      });
      expect(o.error).toBe(`slow hotplug: delay ${JSON.stringify(ms)} is not a positive duration in ms`);
      expect(o.pending).toBe(0);
    },
  );
});
