/**
 * The shared memory of a built machine, read from the shell's own thread: the hypervisor's buffers
 * (grant tables, event channels, domains) and the guest slot table, as `Machine.shared` hands them
 * out in both engines. Reading only: the shell never writes hypervisor state.
 */
import { Hypervisor } from '../../../hypervisor/hypervisor.js';
import type { HypervisorBuffers } from '../../../hypervisor/shared-state.js';
import type { Machine } from '../../machine/machine.js';
import { hypervisorBuffers, SLOTS_SHARED } from '../../machine/shared-names.js';
import { SlotTable } from '../../machine/slot-table.js';

export interface MachineView {
  hv: Hypervisor;
  buffers: HypervisorBuffers;
  slots: SlotTable;
  /** Guest names by slot index, from the host config. */
  guestNames: readonly string[];
}

export function machineView(machine: Machine): MachineView {
  const shared = machine.shared;
  const slots = shared[SLOTS_SHARED];
  if (slots === undefined) throw new Error(`shell: the machine has no ${SLOTS_SHARED} buffer`);
  const buffers = hypervisorBuffers(shared);
  return {
    hv: Hypervisor.attach(buffers),
    buffers,
    slots: new SlotTable(slots),
    guestNames: machine.config.guests.map((g) => g.name),
  };
}

/** The Xen domid a name stands for: a number, "Domain-0"/"dom0", or a guest's latest domid. */
export function resolveDomain(view: MachineView, name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  if (name === 'Domain-0' || name === 'dom0') return 0;
  const i = view.guestNames.indexOf(name);
  if (i < 0) {
    throw new Error(
      `no domain "${name}" (give a domid, Domain-0, or a guest: ${view.guestNames.join(', ') || 'none'})`,
    );
  }
  const info = view.slots.info(i);
  if (info.stateName === 'empty' && info.generation === 0) {
    throw new Error(`guest ${name} has not been created yet (xl create /etc/xen/${name}.cfg)`);
  }
  return info.domid;
}

/** Name of a Xen domain for listings: Domain-0, the guest booted with that domid, or d<N>. */
export function domainName(view: MachineView, domid: number): string {
  if (domid === 0) return 'Domain-0';
  for (let i = 0; i < view.slots.count; i++) {
    const info = view.slots.info(i);
    if (info.domid === domid && info.generation > 0) return view.guestNames[i];
  }
  return `d${domid}`;
}
