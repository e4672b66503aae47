/**
 * A guest kernel oops: logged as every kernel model logs one (emulator/kernel/oops.ts), numbered, then —
 * as a PV guest booted with panic_on_oops — "Kernel panic - not syncing: Fatal exception": the panic
 * notifier issues SCHEDOP_shutdown(SHUTDOWN_crash) and the vCPU stops; the toolstack then applies
 * on_crash. The faulting task goes no further: the returned promise never settles.
 */
import type { PoisonCorruption } from '../../drivers/busdma/guest-memory.js';
import type { Hypercalls } from '../../hypervisor/hypercall.js';
import { SHUTDOWN_crash } from '../../hypervisor/layout.js';
import { KernelOops, type KernelOopsReporter, logOops, traceOops } from '../kernel/oops.js';
import type { Env } from '../runtime/engine.js';

export function guestOopsReporter(
  env: Env,
  hc: Pick<Hypercalls, 'shutdown'>,
  component: string,
): KernelOopsReporter {
  let oopses = 0;
  return async (bug: string, detail: string): Promise<never> => {
    logOops(env, component, bug, detail, ++oopses);
    env.trace.log('kernel', 'Kernel panic - not syncing: Fatal exception');
    hc.shutdown(SHUTDOWN_crash);
    if (env.haltDomain) await env.haltDomain();
    // An engine that cannot stop the vCPU: unwind the faulting task instead.
    throw new KernelOops(bug, detail);
  };
}

/**
 * mm/page_poison.c check_poison_mem: a frame handed out again is no longer all PAGE_POISON, so someone
 * wrote it while it was free. Linux logs, dumps the bytes and the stack, and goes on; the trace gets
 * kind 'oops' so tools can find it.
 */
export function reportPoisonCorruption(env: Env, c: PoisonCorruption): void {
  const hex = [...c.bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  env.trace.log('kernel', 'pagealloc: memory corruption');
  env.trace.log(
    'kernel',
    `frame 0x${c.mfn.toString(16)} bytes 0x${c.first.toString(16)}-0x${c.last.toString(16)}: ${hex}`,
  );
  traceOops(env, 'kernel', { bug: 'pagealloc: memory corruption', mfn: c.mfn, first: c.first, last: c.last });
}
