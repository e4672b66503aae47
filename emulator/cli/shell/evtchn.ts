/**
 * `evtchn [domain]`: a domain's event-channel ports (what Xen's 'e' debug key dumps): state, remote
 * end, and the pending and mask bits of the 2-level ABI in its shared_info page, plus vCPU 0's
 * evtchn_upcall_pending / upcall_mask. Read from the hypervisor's shared state; closed ports are left out.
 */
import {
  EVTCHNSTAT_closed,
  EVTCHNSTAT_interdomain,
  EVTCHNSTAT_ipi,
  EVTCHNSTAT_pirq,
  EVTCHNSTAT_unbound,
  EVTCHNSTAT_virq,
  VIRQ_CONSOLE,
  VIRQ_DEBUG,
  VIRQ_DOM_EXC,
  VIRQ_TIMER,
} from '../../../hypervisor/layout.js';
import { DF_MAX_EVTCHNS } from '../../../hypervisor/shared-state.js';
import { domainName, type MachineView } from './machine-buffers.js';

const STATUS_NAMES: Record<number, string> = {
  [EVTCHNSTAT_closed]: 'closed',
  [EVTCHNSTAT_unbound]: 'unbound',
  [EVTCHNSTAT_interdomain]: 'interdomain',
  [EVTCHNSTAT_pirq]: 'pirq',
  [EVTCHNSTAT_virq]: 'virq',
  [EVTCHNSTAT_ipi]: 'ipi',
};

const VIRQ_NAMES: Record<number, string> = {
  [VIRQ_TIMER]: 'VIRQ_TIMER',
  [VIRQ_DEBUG]: 'VIRQ_DEBUG',
  [VIRQ_CONSOLE]: 'VIRQ_CONSOLE',
  [VIRQ_DOM_EXC]: 'VIRQ_DOM_EXC',
};

export interface PortRow {
  port: number;
  state: string;
  /** "d0 port 5", "d0" (unbound: who may bind), "VIRQ_DOM_EXC", or "". */
  remote: string;
  vcpu: number;
  pending: boolean;
  masked: boolean;
}

export function portRows(view: MachineView, domid: number): PortRow[] {
  const { s, evtchn } = view.hv.internals;
  const slot = s.slotOf(domid);
  if (slot < 0) throw new Error(`evtchn: no domain d${domid} (it does not exist or is gone)`);
  const nr = s.field(slot, DF_MAX_EVTCHNS);
  const bits = evtchn.bits(slot);
  const rows: PortRow[] = [];
  // Port 0 is reserved (ECS_RESERVED) and never bound.
  for (let port = 1; port < nr; port++) {
    const st = evtchn.status(slot, domid, true, domid, port);
    if (typeof st === 'number') throw new Error(`evtchn: status of d${domid} port ${port} failed (${st})`);
    if (st.status === EVTCHNSTAT_closed) continue;
    let remote = '';
    if (st.status === EVTCHNSTAT_interdomain) remote = `d${st.dom} port ${st.port}`;
    else if (st.status === EVTCHNSTAT_unbound) remote = `d${st.dom}`;
    else if (st.status === EVTCHNSTAT_virq) remote = VIRQ_NAMES[st.virq!] ?? `VIRQ ${st.virq}`;
    rows.push({
      port,
      state: STATUS_NAMES[st.status] ?? String(st.status),
      remote,
      vcpu: st.vcpu,
      pending: bits.isPending(port),
      masked: bits.isMasked(port),
    });
  }
  return rows;
}

export function evtchnLines(view: MachineView, domid: number): string[] {
  const { s, evtchn } = view.hv.internals;
  const rows = portRows(view, domid);
  const bits = evtchn.bits(s.slotOf(domid));
  const info = view.hv.domainInfo(domid);
  const lines = [
    `${domainName(view, domid)} (d${domid}${info?.dying ? ', dying' : ''}): ${rows.length} port(s) bound, ` +
      `${bits.layout.abi} shared_info, vcpu0 upcall_pending=${bits.upcallPending(0)} upcall_mask=${bits.upcallMask(0)}`,
  ];
  if (rows.length > 0) {
    lines.push('  port  state        remote            vcpu  pending  masked');
    for (const r of rows) {
      lines.push(
        `  ${String(r.port).padStart(4)}  ${r.state.padEnd(11)}  ${r.remote.padEnd(16)}  ${String(r.vcpu).padStart(4)}  ${r.pending ? '1' : '0'}        ${r.masked ? '1' : '0'}`,
      );
    }
  }
  return lines;
}

export function allEvtchnLines(view: MachineView): string[] {
  const out: string[] = [];
  for (const d of view.hv.domains().sort((a, b) => a.domid - b.domid))
    out.push(...evtchnLines(view, d.domid));
  return out;
}
