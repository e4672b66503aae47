/**
 * The PV guest kernel booted into a slot: its grant table and event channels over its own start info,
 * orderly shutdown and crash through SCHEDOP_shutdown, and the block workload API.
 *
 * Not wired yet (each operation says what it waits for): the xenstore ring (the libxl domain builder in
 * emulator/toolstack/libxl/ provides the store page and port), the frontend bus with blkfront
 * (drivers/blkfront/) and the guest block layer and workload (emulator/guest/).
 */
import { GuestEvents } from '../../drivers/events.js';
import { GrantTable } from '../../drivers/grant-table.js';
import { SHUTDOWN_crash, SHUTDOWN_poweroff } from '../../hypervisor/layout.js';
import type { KernelContext, KernelInstance } from './kernel.js';

const WORKLOAD_PENDING = 'waiting for drivers/blkfront/ and emulator/guest/';

export async function bootPvGuest(k: KernelContext): Promise<KernelInstance> {
  const { env, hc } = k;
  const gt = new GrantTable(hc, { env });
  const events = new GuestEvents(hc);
  events.attach(env);
  env.trace.log('kernel', `Booting paravirtualized kernel on Xen as d${k.domid} (${k.name})`);
  env.trace.log('kernel', `Grant table initialized (${gt.nrGrantFrames} frame(s))`);

  /** SCHEDOP_shutdown from a task of its own, then this vCPU never runs again; the caller returns. */
  const stop = async (reason: number, why: string): Promise<{ requested: string }> => {
    env.spawn('poweroff', async () => {
      env.trace.log('kernel', why);
      hc.shutdown(reason);
      await env.haltDomain!();
    });
    return { requested: why };
  };

  const workload = (op: string) => async (): Promise<never> => {
    throw new Error(`not implemented: guest ${op} (${WORKLOAD_PENDING})`);
  };

  return {
    methods: {
      write: workload('write'),
      read: workload('read'),
      flush: workload('flush'),
      discard: workload('discard'),
      fio: workload('fio'),
      open: workload('open'),
      close: workload('close'),
      // Orderly shutdown would first close the frontends (xenbus_frontend_dev_shutdown); no frontend
      // bus runs yet (no xenstore ring), so there is nothing to close before SCHEDOP_shutdown.
      shutdown: () => stop(SHUTDOWN_poweroff, 'reboot: Power down'),
      crash: () => stop(SHUTDOWN_crash, 'Kernel panic - not syncing: crash requested by the scenario'),
    },
  };
}
