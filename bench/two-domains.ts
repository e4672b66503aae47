/**
 * The host of the two-worker benchmarks: a hypervisor with two running domains whose buffers are
 * shared with a threads engine at real time, both domains running the same bench module (its `boot`).
 */
import { registerHypervisorBuffers } from '../emulator/machine/shared-names.js';
import type { Controller } from '../emulator/runtime/engine.js';
import { createThreadsEngine } from '../emulator/runtime/threads.js';
import { Hypervisor } from '../hypervisor/hypervisor.js';

export interface TwoDomains {
  /** The bench module both workers boot. */
  module: string;
  /** Domain names, first and second. */
  names: [string, string];
  /** Further shared buffers by name. */
  shared?: Record<string, SharedArrayBuffer>;
}

/** Runs `body` on the controller with the two domids; throws when the run does not complete. */
export async function onTwoDomains<T>(
  host: TwoDomains,
  body: (ctl: Controller, a: number, b: number) => Promise<T>,
): Promise<T> {
  const hv = Hypervisor.create({ frames: 256, maxDomains: 3 });
  const d0 = hv.hypercalls(0);
  const a = d0.createDomain();
  const b = d0.createDomain();
  d0.unpauseDomain(a);
  d0.unpauseDomain(b);
  const engine = createThreadsEngine({ timeScale: 1, watchdogMs: 10_000, traceKeep: 'none' });
  try {
    registerHypervisorBuffers((name, sab) => engine.addShared(name, sab), hv.buffers);
    for (const [name, sab] of Object.entries(host.shared ?? {})) engine.addShared(name, sab);
    await engine.addDomain({ domid: a, name: host.names[0], module: host.module });
    await engine.addDomain({ domid: b, name: host.names[1], module: host.module });
    const r = await engine.run((ctl) => body(ctl, a, b));
    if (r.outcome !== 'completed') {
      throw new Error(`${host.names.join('/')} bench: ${r.outcome} ${r.error?.message ?? ''}`);
    }
    return r.value as T;
  } finally {
    await engine.close();
  }
}
