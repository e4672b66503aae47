/**
 * `grants [domain]`: the grant entries a domain has in use and the foreign grants it maps, read from
 * the hypervisor's shared state (what Xen's 'g' debug key dumps). A grant entry is in use when its
 * type is not GTF_invalid; a maptrack handle is in use when its GNTMAP flags are non-zero.
 */
import {
  GNTMAP_application_map,
  GNTMAP_contains_pte,
  GNTMAP_device_map,
  GNTMAP_host_map,
  GNTMAP_readonly,
  GRANT_ENTRIES_PER_FRAME,
  GRANT_ENTRY_V1_SIZE,
  GTF_accept_transfer,
  GTF_invalid,
  GTF_PAT,
  GTF_PCD,
  GTF_PWT,
  GTF_permit_access,
  GTF_reading,
  GTF_readonly,
  GTF_sub_page,
  GTF_transitive,
  GTF_type_mask,
  GTF_writing,
  MAPTRACK_ENTRY_SIZE,
  MAPTRACK_PER_FRAME,
  PAGE_SIZE,
} from '../../../hypervisor/layout.js';
import { domainName, type MachineView } from './machine-buffers.js';

const GTF_TYPES: Record<number, string> = {
  [GTF_invalid]: 'invalid',
  [GTF_permit_access]: 'permit_access',
  [GTF_accept_transfer]: 'accept_transfer',
  [GTF_transitive]: 'transitive',
};

const GTF_BITS: readonly [number, string][] = [
  [GTF_readonly, 'readonly'],
  [GTF_reading, 'reading'],
  [GTF_writing, 'writing'],
  [GTF_PWT, 'PWT'],
  [GTF_PCD, 'PCD'],
  [GTF_PAT, 'PAT'],
  [GTF_sub_page, 'sub_page'],
];

const GNTMAP_BITS: readonly [number, string][] = [
  [GNTMAP_device_map, 'device_map'],
  [GNTMAP_host_map, 'host_map'],
  [GNTMAP_readonly, 'readonly'],
  [GNTMAP_application_map, 'application_map'],
  [GNTMAP_contains_pte, 'contains_pte'],
];

/** GTF_* names of a grant entry's flags word: the type, then each set bit ("permit_access|reading"). */
export function gtfNames(flags: number): string {
  const names = [GTF_TYPES[flags & GTF_type_mask]];
  for (const [bit, name] of GTF_BITS) if (flags & bit) names.push(name);
  const known = GTF_type_mask | GTF_BITS.reduce((a, [b]) => a | b, 0);
  if (flags & ~known & 0xffff) names.push(`0x${(flags & ~known & 0xffff).toString(16)}`);
  return names.join('|');
}

/** GNTMAP_* names of a maptrack entry's flags. */
export function gntmapNames(flags: number): string {
  const names: string[] = [];
  for (const [bit, name] of GNTMAP_BITS) if (flags & bit) names.push(name);
  return names.join('|') || '0';
}

export interface GrantRow {
  ref: number;
  flags: number;
  domid: number;
  frame: number;
  /** Active entry pin word (GNTPIN_* counts), 0 when nobody maps or copies it. */
  pin: number;
}

export interface MaptrackRow {
  handle: number;
  ref: number;
  flags: number;
  domid: number;
}

/** Grant entries of `domid` whose type is not GTF_invalid. */
export function grantRows(view: MachineView, domid: number): GrantRow[] {
  const { s, grants } = view.hv.internals;
  const slot = s.slotOf(domid);
  if (slot < 0) throw new Error(`grants: no domain d${domid} (it does not exist or is gone)`);
  const rows: GrantRow[] = [];
  const n = grants.nrEntries(slot);
  for (let ref = 0; ref < n; ref++) {
    const mfn = grants.grantFrame(slot, Math.floor(ref / GRANT_ENTRIES_PER_FRAME));
    const off = mfn * PAGE_SIZE + (ref % GRANT_ENTRIES_PER_FRAME) * GRANT_ENTRY_V1_SIZE;
    const flags = Atomics.load(s.mem16, off >>> 1);
    if ((flags & GTF_type_mask) === GTF_invalid) continue;
    rows.push({
      ref,
      flags,
      domid: Atomics.load(s.mem16, (off + 2) >>> 1),
      frame: Atomics.load(s.mem32, (off + 4) >>> 2) >>> 0,
      pin: grants.activePin(slot, ref),
    });
  }
  return rows;
}

/** Foreign grants `domid` maps (its maptrack handles in use). */
export function maptrackRows(view: MachineView, domid: number): MaptrackRow[] {
  const { s, grants } = view.hv.internals;
  const slot = s.slotOf(domid);
  if (slot < 0) throw new Error(`grants: no domain d${domid} (it does not exist or is gone)`);
  const rows: MaptrackRow[] = [];
  const limit = grants.maptrackLimit(slot);
  for (let handle = 0; handle < limit; handle++) {
    const mfn = s.dom[s.base(slot) + s.maptrackListAt + Math.floor(handle / MAPTRACK_PER_FRAME)];
    const off = mfn * PAGE_SIZE + (handle % MAPTRACK_PER_FRAME) * MAPTRACK_ENTRY_SIZE;
    const flags = Atomics.load(s.mem16, (off + 4) >>> 1);
    if (flags === 0) continue;
    rows.push({
      handle,
      ref: s.mem32[off >>> 2] >>> 0,
      flags,
      domid: Atomics.load(s.mem16, (off + 6) >>> 1),
    });
  }
  return rows;
}

function pinText(pin: number): string {
  if (pin === 0) return '-';
  const parts: string[] = [];
  const add = (name: string, shift: number) => {
    const c = (pin >>> shift) & 0xff;
    if (c) parts.push(`${name}=${c}`);
  };
  add('hstw', 0);
  add('hstr', 8);
  add('devw', 16);
  add('devr', 24);
  return parts.join(',');
}

/** Lines for one domain: its grant entries in use, then the grants it maps. */
export function grantLines(view: MachineView, domid: number): string[] {
  const name = domainName(view, domid);
  const info = view.hv.domainInfo(domid);
  const rows = grantRows(view, domid);
  const maps = maptrackRows(view, domid);
  const lines = [
    `${name} (d${domid}${info?.dying ? ', dying' : ''}): ${rows.length} grant entr${rows.length === 1 ? 'y' : 'ies'} in use, ${info?.nrGrantFrames ?? 0} grant frame(s)`,
  ];
  if (rows.length > 0) {
    lines.push('   ref  domid    frame  flags                              pin');
    for (const r of rows) {
      lines.push(
        `${String(r.ref).padStart(6)}  ${String(r.domid).padStart(5)}  ${String(r.frame).padStart(7)}  ${gtfNames(r.flags).padEnd(33)}  ${pinText(r.pin)}`,
      );
    }
  }
  if (maps.length > 0) {
    lines.push(`  maps ${maps.length} foreign grant(s):`);
    lines.push('  handle  domid    ref  flags');
    for (const m of maps) {
      lines.push(
        `  ${String(m.handle).padStart(6)}  ${String(m.domid).padStart(5)}  ${String(m.ref).padStart(5)}  ${gntmapNames(m.flags)}`,
      );
    }
  }
  return lines;
}

/** `grants` without a domain: every domain, dom0 first (its lines show what it maps of the guests). */
export function allGrantLines(view: MachineView): string[] {
  const out: string[] = [];
  for (const d of view.hv.domains().sort((a, b) => a.domid - b.domid)) out.push(...grantLines(view, d.domid));
  return out;
}
