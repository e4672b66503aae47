/**
 * Who must act once a backend directory is gone: the removal waits in dom0's xenwatch (teardown.md §1.3,
 * §2 step 10 and its residual race). Xenwatch reports which event is running or queued, the backend bus
 * turns a queued bus-root event naming a device's directory into "xenwatch to run the removal", and a
 * stall chain through such a wait ends at whatever xenwatch itself waits for.
 */
import { describe, expect, test } from 'vitest';
import { BackendBus, namesDirectoryOf } from '../../drivers/xenbus/backend-bus.js';
import { XenbusClient } from '../../drivers/xenbus/client.js';
import { DirectTransport } from '../../drivers/xenbus/direct-transport.js';
import { XenbusWatch, Xenwatch, xenwatchHolderLabel } from '../../drivers/xenbus/xenwatch.js';
import { namedHolder } from '../../emulator/kernel/kernel.js';
import type { Env } from '../../emulator/runtime/engine.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import { chainVerdict } from '../../emulator/runtime/waitgraph.js';
import { XenstoreDaemon } from '../../emulator/xenstored/daemon.js';

const DEV = 'backend/vbd/1/51712';

describe('namesDirectoryOf: which change events can unregister a device', () => {
  test.each([
    // [event path, device nodename, can unregister it]
    [DEV, DEV, true],
    ['backend/vbd/1', DEV, true],
    // xenbus_dev_changed ignores paths with fewer than two slashes
    ['backend/vbd', DEV, false],
    ['backend', DEV, false],
    // a node inside the directory, or a sibling whose name merely starts the same
    [`${DEV}/state`, DEV, false],
    ['backend/vbd/1/5171', DEV, false],
    ['backend/vbd/12', 'backend/vbd/1/51712', false],
    ['backend/vbd/2/51712', DEV, false],
  ])('%s for %s: %s', (path, nodename, want) => {
    expect(namesDirectoryOf(path, nodename)).toBe(want);
  });
});

/** Runs `body` as the controller task of a sim engine (host env) and returns its value and stalls. */
async function onHost<T>(body: (env: Env) => Promise<T>) {
  const engine = createSimEngine({ seed: 1 });
  try {
    const r = await engine.run((ctl) => body(ctl.env));
    if (r.error) throw r.error;
    return r;
  } finally {
    await engine.close();
  }
}

/** A callback that sleeps `ms` in xenwatch (what the stall-xenwatch fault injects). */
function stallXenwatch(env: Env, xenwatch: Xenwatch, ms: number): void {
  const w = new XenbusWatch('fault/stall', async () => {
    await env.sleep(ms, { what: `callback sleeping ${ms} ms` });
  });
  w.active = true;
  xenwatch.queueEvent(w, 'fault/stall', 'stall');
  w.active = false;
}

