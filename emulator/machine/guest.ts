/**
 * The PV guest kernel booted into a slot. With the store ring the domain builder set up (start info
 * store fields), it is the full guest (emulator/guest/kernel.ts): grant table, event channels, xenstore
 * over its ring with xenwatch, the frontend bus with blkfront, the block layer and the workload; it
 * watches control/shutdown and shuts down in order (frontend bus shutdown, then SCHEDOP_shutdown).
 * Without a store ring (a domain built without libxl) only shutdown and crash work.
 *
 * Controller methods take the scenario's guest action objects (model.ts GuestAction).
 */
import { GuestEvents } from '../../drivers/events.js';
import { GrantTable } from '../../drivers/grant-table.js';
import { XenbusState } from '../../drivers/xenbus/state.js';
import { SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot } from '../../hypervisor/layout.js';
import type { DiskHandle } from '../guest/block-layer.js';
import { GuestKernel } from '../guest/kernel.js';
import type { Pattern } from '../guest/pattern.js';
import type { KernelContext, KernelInstance } from './kernel.js';

interface DiskAction {
  disk: string;
  offset?: number;
  length?: number;
  pattern?: Pattern;
  verify?: Pattern | boolean;
  rw?: 'read' | 'write' | 'randread' | 'randwrite' | 'rw' | 'randrw';
  bs?: number;
  iodepth?: number;
  size?: number;
  count?: number;
  duration?: number;
}

const SHUTDOWN_REASONS: Record<string, number> = {
  poweroff: SHUTDOWN_poweroff,
  halt: SHUTDOWN_poweroff,
  reboot: SHUTDOWN_reboot,
  crash: SHUTDOWN_crash,
};

/** xenbus_probe_frontend.c wait_for_devices: at most 30 s, polled every HZ/10, a warning each 5 s. */
const DEVICE_WAIT_MAX_S = 30;
const DEVICE_WAIT_POLL_MS = 100;

/**
 * Before init runs, the guest kernel waits for its frontend devices to connect (Linux's
 * wait_for_devices: a device with a driver is connecting while its state is below Connected).
 */
async function waitForDevices(env: KernelContext['env'], guest: GuestKernel): Promise<void> {
  const start = env.now();
  let waited = 0;
  let line = '';
  const connecting = () =>
    guest.bus.devices().filter((d) => d.driver !== undefined && d.state < XenbusState.Connected);
  while (connecting().length > 0) {
    if (env.now() - start >= (waited + 5) * 1000) {
      if (waited === 0) line = 'xenbus_probe_frontend: Waiting for devices to initialise: ';
      waited += 5;
      line += `${DEVICE_WAIT_MAX_S - waited}s...`;
      if (waited === DEVICE_WAIT_MAX_S) break;
    }
    await env.sleep(DEVICE_WAIT_POLL_MS, { what: 'frontend devices to connect (wait_for_devices)' });
  }
  if (line !== '') env.trace.log('xenbus', line);
  for (const d of connecting()) {
    env.trace.log(
      'xenbus',
      `xenbus_probe_frontend: Device with no driver or not connected: ${d.nodename} (state ${d.state})`,
    );
  }
}

