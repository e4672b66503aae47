/**
 * What Linux keeps in drivers/block/xen-blkback/common.h: limits, the behaviour switches that changed
 * over blkback's history, and the small helpers both halves (xenbus.ts, blkback.ts) share.
 */
import type { Env } from '../../emulator/runtime/engine.js';
import { LINUX_BLKBACK_MAX_INDIRECT_SEGMENTS } from '../blkif.js';

/**
 * Behaviour switches that existed in real history (teardown.md C7-C10):
 * - '2012' (Linux 3.2-3.9): fe Closing disconnects at once (C7); disconnect sleeps in xenwatch until
 *   every pending request dropped its blkif reference (C8). No persistent grants, indirect requests,
 *   multi-page rings or multi-queue.
 * - '2013' (3.10-3.15): fe Closing only mirrors Closing (Joe Jin's fix); the disconnect at fe Closed
 *   still waits for the refcount (C8). Persistent grants (3.8) and indirect requests (3.11).
 * - '2014' (3.16-4.11): no wait; the blkif (and the vbd, hence the block device) is freed from
 *   deferred work when the last reference goes ("defer freeing blkif to avoid blocking xenwatch").
 * - '2017' (4.12+): per-ring `inflight`: disconnect returns -EBUSY and leaves a busy ring mapped; fe
 *   Connected with pending I/O is a fatal "pending I/O" (C9). Multi-page rings (4.2) and queues (4.3).
 */
export type BlkbackVersion = '2012' | '2013' | '2014' | '2017';
export const BLKBACK_VERSIONS: readonly BlkbackVersion[] = ['2012', '2013', '2014', '2017'];

/**
 * C6 (legacy/linux-2.6.18-xen.git ef9e715c419c): '2.6.18' connects on fe Initialised/Connected without
 * tearing down first, and blkif_map answers "already connected" while the old ring is mapped, so the
 * new xenblkd replaces the old one's pointer and the old thread (with its blkif reference) leaks;
 * 'ef9e715c419c' runs the idempotent disconnect right before allocating (the upstream behaviour).
 */
export type BlkbackReconnect = '2.6.18' | 'ef9e715c419c';
export const BLKBACK_RECONNECT_VERSIONS: readonly BlkbackReconnect[] = ['2.6.18', 'ef9e715c419c'];

/**
 * C10 (XSA-350, mainline 1c728719a4da, 2020-12): 'xsa-350' leaves ring->xenblkd set when kthread_stop
 * stopped a thread that never ran (only the thread function cleared it), so the next disconnect stops
 * a freed task; '1c728719a4da' clears the pointer after kthread_stop whatever happened.
 */
export type BlkbackKthreadStop = 'xsa-350' | '1c728719a4da';
export const BLKBACK_KTHREAD_STOP_VERSIONS: readonly BlkbackKthreadStop[] = ['xsa-350', '1c728719a4da'];

/**
 * C16 (Linux fc9be616bb8f "xen-blkback: fix persistent grants negotiation", July 2022):
 * 'aac8a70db24b' caches the feature_persistent parameter into vbd.feature_gnt_persistent in
 * xen_vbd_create (run when the hotplug script writes physical-device), and connect_ring (run when the
 * frontend reaches Initialised) replaces it with the frontend's feature-persistent only if it is set;
 * a connect_ring that ran first saw 0 and asked nobody, and the later xen_vbd_create overwrote its
 * result with the parameter. The backend advertises the flag itself. 'fc9be616bb8f' keeps the
 * parameter in a field of its own and negotiates at connect only (parameter && frontend).
 */
export type BlkbackPersistentNegotiation = 'aac8a70db24b' | 'fc9be616bb8f';
export const BLKBACK_PERSISTENT_NEGOTIATION_VERSIONS: readonly BlkbackPersistentNegotiation[] = [
  'aac8a70db24b',
  'fc9be616bb8f',
];

/** How xen_blkif_disconnect treats requests still in flight. */
export type DisconnectMode = 'wait' | 'defer' | 'ebusy';

export interface VersionBehaviour {
  /** fe Closing disconnects the rings (pre-2013, C7). */
  readonly disconnectOnClosing: boolean;
  /** fe Closed disconnects the rings (2013+; before, Closing already had). */
  readonly disconnectOnClosed: boolean;
  readonly disconnect: DisconnectMode;
  readonly persistentGrants: boolean;
  readonly indirect: boolean;
  readonly multiPageRing: boolean;
  readonly multiQueue: boolean;
}

export function versionBehaviour(v: BlkbackVersion): VersionBehaviour {
  switch (v) {
    case '2012':
      return {
        disconnectOnClosing: true,
        disconnectOnClosed: false,
        disconnect: 'wait',
        persistentGrants: false,
        indirect: false,
        multiPageRing: false,
        multiQueue: false,
      };
    case '2013':
      return {
        disconnectOnClosing: false,
        disconnectOnClosed: true,
        disconnect: 'wait',
        persistentGrants: true,
        indirect: true,
        multiPageRing: false,
        multiQueue: false,
      };
    case '2014':
      return {
        disconnectOnClosing: false,
        disconnectOnClosed: true,
        disconnect: 'defer',
        persistentGrants: true,
        indirect: true,
        multiPageRing: false,
        multiQueue: false,
      };
    case '2017':
      return {
        disconnectOnClosing: false,
        disconnectOnClosed: true,
        disconnect: 'ebusy',
        persistentGrants: true,
        indirect: true,
        multiPageRing: true,
        multiQueue: true,
      };
    default:
      throw new RangeError(
        `blkback version ${JSON.stringify(v)} is not one of ${BLKBACK_VERSIONS.map((x) => `'${x}'`).join(', ')}`,
      );
  }
}

