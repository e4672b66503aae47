/**
 * The hypervisor's kicker as the machine wires it: Xen raises an upcall for a Xen domid; dom0 is engine
 * domain 0 and a guest lives in the engine domain of the slot it was booted into. A domain not booted
 * into any slot (created, not yet built) has no vCPU to interrupt: its pending bits stay in shared_info
 * and the kernel sees them when it boots and scans.
 */
import type { DomId, UpcallKicker } from '../runtime/engine.js';
import { SlotTable } from './slot-table.js';

export function machineKicker(engineKicker: UpcallKicker, slots: SlotTable): UpcallKicker {
  return {
    kick(xenDomid: DomId): void {
      if (xenDomid === 0) {
        engineKicker.kick(0);
        return;
      }
      const slot = slots.slotOf(xenDomid);
      if (slot >= 0) engineKicker.kick(SlotTable.engineDomain(slot));
    },
  };
}
