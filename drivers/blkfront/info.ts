/**
 * Per-device state of blkfront (struct blkfront_info + its one blkfront_ring_info) and what the driver
 * needs from the guest kernel. Simplification: one ring (no multi-queue).
 */
import type { Bio, BlockDevice, BlockLayer } from '../../emulator/kernel/block-device.js';
import type { KernelOopsReporter } from '../../emulator/kernel/oops.js';
import type { Env, WaitQueue } from '../../emulator/runtime/engine.js';
import type { Hypercalls } from '../../hypervisor/hypercall.js';
import type { BlkifAbi } from '../blkif.js';
import type { GuestMemory } from '../busdma/guest-memory.js';
import type { DmaTag } from '../busdma/tag.js';
import type { GuestEvents } from '../events.js';
import type { GrantTable } from '../grant-table.js';
import type { FrontRing } from '../ring.js';
import type { XenbusDevice } from '../xenbus/device.js';
import type { PersistentGrants } from './persistent.js';
import type { ShadowTable } from './shadow.js';

/**
 * Behaviour switches that existed in real history (teardown.md 1.1, 3.2, C7):
 * - '2012': on backend Closing with the disk open, stay Closing ("Device in use; refusing to close");
 *   the last release finishes the close.
 * - '2016': mark the disk dead and go Closed at once.
 */
export type BlkfrontVersion = '2012' | '2016';

/**
 * C11 (teardown.md §4, XSA-396 / CVE-2022-23036, Linux abf1fd5919d6):
 * - 'query-then-end': before the fix. Completion asks gnttab_query_foreign_access() and, when the grant
 *   reads unmapped, calls gnttab_end_foreign_access(ref, 0, 0UL); a grant still mapped only gets a
 *   rate-limited alert. blkif_free ends ring grants without handing over the page and frees the ring.
 *   Either way a page the backend can still reach goes back to the guest's allocator.
 * - 'try-end': the fix. gnttab_try_end_foreign_access() decides; a non-persistent grant still mapped
 *   puts the device in the error state, and frames still mapped never return to the allocator.
 */
export type BlkfrontGrantRevoke = 'query-then-end' | 'try-end';

/**
 * C14 (teardown.md §4, Linux c31ecf6c126d, 2016):
 * - 'direct': backend Connected always runs blkfront_connect, even when talk_to_blkback never ran
 *   (the backend skipped InitWait or its states coalesced) and no ring was negotiated.
 * - 'handshake-first': Connected before the handshake is treated as InitWait first.
 */
export type BlkfrontConnect = 'direct' | 'handshake-first';

/**
 * C15 (teardown.md §4, Bob Liu, "xen-blkfront: save uncompleted reqs in blkfront_resume()",
 * d8b31d834629, 2016):
 * - 'save-in-recover': before the fix. blkif_recover, run once the backend is Connected again, made
 *   its copy of the shadow only then — after talk_to_blkback had already set up a new ring with a new,
 *   empty shadow — so the requests that were in flight at the suspend are never resubmitted.
 * - 'save-in-resume': the fix. blkfront_resume takes the uncompleted requests out of the shadow before
 *   blkif_free, and blkif_recover resubmits them on the new ring.
 */
export type BlkfrontResume = 'save-in-recover' | 'save-in-resume';

export interface BlkfrontOptions {
  version?: BlkfrontVersion;
  grantRevoke?: BlkfrontGrantRevoke;
  connect?: BlkfrontConnect;
  resume?: BlkfrontResume;
  /** Module parameter max_ring_page_order (default 0: one page). */
  maxRingPageOrder?: number;
  /** Module parameter max_indirect_segments (xen_blkif_max_segments, default 32). */
  maxIndirectSegments?: number;
  /** Module parameter feature_persistent (default on). */
  featurePersistent?: boolean;
}