describe('Xenwatch.findEvent and waitFor', () => {
  test('the running event, then queued ones in order, then nothing once all ran', async () => {
    const r = await onHost(async (env) => {
      const xenwatch = new Xenwatch(env);
      xenwatch.start();
      const a = new XenbusWatch('a', async () => env.sleep(100));
      const b = new XenbusWatch('b', () => undefined);
      a.active = true;
      b.active = true;
      xenwatch.queueEvent(a, 'a/x', 't');
      xenwatch.queueEvent(b, 'b/y', 't');
      await env.sleep(1); // a's callback is running, b's event queued
      const seen = (node: string, path?: string) =>
        xenwatch.findEvent((w, p) => w.node === node && (path === undefined || p === path));
      const during = [seen('a'), seen('b'), seen('b', 'b/z'), seen('c')];
      const wait = xenwatch.waitFor('xenwatch to do it');
      const holders = wait.holders!().map((h) => h.label);
      await env.sleep(200);
      return { during, after: [seen('a'), seen('b')], what: wait.what, holders, task: xenwatch.task!.label };
    });
    const v = r.value!;
    expect(v.during).toEqual(['running', 'queued', undefined, undefined]);
    expect(v.after).toEqual([undefined, undefined]);
    expect(v.what).toBe('xenwatch to do it');
    expect(v.holders).toEqual([v.task]);
    expect(v.task).toMatch(/^host\/xenwatch#\d+$/);
  });

  test('before start a wait on xenwatch names nobody', async () => {
    const r = await onHost(async (env) => new Xenwatch(env).waitFor('x').holders!().length);
    expect(r.value).toBe(0);
  });

  test('the holder-directory label of a domain xenwatch', () => {
    expect(xenwatchHolderLabel(0)).toBe('dom0/xenwatch');
    expect(xenwatchHolderLabel(3)).toBe('dom3/xenwatch');
  });
});

/** dom0's kernel xenbus on a local daemon, with the backend bus started; xenwatch stalled for `ms`. */
async function backendBus(env: Env) {
  const daemon = new XenstoreDaemon({ logger: () => undefined });
  const xenwatch = new Xenwatch(env);
  xenwatch.start();
  const client = new XenbusClient(env, new DirectTransport(daemon, { domid: 0, privileged: true }), {
    xenwatch,
  });
  await client.write(`${DEV}/state`, '1');
  await client.write('backend/vbd/1/51728/state', '1');
  const bus = new BackendBus(env, client);
  await bus.start();
  await env.sleep(1); // the watch's first event has run
  return { bus, client, xenwatch };
}

describe('BackendBus.removalWait', () => {
  test('nothing pending: undefined; a removal queued behind a stuck callback: xenwatch must run it', async () => {
    const r = await onHost(async (env) => {
      const { bus, client, xenwatch } = await backendBus(env);
      const idle = bus.removalWait(DEV);
      stallXenwatch(env, xenwatch, 5000);
      await env.sleep(1);
      // a change inside the directory is not its removal
      await client.write(`${DEV}/online`, '0');
      await env.sleep(1);
      const afterWrite = bus.removalWait(DEV);
      await client.rm(DEV);
      await env.sleep(1);
      const wait = bus.removalWait(DEV);
      return {
        idle,
        afterWrite,
        what: wait?.what,
        holders: wait?.holders?.().map((h) => h.label),
        other: bus.removalWait('backend/vbd/1/51728'),
        task: xenwatch.task!.label,
        afterStall: await env.sleep(6000).then(() => bus.removalWait(DEV)),
      };
    });
    const v = r.value!;
    expect(v.idle).toBeUndefined();
    expect(v.afterWrite).toBeUndefined();
    expect(v.what).toBe(`xenwatch to run the removal of ${DEV}`);
    expect(v.holders).toEqual([v.task]);
    expect(v.other).toBeUndefined();
    expect(v.afterStall).toBeUndefined();
  });

  test('removing the frontend domain’s whole backend directory queues the removal of each device', async () => {
    const r = await onHost(async (env) => {
      const { bus, client, xenwatch } = await backendBus(env);
      stallXenwatch(env, xenwatch, 5000);
      await env.sleep(1);
      await client.rm('backend/vbd/1');
      await env.sleep(1);
      return [DEV, 'backend/vbd/1/51728', 'backend/vbd/2/51712'].map((n) => bus.removalWait(n)?.what);
    });
    expect(r.value).toEqual([
      `xenwatch to run the removal of ${DEV}`,
      'xenwatch to run the removal of backend/vbd/1/51728',
      undefined,
    ]);
  });

  test("while the removal runs (the driver's remove sleeps) xenwatch must finish it", async () => {
    const r = await onHost(async (env) => {
      const { bus, client } = await backendBus(env);
      await client.write('/local/domain/1/device/vbd/51712/state', '1');
      await client.write('backend/vbd/1/51760/frontend-id', '1');
      await client.write('backend/vbd/1/51760/frontend', '/local/domain/1/device/vbd/51712');
      await client.write('backend/vbd/1/51760/state', '1');
      const removed: string[] = [];
      await bus.registerDriver({
        name: 'vbd',
        deviceType: 'vbd',
        probe: async () => undefined,
        otherendChanged: async () => undefined,
        remove: async (dev) => {
          await env.sleep(3000, { what: 'remove sleeping' });
          removed.push(dev.nodename);
        },
      });
      await env.sleep(1);
      const registered = bus.find('backend/vbd/1/51760') !== undefined;
      await client.rm('backend/vbd/1/51760');
      await env.sleep(10);
      const during = bus.removalWait('backend/vbd/1/51760')?.what;
      await env.sleep(3000);
      return { registered, during, after: bus.removalWait('backend/vbd/1/51760'), removed };
    });
    expect(r.value).toEqual({
      registered: true,
      during: 'xenwatch to finish the removal of backend/vbd/1/51760',
      after: undefined,
      removed: ['backend/vbd/1/51760'],
    });
  });

  test('a holder waiting on the queued removal: the stall chain ends at the stuck callback', async () => {
    const r = await onHost(async (env) => {
      const { bus, client, xenwatch } = await backendBus(env);
      stallXenwatch(env, xenwatch, 20_000);
      await env.sleep(1);
      await client.rm(DEV);
      await env.sleep(1);
      // blkback's shape: a named holder whose release waits on whoever must act
      const blkback = namedHolder('blkback vbd-1-51712', () => bus.removalWait(DEV));
      const q = env.waitQueue('tapdev0 openers');
      await env.wait(q, () => false, {
        what: 'tapdev0 to have no openers',
        holders: () => [blkback],
        timeoutMs: 5000,
        timeoutName: 'test timeout',
      });
    });
    expect(r.stalls).toHaveLength(1);
    expect(chainVerdict(r.stalls[0]!)).toEqual({
      cycle: false,
      links: [
        { holder: 'host/controller', waitsFor: 'tapdev0 to have no openers' },
        { holder: 'blkback vbd-1-51712', waitsFor: `xenwatch to run the removal of ${DEV}` },
        { holder: 'host/xenwatch', waitsFor: 'callback sleeping 20000 ms' },
      ],
    });
  });
});