/** MAX_INDIRECT_SEGMENTS, advertised as feature-max-indirect-segments. */
export const MAX_INDIRECT_SEGMENTS = LINUX_BLKBACK_MAX_INDIRECT_SEGMENTS;
/** xen_blkif_max_ring_order default (XENBUS_MAX_RING_GRANT_ORDER). */
export const XENBUS_MAX_RING_GRANT_ORDER = 4;
/** Pending-request pool per ring page (XEN_BLKIF_REQS_PER_PAGE). */
export const XEN_BLKIF_REQS_PER_PAGE = 32;
/** max_persistent_grants module parameter default, per ring. */
export const MAX_PERSISTENT_GRANTS = 1056;
/** LRU purge period and share (LRU_INTERVAL ms, LRU_PERCENT_CLEAN %). */
export const LRU_INTERVAL_MS = 100;
export const LRU_PERCENT_CLEAN = 5;
/** persistent_grant_unused_seconds default: grants idle this long are dropped. */
export const PERSISTENT_GRANT_UNUSED_MS = 60_000;
/** xenblk_max_queues defaults to the number of online CPUs; the emulated dom0 has 4. */
export const DEFAULT_MAX_QUEUES = 4;
/** One jiffy at HZ=250, the unit of the late-EOI back-off. */
export const JIFFY_MS = 4;
/** The late-EOI delay for a channel that keeps firing without work is capped at HZ. */
export const MAX_EOI_DELAY_MS = 1000;

/** Linux errno values blkback returns (asm-generic). */
export const E = {
  ENOENT: 2,
  EIO: 5,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EINVAL: 22,
  ERANGE: 34,
  ENOSYS: 38,
  EOPNOTSUPP: 95,
} as const;

/** MKDEV(major, minor) as the kernel prints it in "%08x" (20-bit minors). */
export function mkdev(major: number, minor: number): number {
  return ((major << 20) | minor) >>> 0;
}

export function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

export function hex4(n: number): string {
  return (n >>> 0).toString(16).padStart(4, '0');
}

/**
 * printk_ratelimited: at most `burst` lines per `intervalMs` (Linux defaults 10 per 5 s); when a new
 * interval opens after suppressions, "<name>: N callbacks suppressed" is logged first.
 */
export class RateLimitedLog {
  private windowStart = Number.NEGATIVE_INFINITY;
  private printed = 0;
  private missed = 0;
  /** Lines dropped since creation (for tests and stats). */
  suppressedTotal = 0;

  constructor(
    private readonly env: Env,
    private readonly comp: string,
    private readonly name: string,
    private readonly burst = 10,
    private readonly intervalMs = 5000,
  ) {}

  log(message: string): boolean {
    const now = this.env.now();
    if (now - this.windowStart >= this.intervalMs) {
      if (this.missed > 0) this.env.trace.log(this.comp, `${this.name}: ${this.missed} callbacks suppressed`);
      this.windowStart = now;
      this.printed = 0;
      this.missed = 0;
    }
    if (this.printed < this.burst) {
      this.printed++;
      this.env.trace.log(this.comp, message);
      return true;
    }
    this.missed++;
    this.suppressedTotal++;
    return false;
  }
}

/** sscanf "%u" as xenbus_scanf uses it: blanks, optional sign, digits, wrapped to 32 bits. */
export function scanUnsigned(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]+)/.exec(text);
  if (!m) return undefined;
  const v = Number(BigInt(m[2]!) & 0xffffffffn);
  return m[1] === '-' ? -v >>> 0 : v;
}

/**
 * sscanf "%x:%x" (physical-device): returns how many conversions succeeded and the values.
 * %x skips blanks and accepts an optional 0x; the ':' must follow the first number directly.
 */
export function scanMajorMinor(text: string): { count: number; major: number; minor: number } {
  const first = /^[ \t\n\v\f\r]*(?:0[xX](?=[0-9a-fA-F]))?([0-9a-fA-F]+)/.exec(text);
  if (!first) return { count: 0, major: 0, minor: 0 };
  const major = Number(BigInt(`0x${first[1]!}`) & 0xffffffffn);
  const rest = text.slice(first[0].length);
  const second = /^:[ \t\n\v\f\r]*(?:0[xX](?=[0-9a-fA-F]))?([0-9a-fA-F]+)/.exec(rest);
  if (!second) return { count: 1, major, minor: 0 };
  return { count: 2, major, minor: Number(BigInt(`0x${second[1]!}`) & 0xffffffffn) };
}

/** kstrtoul(s, 0): the whole string must be a number (0x hex, leading-0 octal, decimal), or undefined. */
export function kstrtoul0(text: string): number | undefined {
  const s = text.endsWith('\n') ? text.slice(0, -1) : text;
  let v: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(s)) v = Number.parseInt(s.slice(2), 16);
  else if (/^0[0-7]*$/.test(s)) v = s.length > 1 ? Number.parseInt(s.slice(1), 8) : 0;
  else if (/^[1-9][0-9]*$/.test(s)) v = Number.parseInt(s, 10);
  else return undefined;
  return Number.isSafeInteger(v) ? v : undefined;
}