/** What the guest kernel gives blkfront. */
export interface BlkfrontKernel {
  env: Env;
  hc: Pick<Hypercalls, 'startInfo' | 'page'>;
  gnttab: GrantTable;
  events: GuestEvents;
  memory: GuestMemory;
  blocks: BlockLayer;
  /**
   * The guest kernel's oops path (a fault the guest kernel cannot survive here: it reports and decides
   * what follows); without it an oops throws a `KernelOops`.
   */
  oops?: KernelOopsReporter;
}

/** Linux DEFAULT_RATELIMIT_INTERVAL (5 s) and DEFAULT_RATELIMIT_BURST (10). */
export const DEFAULT_RATELIMIT_INTERVAL_MS = 5000;
export const DEFAULT_RATELIMIT_BURST = 10;

/** ___ratelimit: at most `burst` messages per `intervalMs` window. */
export class RateLimit {
  private begin = Number.NEGATIVE_INFINITY;
  private printed = 0;

  constructor(
    readonly intervalMs: number,
    readonly burst: number,
  ) {}

  allow(now: number): boolean {
    if (now - this.begin >= this.intervalMs) {
      this.begin = now;
      this.printed = 0;
    }
    if (this.printed >= this.burst) return false;
    this.printed++;
    return true;
  }
}

/** info->connected */
export type BlkifState = 'disconnected' | 'connected' | 'suspended' | 'error';

export interface BlkfrontRingInfo {
  pages: number[];
  ringRefs: number[];
  front: FrontRing;
  port: number;
  shadow: ShadowTable;
  /** Bios (or parts) waiting for a ring slot. */
  queue: Array<{
    bio: Bio;
    vecs: readonly Uint8Array[];
    length: number;
    sector: number;
    parent: { remaining: number; error: number };
  }>;
  /** Woken on every completion and every enqueue: the dispatcher waits here. */
  wake: WaitQueue;
  dispatcherRunning: boolean;
}

export class BlkfrontInfo {
  connected: BlkifState = 'disconnected';
  vdevice = 0;
  name = '';
  minor = 0;
  /** The handle field of requests (the devid). */
  handle = 0;
  abi: BlkifAbi | undefined;
  ringPageOrder = 0;
  /** 0 until talk_to_blkback negotiated the ring (kzalloc'd in Linux). */
  nrRingPages = 0;
  maxIndirectSegments = 0;
  featurePersistent = false;
  featureFlush = false;
  featureFua = false;
  /** The operation flushes use: FLUSH_DISKCACHE or WRITE_BARRIER. */
  flushOp = 0;
  featureDiscard = false;
  featureSecDiscard = false;
  discardGranularity = 0;
  discardAlignment = 0;
  sectorSize = 512;
  physicalSectorSize = 512;
  sectors = 0;
  vdiskInfo = 0;
  /** Frontend was told it is trusted (key `trusted`, default 1); untrusted forces bounce buffers. */
  trusted = true;
  bounce = false;
  ring: BlkfrontRingInfo | undefined;
  tag: DmaTag | undefined;
  persistent: PersistentGrants | undefined;
  gd: BlockDevice | undefined;
  /**
   * Work that waits for the ring across a suspend: bios submitted or queued while suspended (blk-mq
   * keeps them), and — after d8b31d834629 — the requests blkfront_resume took out of the shadow.
   */
  readonly requeue: BlkfrontRingInfo['queue'] = [];
  /** blk_mark_disk_dead (2016 close): every new I/O fails. */
  diskDead = false;
  /** The xenbus device went away (remove ran); the gendisk waits for its last release. */
  removed = false;
  /** Completed requests, for statistics. */
  completed = 0;
  /** pr_alert_ratelimited's state for "backed has not unmapped grant" (before XSA-396). */
  readonly alertLimit = new RateLimit(DEFAULT_RATELIMIT_INTERVAL_MS, DEFAULT_RATELIMIT_BURST);

  constructor(
    readonly kernel: BlkfrontKernel,
    readonly dev: XenbusDevice,
    readonly options: Required<BlkfrontOptions>,
  ) {}

  get env(): Env {
    return this.kernel.env;
  }

  /** The disk name for log lines (before the gendisk exists: the bus id). */
  get diskName(): string {
    return this.name || this.dev.busId;
  }
}
