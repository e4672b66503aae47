/**
 * C21: the block script's loop-file branch. A `remove` that runs before `add` has finished finds no
 * `node`; before 92e6cb5673 the `add` still binds a loop device afterwards and nobody unbinds it; after
 * it, `add` takes the "block" lock and gives up unless the backend still reads InitWait.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { Kernel } from '../../emulator/kernel/kernel.js';
import { Kernel as KernelClass } from '../../emulator/kernel/kernel.js';
import { LoopDevices } from '../../emulator/kernel/loop.js';
import type { Process } from '../../emulator/kernel/process.js';
import type { TraceEvent } from '../../emulator/runtime/engine.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import {
  armSlowHotplugAdd,
  BLOCK_SCRIPT,
  type BlockScriptVersion,
  blockScript,
  blockScriptVersion,
  setBlockScriptVersion,
} from '../../emulator/toolstack/hotplug/block.js';
import { LOSETUP_PATH, losetupProgram } from '../../emulator/toolstack/hotplug/losetup.js';
import { hotplugArgs } from '../../emulator/toolstack/libxl/hotplug-exec.js';
import { XsClient } from '../../emulator/xenstored/client.js';
import { XenstoreDaemon } from '../../emulator/xenstored/daemon.js';
import { testTempDir } from '../temp-dirs.js';

const BE = 'backend/vbd/1/51840';
const SCRIPT = `/etc/xen/scripts/${BLOCK_SCRIPT}`;

function imageFile(): string {
  const path = join(testTempDir('hotplug'), 'disk.img');
  writeFileSync(path, new Uint8Array(64 * 512));
  return path;
}

interface Outcome {
  add: number;
  remove: number;
  loops: string[];
  hotplugError: string | undefined;
  node: string | undefined;
}

/**
 * A dom0 with xenstored, the loop driver, losetup and the block script at `version`; the backend dir
 * of a file disk in InitWait. `drive` starts the scripts (pids) in whatever order it tests.
 */
async function onHost(
  version: BlockScriptVersion,
  drive: (h: {
    k: Kernel;
    xs: XsClient;
    loops: LoopDevices;
    start: (action: 'add' | 'remove') => Process;
  }) => Promise<Process[]>,
  seed = 1,
): Promise<Outcome & { trace: readonly TraceEvent[] }> {
  const file = imageFile();
  const engine = createSimEngine({ seed });
  const r = await engine.run(async (ctl) => {
    const k = new KernelClass(ctl.env);
    const daemon = new XenstoreDaemon({});
    const xs = new XsClient(daemon.connect({ domid: 0, privileged: true, send: () => true }));
    const loops = new LoopDevices(k, 4);
    k.registerProgram(LOSETUP_PATH, losetupProgram(loops));
    k.registerProgram(SCRIPT, blockScript(k, daemon));
    setBlockScriptVersion(k, version);
    for (const [n, v] of [
      ['params', file],
      ['type', 'phy'],
      ['mode', 'w'],
      ['state', '2'],
      ['script', SCRIPT],
    ])
      xs.write(`/local/domain/0/${BE}/${n}`, v!);
    const start = (action: 'add' | 'remove') =>
      k.spawn(SCRIPT, hotplugArgs(SCRIPT, action, `/local/domain/0/${BE}`), { name: `block-${action}` });
    const [addProc, removeProc] = await drive({ k, xs, loops, start });
    const code = async (p: Process) => (await k.processes.waitExit(p))?.code ?? -1;
    const add = await code(addProc!);
    const remove = await code(removeProc!);
    return {
      add,
      remove,
      loops: loops.list().map((b) => `${b.device}: (${b.backingFile})`),
      hotplugError: xs.tryRead(`/local/domain/0/${BE}/hotplug-error`),
      node: xs.tryRead(`/local/domain/0/${BE}/node`),
    };
  });
  if (r.outcome !== 'completed') throw new Error(`run ${r.outcome}: ${r.error?.stack}`);
  return { ...(r.value as Outcome), trace: r.trace };
}

/**
 * `add` armed to sleep 1 s; 500 ms in the toolstack gives up on the device (state Closed) and runs
 * `remove`, as xl block-detach does while the hotplug add is still at work (the C21 scenario pair).
 */
