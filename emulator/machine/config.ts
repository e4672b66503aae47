/**
 * The host a machine assembles: the guests that get slots, the behaviour switches (versions) each
 * component reads, and host sizes. JSON-able: it crosses into every engine domain as DomainSpec.config.
 */

/** Behaviour switches that existed in real history; the scenario model's `versions`, as plain strings. */
export interface MachineVersions {
  libxl: string;
  blktapKernel: string;
  tapdisk: string;
  tapdiskReplyBeforeTeardown: boolean;
  blkback: string;
  blkfront: string;
  tapCtl: string;
}

export interface MachineGuest {
  /** The name `xl create` gives it (slot owner). */
  name: string;
  /** Bytes. */
  memory: number;
  abi: 'x86_64' | 'x86_32';
  disks: string[];
}

export interface MachineImage {
  /** Path of the image file on the host (absolute). */
  path: string;
  size: number;
  format: string;
}

export interface MachineConfig {
  guests: MachineGuest[];
  versions: MachineVersions;
  /** Host memory in bytes (machine frames = memory / 4096). */
  memory: number;
  /** Scratch directory of the run (images live here). */
  workDir?: string;
  images?: MachineImage[];
}

export const MACHINE_DEFAULT_VERSIONS: Readonly<MachineVersions> = {
  libxl: '4.2',
  blktapKernel: '2010-08',
  tapdisk: 'xen-4.1',
  tapdiskReplyBeforeTeardown: false,
  blkback: '2017',
  blkfront: '2016',
  tapCtl: 'xen',
};

/** What each engine domain receives as its config. */
export interface DomainBootConfig {
  machine: MachineConfig;
  /** -1 for dom0, else the slot index. */
  slot: number;
}

export function checkMachineConfig(c: MachineConfig): void {
  if (c === null || typeof c !== 'object') throw new Error('machine config: must be an object');
  if (!Array.isArray(c.guests)) throw new Error('machine config: guests must be an array');
  const names = new Set<string>();
  for (const [i, g] of c.guests.entries()) {
    if (typeof g?.name !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(g.name)) {
      throw new Error(
        `machine config: guests[${i}].name must match [A-Za-z0-9_.-]+, got ${JSON.stringify(g?.name)}`,
      );
    }
    if (names.has(g.name)) throw new Error(`machine config: guests[${i}].name "${g.name}" is used twice`);
    names.add(g.name);
  }
  if (!Number.isInteger(c.memory) || c.memory < 64 * 4096 || c.memory % 4096 !== 0) {
    throw new Error(`machine config: memory must be a multiple of 4096 of at least 256 KiB, got ${c.memory}`);
  }
}