export async function bootPvGuest(k: KernelContext): Promise<KernelInstance> {
  const { env, hc } = k;
  const gnttab = new GrantTable(hc, { env });
  const events = new GuestEvents(hc, { env });
  env.trace.log('kernel', `Booting paravirtualized kernel on Xen as d${k.domid} (${k.name})`);
  let guest: GuestKernel | undefined;
  if (k.store.mfn > 0) {
    const storePort = k.store.evtchn;
    guest = new GuestKernel({
      env,
      hc,
      gnttab,
      events,
      xenstore: {
        page: hc.page(k.store.mfn),
        notify: () => events.notify(storePort),
        server: k.holders.ref('dom0/xenstored'),
      },
      blkfront: {
        ...k.blkfront,
        version: k.versions.blkfront,
        grantRevoke: k.versions.blkfrontGrantRevoke,
        connect: k.versions.blkfrontConnect,
      },
    });
    // The store port is the guest's own end (allocated unbound for dom0 by the builder): unmask it
    // so xenstored's notifications raise this domain's upcall.
    events.bind(storePort, () => {});
    await guest.start();
    await waitForDevices(env, guest);
  } else {
    events.attach(env);
  }
  let stopping = false;

  /** SCHEDOP_shutdown from a task of its own (after closing the frontends), then the vCPU stops. */
  const stop = (reason: number, why: string, orderly: boolean): { requested: string } => {
    if (stopping) return { requested: why };
    stopping = true;
    env.spawn('poweroff', async () => {
      env.trace.log('kernel', why);
      if (orderly && guest !== undefined) await guest.shutdown();
      hc.shutdown(reason);
      await env.haltDomain!();
    });
    return { requested: why };
  };

  if (guest !== undefined) {
    const g = guest;
    // The toolstack asks for a shutdown through control/shutdown (xl shutdown); the kernel acknowledges
    // by clearing the node, then shuts down in order.
    await g.xs.watch('control/shutdown', async () => {
      const what = await g.xs.tryRead('control/shutdown');
      if (what === undefined || what === '') return;
      const reason = SHUTDOWN_REASONS[what];
      if (reason === undefined) {
        env.trace.log('kernel', `Ignoring shutdown request: ${what}`);
        return;
      }
      await g.xs.write('control/shutdown', '');
      stop(reason, `shutdown requested by the toolstack: ${what}`, true);
    });
  }

  const needGuest = (op: string): GuestKernel => {
    if (guest === undefined) {
      throw new Error(
        `guest ${k.name}: ${op} needs xenstore and blkfront; this domain was built without a store ring`,
      );
    }
    return guest;
  };
  const open = new Map<string, DiskHandle>();
  /** The disk's open handle, or a temporary one for this operation. */
  const withDisk = async <T>(
    op: string,
    disk: string,
    write: boolean,
    fn: (h: DiskHandle) => Promise<T>,
  ): Promise<T> => {
    const g = needGuest(op);
    const kept = open.get(disk);
    if (kept !== undefined) return fn(kept);
    const h = await g.disks.open(disk, op, { write });
    try {
      return await fn(h);
    } finally {
      await g.disks.close(h.id);
    }
  };
  const check = <T extends { error: string | undefined; mismatchAt?: number }>(
    op: string,
    a: DiskAction,
    r: T,
  ): T => {
    if (r.error !== undefined) throw new Error(`${op} ${a.disk}: ${r.error}`);
    if (r.mismatchAt !== undefined && r.mismatchAt >= 0) {
      throw new Error(`${op} ${a.disk}: data differs from the pattern at byte ${r.mismatchAt}`);
    }
    return r;
  };

  return {
    methods: {
      async open(a: DiskAction) {
        const g = needGuest('open');
        if (open.has(a.disk)) throw new Error(`open ${a.disk}: already open`);
        open.set(a.disk, await g.disks.open(a.disk, 'scenario', { write: true }));
      },
      async close(a: DiskAction) {
        const g = needGuest('close');
        const h = open.get(a.disk);
        if (h === undefined) throw new Error(`close ${a.disk}: not open`);
        open.delete(a.disk);
        await g.disks.close(h.id);
      },
      async write(a: DiskAction) {
        return withDisk('write', a.disk, true, async (h) => {
          const r = await needGuest('write').workload.write(h, a.offset!, a.length!, a.pattern!);
          return check('write', a, r);
        });
      },
      async read(a: DiskAction) {
        return withDisk('read', a.disk, false, async (h) => {
          const verify = typeof a.verify === 'object' ? a.verify : undefined;
          const r = await needGuest('read').workload.read(h, a.offset!, a.length!, verify);
          const { data: _data, ...rest } = check('read', a, r);
          return rest;
        });
      },
      async flush(a: DiskAction) {
        return withDisk('flush', a.disk, true, async (h) =>
          check('flush', a, await needGuest('flush').workload.flush(h)),
        );
      },
      async discard(a: DiskAction) {
        return withDisk('discard', a.disk, true, async (h) =>
          check('discard', a, await needGuest('discard').workload.discard(h, a.offset!, a.length!)),
        );
      },
      async fio(a: DiskAction) {
        if (a.rw === 'rw' || a.rw === 'randrw') {
          throw new Error(`not implemented: fio rw=${a.rw} (the guest workload runs read or write jobs)`);
        }
        const rw = a.rw ?? 'read';
        return withDisk('fio', a.disk, rw.includes('write'), async (h) =>
          needGuest('fio').workload.runJob(h, {
            rw,
            bs: a.bs!,
            iodepth: a.iodepth ?? 1,
            ...(a.count !== undefined ? { count: a.count } : {}),
            ...(a.duration !== undefined ? { durationMs: a.duration } : {}),
            ...(a.size !== undefined ? { size: a.size } : {}),
            // Scenario fio steps name no pattern: seq; API callers may pass one (a random fill makes a
            // read from the wrong offset visible, which seq's 256-byte period hides).
            pattern: a.pattern ?? { kind: 'seq' },
            verify: a.verify === true,
          }),
        );
      },
      /** The scenario's `wait: { guest, device }`: true once the disk is there, false on timeout. */
      async waitDevice(disk: string, timeout?: number) {
        return (await needGuest('wait for a device').waitDevice(disk, timeout)) === 'ok';
      },
      /** The scenario's `wait: { guest, no-device }`: true once the device is gone, false on timeout. */
      async waitNoDevice(disk: string, timeout?: number) {
        return (await needGuest('wait for no device').waitNoDevice(disk, timeout)) === 'ok';
      },
      async shutdown() {
        return stop(SHUTDOWN_poweroff, 'reboot: Power down', true);
      },
      async crash() {
        return stop(SHUTDOWN_crash, 'Kernel panic - not syncing: crash requested by the scenario', false);
      },
    },
  };
}