async function removeDuringSlowAdd(version: BlockScriptVersion) {
  let boundDuringSleep = -1;
  let removeEnd = -1;
  const o = await onHost(version, async ({ k, xs, loops, start }) => {
    armSlowHotplugAdd(k, 1000);
    const add = start('add');
    await k.env.sleep(500);
    boundDuringSleep = loops.list().length;
    xs.write(`/local/domain/0/${BE}/state`, '6');
    const remove = start('remove');
    k.env.spawn('remove-end', async () => {
      await k.processes.waitExit(remove);
      removeEnd = k.env.now();
    });
    return [add, remove];
  });
  const slow = o.trace.find((e) => e.comp === 'fault' && e.fields?.fault === 'slow-hotplug');
  return { ...o, before: slow?.fields?.before, boundDuringSleep, removeEnd };
}

/** The toolstack gave up on the device (state Closed) and ran `remove` to its end before `add` ran. */
const removeThenAdd = async ({ k, xs, start }: Parameters<Parameters<typeof onHost>[1]>[0]) => {
  xs.write(`/local/domain/0/${BE}/state`, '6');
  const remove = start('remove');
  await k.processes.waitExit(remove);
  return [start('add'), remove];
};

describe('block script, loop files (C21)', () => {
  test('the installed version defaults to the fix and refuses unknown names', async () => {
    const r = await createSimEngine({ seed: 1 }).run(async (ctl) => {
      const k = new KernelClass(ctl.env);
      const before = blockScriptVersion(k);
      let err = '';
      try {
        setBlockScriptVersion(k, '2010' as BlockScriptVersion);
      } catch (e) {
        err = (e as Error).message;
      }
      return { before, err };
    });
    expect(r.value).toEqual({
      before: '92e6cb5673',
      err: 'block script version "2010" is not one of 2009-pre, 92e6cb5673',
    });
  });

  test('add then remove: the file is bound to loop0, `node` names it, remove unbinds it (both versions)', async () => {
    for (const version of ['2009-pre', '92e6cb5673'] as const) {
      const o = await onHost(version, async ({ k, start }) => {
        const add = start('add');
        await k.processes.waitExit(add);
        return [add, start('remove')];
      });
      expect(o, version).toMatchObject({ add: 0, remove: 0, loops: [], node: '/dev/loop0' });
    }
  });

  test.each([
    {
      version: '2009-pre' as const,
      // remove finds no node and fails; add binds a loop device nobody will unbind
      want: { add: 0, remove: 1, leaked: 1, error: `xenstore-read /local/domain/0/${BE}/node failed.` },
    },
    {
      version: '92e6cb5673' as const,
      want: {
        add: 1,
        remove: 1,
        leaked: 0,
        error: `Path closed or removed during hotplug add: /local/domain/0/${BE} state: 6`,
      },
    },
  ])('remove before add ($version)', async ({ version, want }) => {
    const o = await onHost(version, removeThenAdd);
    expect({ add: o.add, remove: o.remove, leaked: o.loops.length, error: o.hotplugError }).toEqual(want);
  });

  test('add racing remove over seeds 1-20: only 2009-pre ever leaks', async () => {
    const race = async ({ xs, start }: Parameters<Parameters<typeof onHost>[1]>[0]) => {
      const add = start('add');
      // the toolstack gives up at the same moment and runs remove
      xs.write(`/local/domain/0/${BE}/state`, '6');
      return [add, start('remove')];
    };
    const leaks = async (version: BlockScriptVersion) => {
      let n = 0;
      for (let seed = 1; seed <= 20; seed++) if ((await onHost(version, race, seed)).loops.length) n++;
      return n;
    };
    expect(await leaks('92e6cb5673')).toBe(0);
    expect(await leaks('2009-pre')).toBeGreaterThan(0);
  });

  test.each([
    {
      version: '2009-pre' as const,
      // remove runs at once, finds no node and fails; add wakes at 1 s and binds loop0 for good
      want: {
        add: 0,
        remove: 1,
        removeEnd: 500,
        loops: 1,
        node: '/dev/loop0',
        error: `xenstore-read /local/domain/0/${BE}/node failed.`,
      },
    },
    {
      version: '92e6cb5673' as const,
      // add checked InitWait under the lock before its sleep; remove waits for the lock, then unbinds
      want: { add: 0, remove: 0, removeEnd: 1000, loops: 0, node: '/dev/loop0', error: undefined },
    },
  ])('remove while a slow add sleeps before losetup ($version)', async ({ version, want }) => {
    const o = await removeDuringSlowAdd(version);
    expect(o.before).toBe('losetup');
    expect(o.boundDuringSleep).toBe(0);
    expect({
      add: o.add,
      remove: o.remove,
      removeEnd: o.removeEnd,
      loops: o.loops.length,
      node: o.node,
      error: o.hotplugError,
    }).toEqual(want);
  });
});
