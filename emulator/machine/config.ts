/**
 * The host a machine assembles: the guests that get slots, the behaviour switches (versions) each
 * component reads, and host sizes. JSON-able: it crosses into every engine domain as DomainSpec.config.
 */

import { DEFAULT_VERSIONS, type Versions } from '../scenario/model.js';

/**
 * Behaviour switches that existed in real history: the scenario model's `versions`, one field per row
 * of its VERSION_SWITCHES table (a leaf module of plain data, so the machine may read it).
 */
export type MachineVersions = Versions;

export interface MachineGuest {
  /** The name `xl create` gives it (slot owner). */
  name: string;
  /** Bytes. */
  memory: number;
  abi: 'x86_64' | 'x86_32';
  disks: string[];
  /** xl.cfg on_poweroff / on_crash (destroy, preserve, restart); xl's default destroy when left out. */
  onPoweroff?: string;
  onCrash?: string;
  /** blkfront module parameters of this guest's kernel (xen_blkfront defaults when left out). */
  blkfront?: MachineBlkfrontParams;
}

/** xen_blkfront module parameters (max_indirect_segments 0 = direct requests only). */
export interface MachineBlkfrontParams {
  maxIndirectSegments?: number;
  featurePersistent?: boolean;
  maxRingPageOrder?: number;
}

/** xen_blkback module parameters of dom0 (indirect segments are gated by the blkback version). */
export interface MachineBlkbackParams {
  featurePersistent?: boolean;
  maxRingPageOrder?: number;
  maxPersistentGrants?: number;
}

/**
 * A block device dom0 has before any guest starts, usable as a `phy` disk target (`/dev/<name>`): an
 * image file the admin attached (`losetup /dev/loop0 disk.img`) or a RAM disk (`/dev/ram0`, brd).
 * Simplification: both are the kernel model's image disk (emulator/kernel/image-disk.ts).
 */
export interface MachineBlockDevice {
  /** Device name under /dev: [a-z][a-z0-9]*. */
  name: string;
  backing: { kind: 'file'; path: string } | { kind: 'memory'; sizeBytes: number };
  readOnly?: boolean;
  /** Service time per bio, virtual ms (default 0). */
  latencyMs?: number;
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
  /** blkback module parameters. */
  blkback?: MachineBlkbackParams;
  /** dom0 block devices for `phy` disks. */
  blockDevices?: MachineBlockDevice[];
}

export const MACHINE_DEFAULT_VERSIONS: Readonly<MachineVersions> = DEFAULT_VERSIONS;

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
    if (g.blkfront !== undefined) checkBlkfrontParams(g.blkfront, `guests[${i}].blkfront`);
  }
  if (c.blkback !== undefined) checkBlkbackParams(c.blkback);
  const devs = new Set<string>();
  for (const [i, d] of (c.blockDevices ?? []).entries()) {
    const at = `machine config: blockDevices[${i}]`;
    if (typeof d?.name !== 'string' || !/^[a-z][a-z0-9]*$/.test(d.name)) {
      throw new Error(`${at}.name must match [a-z][a-z0-9]*, got ${JSON.stringify(d?.name)}`);
    }
    if (devs.has(d.name)) throw new Error(`${at}.name "${d.name}" is used twice`);
    devs.add(d.name);
    const b = d.backing;
    if (b?.kind === 'file') {
      if (typeof b.path !== 'string' || !b.path.startsWith('/')) {
        throw new Error(`${at}.backing.path must be an absolute path, got ${JSON.stringify(b.path)}`);
      }
    } else if (b?.kind === 'memory') {
      if (!Number.isSafeInteger(b.sizeBytes) || b.sizeBytes <= 0 || b.sizeBytes % 512 !== 0) {
        throw new Error(`${at}.backing.sizeBytes must be a positive multiple of 512, got ${b.sizeBytes}`);
      }
    } else {
      const kind = (b as { kind?: unknown } | undefined)?.kind;
      throw new Error(`${at}.backing.kind must be "file" or "memory", got ${JSON.stringify(kind)}`);
    }
    if (d.latencyMs !== undefined && !(Number.isFinite(d.latencyMs) && d.latencyMs >= 0)) {
      throw new Error(`${at}.latencyMs must be a non-negative number, got ${d.latencyMs}`);
    }
  }
  if (!Number.isInteger(c.memory) || c.memory < 64 * 4096 || c.memory % 4096 !== 0) {
    throw new Error(`machine config: memory must be a multiple of 4096 of at least 256 KiB, got ${c.memory}`);
  }
}

function checkIntParam(at: string, v: unknown, max: number): void {
  if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max)) {
    throw new Error(`machine config: ${at} must be an integer in 0..${max}, got ${JSON.stringify(v)}`);
  }
}

function checkBoolParam(at: string, v: unknown): void {
  if (v !== undefined && typeof v !== 'boolean') {
    throw new Error(`machine config: ${at} must be true or false, got ${JSON.stringify(v)}`);
  }
}

function checkBlkfrontParams(p: MachineBlkfrontParams, at: string): void {
  // Limits as blkfront's own checks (drivers/blkfront/xenbus.ts).
  checkIntParam(`${at}.maxIndirectSegments`, p.maxIndirectSegments, 4096);
  checkIntParam(`${at}.maxRingPageOrder`, p.maxRingPageOrder, 4);
  checkBoolParam(`${at}.featurePersistent`, p.featurePersistent);
}

function checkBlkbackParams(p: MachineBlkbackParams): void {
  checkIntParam('blkback.maxRingPageOrder', p.maxRingPageOrder, 4);
  checkIntParam('blkback.maxPersistentGrants', p.maxPersistentGrants, 1 << 20);
  checkBoolParam('blkback.featurePersistent', p.featurePersistent);
}
