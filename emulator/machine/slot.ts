/**
 * The program of a guest slot's engine domain (see slot-table.ts). It owns the domain's upcall
 * handler, the vCPU's one entry point:
 * - no kernel and a boot request in the table: spawn the kernel's boot task;
 * - a kernel whose Xen domain is shut down, dying or gone: halt every kernel task (the vCPU stopped);
 * - otherwise: run the kernel's registered upcall handler (its event-channel scan).
 * Hypercalls that fail with ESRCH because the domain died under a task also halt it (halt-on-failure),
 * since in Xen a destroyed domain's vCPUs never run again.
 */
import { XenError } from '../../hypervisor/errno.js';
import { Hypervisor } from '../../hypervisor/hypervisor.js';
import type { DomainContext, DomainProgram } from '../runtime/engine.js';
import { GUEST_ACTIONS } from '../scenario/model.js';
import type { DomainBootConfig } from './config.js';
import { bootHelloPing, bootHelloPong } from './demo/hello-grant.js';
import { bootPvGuest } from './guest.js';
import { FIRMWARE_TASKS, type KernelBoot, type KernelInstance, kernelEnv } from './kernel.js';
import { machineKicker } from './machine-kicker.js';
import { hypervisorBuffers, SLOTS_SHARED } from './shared-names.js';
import { type KernelName, SLOT_BOOT, SLOT_RUNNING, SlotTable } from './slot-table.js';

const ESRCH = 3;

const BOOTS: Record<KernelName, KernelBoot> = {
  'pv-guest': bootPvGuest,
  'hello-ping': bootHelloPing,
  'hello-pong': bootHelloPong,
};

/** Methods the controller may call; each forwards to the running kernel: every guest action of the
 *  scenario language, the guest waits (`wait: { guest, device | no-device }`), and the hello-grant
 *  demo's steps. */
export const SLOT_FORWARDED: readonly string[] = [
  ...GUEST_ACTIONS,
  'waitDevice',
  'waitNoDevice',
  'offer',
  'accept',
  'exchange',
  'finish',
];

export function boot(ctx: DomainContext): DomainProgram {
  const { env } = ctx;
  const cfg = ctx.config as DomainBootConfig;
  const slot = cfg.slot;
  const guest = cfg.machine.guests[slot];
  const slots = new SlotTable(ctx.shared[SLOTS_SHARED]);
  const kicker = machineKicker(ctx.kicker, slots);
  const hv = Hypervisor.attach(hypervisorBuffers(ctx.shared), kicker);
  let kernel: KernelInstance | undefined;
  let kernelUpcall: (() => void) | undefined;
  let booting = false;
  let domid = 0;
  let generation = 0;
  const bootedQ = env.waitQueue('slot boot');

  const dead = (): boolean => {
    const info = hv.domainInfo(domid);
    return info === undefined || info.dying || info.shutdown;
  };
  env.setHaltOnFailure?.(
    (e) => {
      if (!(e instanceof XenError && e.errno === -ESRCH && kernel !== undefined && dead())) return false;
      env.trace.emit('machine', 'halt', { slot, domid, generation, why: 'hypercall from a dead domain' });
      kernel = undefined;
      kernelUpcall = undefined;
      booting = false;
      slots.markHalted(slot);
      return true;
    },
    (t) => FIRMWARE_TASKS.includes(t.name),
  );

  const halt = (why: string): Promise<void> => {
    env.trace.emit('machine', 'halt', { slot, domid, generation, why });
    kernel = undefined;
    kernelUpcall = undefined;
    booting = false;
    slots.markHalted(slot);
    bootedQ.wakeAll();
    if (env.haltDomain === undefined) throw new Error('machine: this engine cannot halt a domain');
    return env.haltDomain((t) => FIRMWARE_TASKS.includes(t.name));
  };

  env.onUpcall(() => {
    const info = slots.info(slot);
    if ((kernel !== undefined || booting) && info.generation === generation && dead()) {
      void halt(hv.domainInfo(domid) === undefined ? 'domain gone' : 'domain shut down or dying');
      return;
    }
    if (kernel === undefined && !booting && info.state === SLOT_BOOT) {
      booting = true;
      domid = info.domid;
      generation = info.generation;
      slots.markRunning(slot);
      env.trace.emit('machine', 'boot', { slot, domid, generation, kernel: info.kernel });
      const gen = generation;
      env.spawn(
        'boot',
        async () => {
          const instance = await BOOTS[info.kernel]({
            env: kernelEnv(
              env,
              (h) => {
                if (kernelUpcall !== undefined)
                  throw new Error(`d${domid}: the kernel's upcall handler is already set`);
                kernelUpcall = h;
              },
              () => halt('the kernel stopped its vCPU'),
            ),
            domid,
            name: guest.name,
            hc: hv.hypercalls(domid),
            hv,
            kicker,
            holders: ctx.holders,
            versions: cfg.machine.versions,
            ...(guest.blkfront ? { blkfront: guest.blkfront } : {}),
            store: info.store,
          });
          if (gen !== generation) return;
          kernel = instance;
          booting = false;
          bootedQ.wakeAll();
          // Events sent before the kernel bound its handler are pending in shared_info: scan once.
          kernelUpcall?.();
        },
        { component: 'boot' },
      );
      return;
    }
    if (info.state === SLOT_RUNNING && info.generation === generation) kernelUpcall?.();
  });

  const program: DomainProgram = {
    /** Wait until a kernel of generation > `after` has booted; returns its Xen domid. */
    async waitBooted(after = 0): Promise<number> {
      await env.wait(bootedQ, () => kernel !== undefined && generation > after, {
        what: `a kernel to boot in the slot of ${guest.name}`,
      });
      return domid;
    },
    async status() {
      const info = slots.info(slot);
      return { ...info, name: guest.name, booted: kernel !== undefined };
    },
  };
  /** A boot was requested (the kick may still be on its way) or is running. */
  const bootPending = (): boolean => booting || slots.info(slot).state === SLOT_BOOT;
  for (const m of SLOT_FORWARDED) {
    program[m] = async (...args: unknown[]) => {
      // A guest's init runs once its kernel has booted (after xenbus waited for its devices).
      if (kernel === undefined && bootPending()) {
        await env.wait(bootedQ, () => kernel !== undefined || !bootPending(), {
          what: `the kernel of ${guest.name} to finish booting`,
        });
      }
      const k = kernel;
      if (k === undefined) {
        throw new Error(
          `guest ${guest.name}: no kernel is running in its slot (${slots.info(slot).stateName})`,
        );
      }
      const fn = k.methods[m];
      if (fn === undefined) throw new Error(`guest ${guest.name}: its kernel has no '${m}' operation`);
      return fn(...args);
    };
  }
  return program;
}
