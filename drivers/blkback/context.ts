/**
 * What every part of blkback needs from dom0's kernel and the module parameters it was loaded with
 * (Linux keeps these as globals and module_param()s).
 */
import type { Kernel } from '../../emulator/kernel/kernel.js';
import type { Env, Holder } from '../../emulator/runtime/engine.js';
import type { Hypercalls } from '../../hypervisor/hypercall.js';
import type { GuestEvents } from '../events.js';
import type {
  BlkbackKthreadStop,
  BlkbackPersistentNegotiation,
  BlkbackReconnect,
  BlkbackVersion,
  VersionBehaviour,
} from './common.js';

/** Capabilities of the dom0 block device behind a vbd (the request queue limits Linux reads). */
export interface DiskFeatures {
  /** bdev_write_cache: advertised as feature-flush-cache and feature-barrier. */
  flush: boolean;
  /** bdev_max_discard_sectors > 0. */
  discard: boolean;
  discardSecure: boolean;
  discardGranularity: number;
  discardAlignment: number;
  logicalBlockSize: number;
  physicalBlockSize: number;
}

export const DEFAULT_DISK_FEATURES: DiskFeatures = Object.freeze({
  flush: true,
  discard: false,
  discardSecure: false,
  discardGranularity: 512,
  discardAlignment: 0,
  logicalBlockSize: 512,
  physicalBlockSize: 512,
});

export interface BlkbackContext {
  readonly env: Env;
  readonly kernel: Kernel;
  /** dom0's hypercall surface (grant maps, event channels). */
  readonly hc: Hypercalls;
  /** dom0's event-channel layer; its upcall must be wired by whoever boots dom0. */
  readonly events: GuestEvents;
  readonly version: BlkbackVersion;
  readonly behaviour: VersionBehaviour;
  /** C6 switch (see common.ts). */
  readonly reconnect: BlkbackReconnect;
  /** C10 switch (see common.ts). */
  readonly kthreadStop: BlkbackKthreadStop;
  /** C16 switch (see common.ts). */
  readonly persistentNegotiation: BlkbackPersistentNegotiation;
  /** Module parameters. */
  readonly featurePersistent: boolean;
  readonly maxRingPageOrder: number;
  readonly maxQueues: number;
  readonly maxPersistentGrants: number;
  readonly diskFeatures: (major: number, minor: number) => DiskFeatures;
  /**
   * Who must act for a held block device to be released: whoever removes the backend directory. Resolved
   * lazily when a stall is reported.
   */
  readonly removalHolders: (nodename: string) => readonly Holder[];
  /** A dmesg line with Linux's "xen-blkback: " prefix. */
  log(message: string): void;
}
