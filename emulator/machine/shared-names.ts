/** Names of the shared buffers a machine registers with its engine. */
import type { HypervisorBuffers } from '../../hypervisor/shared-state.js';

export const SLOTS_SHARED = 'machine.slots';
const HV_PREFIX = 'hv.';

export function registerHypervisorBuffers(
  add: (name: string, sab: SharedArrayBuffer) => void,
  b: HypervisorBuffers,
): void {
  for (const [k, v] of Object.entries(b)) add(HV_PREFIX + k, v);
}

export function hypervisorBuffers(shared: Record<string, SharedArrayBuffer>): HypervisorBuffers {
  const out: Record<string, SharedArrayBuffer> = {};
  for (const [k, v] of Object.entries(shared))
    if (k.startsWith(HV_PREFIX)) out[k.slice(HV_PREFIX.length)] = v;
  if (!out.memory || !out.frames || !out.control || !out.domains) {
    throw new Error(
      `machine: hypervisor buffers missing from the engine's shared memory (have ${Object.keys(shared).join(', ')})`,
    );
  }
  return out as HypervisorBuffers;
}
