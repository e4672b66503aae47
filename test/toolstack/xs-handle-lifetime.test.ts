// The xenstore connection of a dom0 process (XsHandle) lives exactly as long as its socket descriptor:
// xs_close, exit, an early exit and SIGKILL all close it, and xenstored forgets its watches and
// transactions then.
import { describe, expect, test } from 'vitest';
import { XenstoreError } from '../../drivers/xenbus/errors.js';
import { XsType } from '../../drivers/xenbus/xs-wire.js';
import { Kernel } from '../../emulator/kernel/kernel.js';
import type { Process } from '../../emulator/kernel/process.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import { XENSTORED_SOCKET_PATH, XsHandle } from '../../emulator/toolstack/libxl/xs-handle.js';
import { XenstoreDaemon } from '../../emulator/xenstored/daemon.js';

interface World {
  k: Kernel;
  daemon: XenstoreDaemon;
  /** CONTROL quota 0: dom0's watch and transaction counts as xenstored reports them. */
  dom0Quota(): { watches: number; transactions: number };
}

async function inWorld<T>(body: (w: World) => Promise<T>): Promise<T> {
  const engine = createSimEngine({ seed: 3 });
  try {
    const r = await engine.run(async (ctl) => {
      const daemon = new XenstoreDaemon();
      const admin = daemon.connect({ domid: 0, send: () => true, label: 'admin' });
      const dom0Quota = () => {
        const reply = admin.request(XsType.CONTROL, 'quota\x000\x00');
        const text = new TextDecoder().decode(reply.payload);
        const num = (k: string) => Number(new RegExp(`${k}\\s*:\\s*(\\d+)`).exec(text)![1]);
        return { watches: num('watches'), transactions: num('transactions') };
      };
      return body({ k: new Kernel(ctl.env), daemon, dom0Quota });
    });
    if (r.outcome !== 'completed') throw new Error(`run ended ${r.outcome}: ${r.error?.message}`);
    return r.value as T;
  } finally {
    await engine.close();
  }
}

/** Spawns a program that opens a handle, watches two paths, opens a transaction and then does `then`. */
async function spawnHolder(
  w: World,
  then: (proc: Process, xs: XsHandle) => Promise<number>,
): Promise<Process> {
  const p = w.k.spawn(
    async (proc: Process) => {
      const xs = new XsHandle(proc, w.k, w.daemon);
      await xs.watch('@releaseDomain', 'death');
      await xs.watch('/vm', 'vm');
      await xs.transactionStart();
      return then(proc, xs);
    },
    [],
    { name: 'xl' },
  );
  // Let it connect, watch and start its transaction.
  await w.k.env.sleep(1);
  return p;
}

describe('XsHandle connection lifetime', () => {
  test('the handle is a descriptor of its process, named after the xenstored socket', async () => {
    const v = await inWorld(async (w) => {
      const p = await spawnHolder(w, async (proc) => {
        await proc.sleep(10);
        return 0;
      });
      const fds = p.fds.list().map(([fd, f]) => ({ fd, path: f.path, describe: f.describe() }));
      await w.k.processes.waitExit(p);
      return fds;
    });
    expect(v).toEqual([{ fd: 3, path: XENSTORED_SOCKET_PATH, describe: 'xenstored socket (dom-1/xl[100])' }]);
  });

  test.each([
    ['returns from main', async () => 0, { code: 0 }],
    [
      'exit(3) early',
      async (proc: Process) => {
        proc.exit(3);
      },
      { code: 3 },
    ],
    [
      'closes the handle, then keeps running',
      async (proc: Process, xs: XsHandle) => {
        await xs.close();
        await xs.close(); // idempotent
        await proc.sleep(50);
        return 0;
      },
      { code: 0 },
    ],
  ] as const)(
    'a process that %s leaves no connection, watch or transaction behind',
    async (_n, then, status) => {
      const v = await inWorld(async (w) => {
        const base = { count: w.daemon.connectionCount, ...w.dom0Quota() };
        const p = await spawnHolder(w, then as (proc: Process, xs: XsHandle) => Promise<number>);
        const st = await w.k.processes.waitExit(p);
        return { base, after: { count: w.daemon.connectionCount, ...w.dom0Quota() }, st };
      });
      expect(v.base).toEqual({ count: 1, watches: 0, transactions: 0 });
      expect(v.after).toEqual(v.base);
      expect(v.st).toMatchObject(status);
    },
  );

  test('SIGKILL of a process waiting for a watch event drops its connection, watches and transaction', async () => {
    const v = await inWorld(async (w) => {
      const p = await spawnHolder(w, async (_proc, xs) => {
        // Drain the immediate events, then wait for good.
        await xs.readWatch({ what: 'death' });
        await xs.readWatch({ what: 'vm' });
        await xs.readWatch({ what: 'a domain to die' });
        return 0;
      });
      const during = {
        count: w.daemon.connectionCount,
        ...w.dom0Quota(),
        watches: w.daemon.listWatches().map((x) => `${x.connection}: ${x.path}`),
      };
      w.k.processes.kill(p.pid, 'SIGKILL');
      const st = await w.k.processes.waitExit(p);
      const after = { count: w.daemon.connectionCount, ...w.dom0Quota(), watches: w.daemon.listWatches() };
      return { during, after, st };
    });
    expect(v.during).toEqual({
      count: 2,
      transactions: 1,
      watches: ['xenstored socket (dom-1/xl[100]): @releaseDomain', 'xenstored socket (dom-1/xl[100]): /vm'],
    });
    expect(v.after).toEqual({ count: 1, transactions: 0, watches: [] });
    expect(v.st).toMatchObject({ signal: 'SIGKILL' });
  });

  test('after close, requests fail with EIO and no watch event is waited for', async () => {
    const v = await inWorld(async (w) => {
      let failure: unknown;
      const p = await spawnHolder(w, async (_proc, xs) => {
        await xs.close();
        try {
          await xs.read('/vm');
        } catch (e) {
          failure = e;
        }
        return xs.closed ? 0 : 1;
      });
      const st = await w.k.processes.waitExit(p);
      return { st, failure };
    });
    expect(v.st).toMatchObject({ code: 0 });
    expect(v.failure).toBeInstanceOf(XenstoreError);
    expect((v.failure as XenstoreError).code).toBe('EIO');
  });
});
