// Runs a busdma test body in the sim engine's controller task, with a host and one guest kernel's
// grant table and page allocator bound to that task's Env.
import { GuestMemory } from '../../drivers/busdma/guest-memory.js';
import { GrantTable } from '../../drivers/grant-table.js';
import type { Env, RunResult } from '../../emulator/runtime/engine.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import type { Hypercalls } from '../../hypervisor/index.js';
import { type Host, makeHost } from '../hypervisor/fixture.js';

export interface GuestSide {
  env: Env;
  host: Host;
  domid: number;
  hc: Hypercalls;
  gnttab: GrantTable;
  memory: GuestMemory;
}

export async function runGuest<T>(
  body: (g: GuestSide) => Promise<T>,
  opts: { seed?: number; maxGrantFrames?: number } = {},
): Promise<RunResult<T>> {
  const engine = createSimEngine({ seed: opts.seed ?? 7 });
  try {
    return await engine.run(async (ctl) => {
      const host = makeHost({ frames: 2048 });
      const { domid, hc } = host.guest({ maxGrantFrames: opts.maxGrantFrames ?? 1 });
      const gnttab = new GrantTable(hc, { env: ctl.env });
      const memory = new GuestMemory(hc);
      return body({ env: ctl.env, host, domid, hc, gnttab, memory });
    });
  } finally {
    await engine.close();
  }
}

export async function guestValue<T>(
  body: (g: GuestSide) => Promise<T>,
  opts: { seed?: number; maxGrantFrames?: number } = {},
): Promise<{ value: T; result: RunResult<T> }> {
  const result = await runGuest(body, opts);
  if (result.outcome !== 'completed') {
    throw new Error(`run ended ${result.outcome}: ${result.error?.stack ?? JSON.stringify(result.stalls)}`);
  }
  return { value: result.value as T, result };
}
