// Builds a sim host for xenbus tests: dom0 (xenstored + ring transport + dom0 xenbus) and guests.
import type { Controller, RunResult } from '../../emulator/runtime/engine.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';

const fixture = (name: string) => new URL(`./fixtures/${name}.ts`, import.meta.url).href;

export interface HostOptions {
  seed?: number;
  guests?: number[];
  guestConfig?: Record<string, unknown>;
}

export async function runHost<T>(
  body: (ctl: Controller) => Promise<T>,
  opts: HostOptions = {},
): Promise<RunResult<T>> {
  const guests = opts.guests ?? [1];
  const engine = createSimEngine({ seed: opts.seed ?? 1 });
  for (const g of guests) engine.addShared(`xs-ring-${g}`, new SharedArrayBuffer(4096));
  await engine.addDomain({ domid: 0, name: 'dom0', module: fixture('xs-dom0'), config: { guests } });
  for (const g of guests) {
    await engine.addDomain({
      domid: g,
      name: `guest${g}`,
      module: fixture('xs-guest'),
      config: opts.guestConfig,
    });
  }
  return engine.run(body);
}

/** Run and insist the run completed; returns the controller's value. */
export async function hostValue<T>(
  body: (ctl: Controller) => Promise<T>,
  opts: HostOptions = {},
): Promise<T> {
  const r = await runHost(body, opts);
  if (r.outcome !== 'completed') {
    throw new Error(`run ended ${r.outcome}: ${r.error?.message ?? JSON.stringify(r.stalls)}`);
  }
  return r.value as T;
}
