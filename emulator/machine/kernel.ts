/**
 * What a kernel booted into a guest slot gets and gives back. The slot (slot.ts) owns the engine
 * domain's real upcall handler; the kernel sees an Env whose `onUpcall` registers with the slot, so a
 * later boot into the same slot can register again after a halt.
 */
import type { Hypercalls } from '../../hypervisor/hypercall.js';
import type { Hypervisor } from '../../hypervisor/hypervisor.js';
import type { Env, HolderDirectory, UpcallKicker } from '../runtime/engine.js';
import type { MachineBlkfrontParams, MachineVersions } from './config.js';
import type { BootStore } from './slot-table.js';

export interface KernelContext {
  /** The runtime, with onUpcall routed through the slot. */
  env: Env;
  /** The Xen domid this kernel was booted as. */
  domid: number;
  name: string;
  hc: Hypercalls;
  hv: Hypervisor;
  /** Kicks by Xen domid. */
  kicker: UpcallKicker;
  holders: HolderDirectory;
  versions: MachineVersions;
  /** blkfront module parameters of this guest (machine config `guests[].blkfront`). */
  blkfront?: MachineBlkfrontParams;
  /** The start_info store fields (mfn 0: no xenstore ring). */
  store: BootStore;
}

// biome-ignore lint/suspicious/noExplicitAny: methods of any shape, checked by the callers
export type KernelMethods = Record<string, (...args: any[]) => Promise<unknown>>;

export interface KernelInstance {
  methods: KernelMethods;
}

export type KernelBoot = (k: KernelContext) => Promise<KernelInstance>;

/** Tasks of the slot itself (its controller methods), which survive a halt of the kernel. */
export const FIRMWARE_TASKS: readonly string[] = ['status', 'waitBooted'];

/**
 * An Env that forwards everything to `env` except onUpcall, which goes to `register`, and haltDomain,
 * which goes to `halt` (the slot's bookkeeping, then the engine's halt).
 */
export function kernelEnv(env: Env, register: (handler: () => void) => void, halt: () => Promise<void>): Env {
  return {
    get domid() {
      return env.domid;
    },
    engine: env.engine,
    trace: env.trace,
    now: () => env.now(),
    spawn: (name, body, options) => {
      if (FIRMWARE_TASKS.includes(name)) throw new Error(`kernel: task name "${name}" is the slot's own`);
      return env.spawn(name, body, options);
    },
    current: () => env.current(),
    waitQueue: (name) => env.waitQueue(name),
    wait: (q, cond, options) => env.wait(q, cond, options),
    sleep: (ms, options) => env.sleep(ms, options),
    yield: () => env.yield(),
    mutex: (name) => env.mutex(name),
    onUpcall: register,
    random: () => env.random(),
    haltDomain: () => halt(),
    setHaltOnFailure: () => {
      throw new Error('kernel: the slot decides when a failure means the domain died');
    },
  };
}
