// A sim host for blkback tests: a hypervisor with dom0 (xenstored, kernel, image disk, backend bus,
// blkback) and guests running a test-only frontend peer built from the real ring/blkif/xenbus code.
import { createEngine } from '../../emulator/runtime/create-engine.js';
import type { Controller, RunResult } from '../../emulator/runtime/engine.js';
import { Hypervisor } from '../../hypervisor/index.js';
import { shareXsRings } from '../fixtures/dom0-xenstore.js';
import { shareHypervisor } from '../fixtures/hv.js';
import type { Dom0Config } from './fixtures/dom0.js';

const fixture = (name: string) => new URL(`./fixtures/${name}.ts`, import.meta.url).href;

export interface HostOptions {
  seed?: number;
  guests?: number;
  dom0?: Partial<Omit<Dom0Config, 'guests'>>;
  maxSteps?: number;
}

export async function runHost<T>(
  body: (ctl: Controller) => Promise<T>,
  opts: HostOptions = {},
): Promise<RunResult<T>> {
  const hv = Hypervisor.create({ frames: 4096, maxDomains: 4 });
  const d0 = hv.hypercalls(0);
  const guests: number[] = [];
  for (let i = 0; i < (opts.guests ?? 1); i++) {
    const domid = d0.createDomain({ maxGrantFrames: 4 });
    if (domid < 0) throw new Error(`createDomain: ${domid}`);
    if (d0.unpauseDomain(domid) !== 0) throw new Error('unpause failed');
    guests.push(domid);
  }
  const engine = createEngine('sim', { seed: opts.seed ?? 1, maxSteps: opts.maxSteps });
  try {
    shareHypervisor(engine, hv);
    shareXsRings(engine, guests);
    const cfg: Dom0Config = { guests, ...opts.dom0 };
    await engine.addDomain({ domid: 0, name: 'dom0', module: fixture('dom0'), config: cfg });
    for (const g of guests)
      await engine.addDomain({ domid: g, name: `guest${g}`, module: fixture('frontend') });
    return await engine.run(body);
  } finally {
    await engine.close();
  }
}

export async function hostValue<T>(
  body: (ctl: Controller) => Promise<T>,
  opts: HostOptions = {},
): Promise<RunResult<T>> {
  const r = await runHost(body, opts);
  if (r.outcome !== 'completed') {
    throw new Error(
      `run ended ${r.outcome}: ${r.error?.stack ?? r.error?.message} ${JSON.stringify(r.stalls)}\n${(r.dmesg[0] ?? []).join('\n')}`,
    );
  }
  return r;
}

export const BE = (fe: number, devid = 51712) => `/local/domain/0/backend/vbd/${fe}/${devid}`;
export const FE = (fe: number, devid = 51712) => `/local/domain/${fe}/device/vbd/${devid}`;
