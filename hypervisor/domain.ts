/**
 * Domains: creation, pause, shutdown, destruction, and the listing `xl list` prints.
 *
 * Life of a domain: created paused (the toolstack unpauses it once built, as with
 * XEN_DOMCTL_createdomain), running / blocked / paused / shut down while alive; `destroy` makes it
 * dying: its ports are closed (peers return to unbound), the mappings it holds of others' grants
 * are released, and its own frames are given back, except those another domain still maps. It
 * stays dying, grant table and all, until the last foreign pin on its grants goes; then it is dead:
 * every remaining frame is freed, the slot and domid are released and VIRQ_DOM_EXC is sent to the
 * domain handling it (dom0), as Xen does on domain destruction.
 */
import { checkUint } from './args.js';
import { EINVAL, ENOMEM, EOVERFLOW, ESRCH } from './errno.js';
import type { EventChannels } from './event-channel.js';
import type { GrantTables } from './grant-table.js';
import {
  DEFAULT_MAX_EVTCHN_PORT,
  DOMID_FIRST_RESERVED,
  DOMID_XEN,
  type GuestAbi,
  SHUTDOWN_crash,
  SHUTDOWN_MAX,
  VIRQ_DOM_EXC,
  XEN_LEGACY_MAX_VCPUS,
} from './layout.js';
import type { MachineMemory } from './memory.js';
import {
  DF_ABI64,
  DF_DOMID,
  DF_FLAGS,
  DF_GEN,
  DF_MAX_GRANT_FRAMES,
  DF_MAX_PAGES,
  DF_MT_IN_USE,
  DF_NR_GRANT_FRAMES,
  DF_PAUSE_COUNT,
  DF_PINNED_ACTIVE,
  DF_SHARED_INFO_MFN,
  DF_SHUTDOWN_REASON,
  DF_STATE,
  DF_TOT_PAGES,
  DF_VCPUS,
  DFL_BLOCKED,
  DFL_PRIVILEGED,
  DFL_SHUTDOWN,
  DS_ALIVE,
  DS_DYING,
  DS_FREE,
  H_LOCK_DOMAINS,
  H_NEXT_DOMID,
  type SharedState,
} from './shared-state.js';
import { spinLock, spinUnlock } from './spinlock.js';

/** Set while `destroy` is still releasing a domain, so a last unpin does not finalize it early. */
const DFL_DESTROYING = 8;
/** Xen caps the system-controller pause count at 255. */
const MAX_PAUSE_COUNT = 255;

export interface DomainConfig {
  /** Grant frames this domain may grow its table to (default: the host limit, 64). */
  maxGrantFrames?: number;
  /** Maptrack frames (256 handles each) this domain may use to map others' grants. */
  maxMaptrackFrames?: number;
  /** Highest event-channel port (default 1023, libxl's `event_channels`). */
  maxEvtchnPort?: number;
  /** Guest ABI: decides the shared_info layout and the 2-level port limit (4096 / 1024). */
  abi?: GuestAbi;
  /** Page allowance (max_pages); default: all of memory. */
  maxPages?: number;
  vcpus?: number;
}

export type DomainState = 'running' | 'blocked' | 'paused' | 'shutdown' | 'dying';

export interface DomainInfo {
  domid: number;
  /** The dominant state, in `xl list` precedence: dying > shutdown > paused > blocked > running. */
  state: DomainState;
  running: boolean;
  blocked: boolean;
  paused: boolean;
  shutdown: boolean;
  crashed: boolean;
  dying: boolean;
  /** `xl list` State column, "rbpscd" letters or '-'. */
  flags: string;
  shutdownReason: number | undefined;
  privileged: boolean;
  abi: GuestAbi;
  vcpus: number;
  totPages: number;
  maxPages: number;
  nrGrantFrames: number;
  maxGrantFrames: number;
  /** Maptrack handles in use: grants of others this domain maps. */
  mappedForeignGrants: number;
  /** Grant entries of this domain that others have pinned (what keeps a dying domain). */
  pinnedGrants: number;
}

export class Domains {
  constructor(
    private readonly s: SharedState,
    private readonly mem: MachineMemory,
    private readonly grants: GrantTables,
    private readonly evtchn: EventChannels,
  ) {
    grants.hooks = { lastPinDropped: (slot) => this.finalize(slot) };
  }

  private lockTable(): void {
    spinLock(this.s.ctl, H_LOCK_DOMAINS, this.s.token, 'domain table');
  }

  private unlockTable(): void {
    spinUnlock(this.s.ctl, H_LOCK_DOMAINS, this.s.token, 'domain table');
  }

  /** Slot of an existing (alive or dying) domain, or -1. */
  slotOf(domid: number): number {
    const slot = this.s.slotOf(domid);
    if (slot < 0) return -1;
    if (this.s.field(slot, DF_STATE) === DS_FREE || this.s.field(slot, DF_DOMID) !== domid) return -1;
    return slot;
  }

  isAlive(domid: number): boolean {
    const slot = this.slotOf(domid);
    return slot >= 0 && this.s.field(slot, DF_STATE) === DS_ALIVE;
  }

  isPrivileged(slot: number): boolean {
    return (this.s.field(slot, DF_FLAGS) & DFL_PRIVILEGED) !== 0;
  }

  /**
   * XEN_DOMCTL_createdomain. Returns the new domid or -errno (-EINVAL for a bad limit, -ENOMEM when
   * no slot or memory is left). `domid` forces the id (used for dom0 at boot).
   */
  create(
    config: DomainConfig,
    options: { privileged?: boolean; domid?: number; paused?: boolean } = {},
  ): number {
    const hostGrant = this.s.limits.maxGrantFrames;
    const hostMaptrack = this.s.limits.maxMaptrackFrames;
    const maxGrantFrames = config.maxGrantFrames ?? hostGrant;
    const maxMaptrackFrames = config.maxMaptrackFrames ?? hostMaptrack;
    const maxEvtchnPort = config.maxEvtchnPort ?? DEFAULT_MAX_EVTCHN_PORT;
    const vcpus = config.vcpus ?? 1;
    const abi = config.abi ?? 'x86_64';
    const maxPages = config.maxPages ?? this.s.limits.frames;
    checkUint(maxGrantFrames, 32, 'config.maxGrantFrames');
    checkUint(maxMaptrackFrames, 32, 'config.maxMaptrackFrames');
    checkUint(maxEvtchnPort, 32, 'config.maxEvtchnPort');
    checkUint(vcpus, 32, 'config.vcpus');
    checkUint(maxPages, 32, 'config.maxPages');
    if (abi !== 'x86_64' && abi !== 'x86_32')
      throw new RangeError(`config.abi must be 'x86_64' or 'x86_32', got ${String(abi)}`);
    // grant_table_init's limits; vCPUs must fit the legacy shared_info array.
    if (maxGrantFrames < 1 || maxGrantFrames > hostGrant || maxMaptrackFrames > hostMaptrack) return -EINVAL;
    if (vcpus < 1 || vcpus > XEN_LEGACY_MAX_VCPUS) return -EINVAL;

    this.lockTable();
    let slot = -1;
    let domid = -1;
    try {
      for (let i = 0; i < this.s.limits.maxDomains; i++) {
        if (this.s.field(i, DF_STATE) === DS_FREE && !(this.s.field(i, DF_FLAGS) & DFL_DESTROYING)) {
          slot = i;
          break;
        }
      }
      if (slot < 0) return -ENOMEM;
      if (options.domid !== undefined) {
        if (this.s.slotOf(options.domid) >= 0) return -EINVAL;
        domid = options.domid;
      } else {
        domid = this.nextDomid();
        if (domid < 0) return -ENOMEM;
      }
      // Reserve the slot while we build it (not visible by domid until the end).
      this.s.setField(slot, DF_STATE, DS_ALIVE);
      this.s.setField(slot, DF_FLAGS, DFL_DESTROYING);
    } finally {
      this.unlockTable();
    }

    const s = this.s;
    s.setField(slot, DF_GEN, s.field(slot, DF_GEN) + 1);
    s.setField(slot, DF_DOMID, domid);
    s.setField(slot, DF_PAUSE_COUNT, options.paused === false ? 0 : 1);
    s.setField(slot, DF_SHUTDOWN_REASON, 0);
    s.setField(slot, DF_ABI64, abi === 'x86_64' ? 1 : 0);
    s.setField(slot, DF_VCPUS, vcpus);
    s.setField(slot, DF_TOT_PAGES, 0);
    s.setField(slot, DF_MAX_PAGES, maxPages);

    const info = this.mem.alloc(DOMID_XEN, -1, 1, domid);
    let ok = info !== null;
    if (info) s.setField(slot, DF_SHARED_INFO_MFN, info[0]);
    ok = ok && this.grants.init(slot, domid, maxGrantFrames, maxMaptrackFrames);
    ok = ok && this.evtchn.init(slot, maxEvtchnPort, abi === 'x86_64');
    if (!ok) {
      // Unwind whatever was built; nothing is visible yet.
      if (info) this.mem.release(info[0], -1);
      this.grants.teardown(slot);
      this.evtchn.teardown(slot);
      this.lockTable();
      s.setField(slot, DF_FLAGS, 0);
      s.setField(slot, DF_STATE, DS_FREE);
      this.unlockTable();
      return -ENOMEM;
    }
    s.setField(slot, DF_FLAGS, options.privileged ? DFL_PRIVILEGED : 0);
    s.setSlot(domid, slot);
    return domid;
  }

  /** Xen's domid rover: the next unused id after the last one, wrapping below DOMID_FIRST_RESERVED. */
  private nextDomid(): number {
    let id = Atomics.load(this.s.ctl, H_NEXT_DOMID);
    for (let tries = 0; tries < DOMID_FIRST_RESERVED; tries++) {
      id = id + 1 >= DOMID_FIRST_RESERVED ? 1 : id + 1;
      if (this.s.slotOf(id) < 0) {
        Atomics.store(this.s.ctl, H_NEXT_DOMID, id);
        return id;
      }
    }
    return -1;
  }

  /** XEN_DOMCTL_pausedomain (system-controller pause, counted). */
  pause(callerDomid: number, domid: number): number {
    const slot = this.slotOf(domid);
    if (slot < 0) return -ESRCH;
    if (domid === callerDomid) return -EINVAL;
    this.lockTable();
    try {
      const n = this.s.field(slot, DF_PAUSE_COUNT);
      if (n >= MAX_PAUSE_COUNT) return -EOVERFLOW;
      this.s.setField(slot, DF_PAUSE_COUNT, n + 1);
      return 0;
    } finally {
      this.unlockTable();
    }
  }

  /** XEN_DOMCTL_unpausedomain: -EINVAL when not paused by the controller. */
  unpause(callerDomid: number, domid: number): number {
    const slot = this.slotOf(domid);
    if (slot < 0) return -ESRCH;
    if (domid === callerDomid) return -EINVAL;
    this.lockTable();
    try {
      const n = this.s.field(slot, DF_PAUSE_COUNT);
      if (n === 0) return -EINVAL;
      this.s.setField(slot, DF_PAUSE_COUNT, n - 1);
      return 0;
    } finally {
      this.unlockTable();
    }
  }

  /** domain_shutdown: the first reason sticks; VIRQ_DOM_EXC tells dom0 (xenstored's @releaseDomain). */
  shutdown(domid: number, reason: number): number {
    checkUint(reason, 32, 'shutdown.reason');
    if (reason > SHUTDOWN_MAX) return -EINVAL;
    const slot = this.slotOf(domid);
    if (slot < 0) return -ESRCH;
    this.lockTable();
    try {
      const flags = this.s.field(slot, DF_FLAGS);
      if (flags & DFL_SHUTDOWN) return 0;
      this.s.setField(slot, DF_SHUTDOWN_REASON, reason);
      this.s.setField(slot, DF_FLAGS, flags | DFL_SHUTDOWN);
    } finally {
      this.unlockTable();
    }
    this.evtchn.sendGlobalVirq(VIRQ_DOM_EXC);
    return 0;
  }

  /** SCHEDOP_block: blocked until an upcall is raised (at once if one is already pending). */
  block(slot: number): void {
    if (this.evtchn.bits(slot).upcallPending(0)) return;
    Atomics.or(this.s.dom, this.s.base(slot) + DF_FLAGS, DFL_BLOCKED);
  }

  unblock(slot: number): void {
    Atomics.and(this.s.dom, this.s.base(slot) + DF_FLAGS, ~DFL_BLOCKED);
  }

  /** XEN_DOMCTL_destroydomain. A domain cannot destroy itself; destroying a dying one returns 0. */
  destroy(callerDomid: number, domid: number): number {
    const s = this.s;
    const slot = this.slotOf(domid);
    if (slot < 0) return -ESRCH;
    if (domid === callerDomid) return -EINVAL;
    this.lockTable();
    try {
      if (s.field(slot, DF_STATE) !== DS_ALIVE) return 0;
      s.setField(slot, DF_FLAGS, s.field(slot, DF_FLAGS) | DFL_DESTROYING);
      s.setField(slot, DF_STATE, DS_DYING);
    } finally {
      this.unlockTable();
    }
    this.evtchn.closeAll(slot, domid);
    this.grants.releaseMappings(slot);
    // Give back the domain's own frames; those still mapped by others wait for their last unmap.
    // indexOf skips the other owners' frames natively (an Atomics.load per frame showed in the lifecycle
    // profile); every hit is confirmed with Atomics.load, as the per-frame loop read it.
    const owner = s.frameOwner;
    for (let mfn = owner.indexOf(domid); mfn >= 0; mfn = owner.indexOf(domid, mfn + 1)) {
      if (Atomics.load(owner, mfn) === domid && !this.mem.isPendingFree(mfn)) this.mem.release(mfn, slot);
    }
    Atomics.and(s.dom, s.base(slot) + DF_FLAGS, ~DFL_DESTROYING);
    this.finalize(slot);
    return 0;
  }

  /** Dying -> dead once nothing pins its grants; idempotent, safe to call from any thread. */
  private finalize(slot: number): void {
    const s = this.s;
    let domid: number;
    this.lockTable();
    try {
      if (s.field(slot, DF_STATE) !== DS_DYING) return;
      if (s.field(slot, DF_FLAGS) & DFL_DESTROYING) return;
      if (s.field(slot, DF_PINNED_ACTIVE) !== 0) return;
      domid = s.field(slot, DF_DOMID);
      s.setSlot(domid, -1);
      this.grants.teardown(slot);
      this.evtchn.teardown(slot);
      this.mem.release(s.field(slot, DF_SHARED_INFO_MFN), -1);
      const owner = s.frameOwner;
      for (let mfn = owner.indexOf(domid); mfn >= 0; mfn = owner.indexOf(domid, mfn + 1)) {
        if (Atomics.load(owner, mfn) === domid) this.mem.release(mfn, slot);
      }
      s.setField(slot, DF_FLAGS, 0);
      s.setField(slot, DF_STATE, DS_FREE);
    } finally {
      this.unlockTable();
    }
    this.evtchn.sendGlobalVirq(VIRQ_DOM_EXC);
  }

  info(slot: number): DomainInfo {
    const s = this.s;
    const flags = s.field(slot, DF_FLAGS);
    const dying = s.field(slot, DF_STATE) === DS_DYING;
    const shutdown = (flags & DFL_SHUTDOWN) !== 0;
    const reason = shutdown ? s.field(slot, DF_SHUTDOWN_REASON) : undefined;
    const crashed = shutdown && reason === SHUTDOWN_crash;
    const paused = s.field(slot, DF_PAUSE_COUNT) > 0;
    const blocked = !dying && !shutdown && !paused && (flags & DFL_BLOCKED) !== 0;
    const running = !dying && !shutdown && !paused && !blocked;
    const state: DomainState = dying
      ? 'dying'
      : shutdown
        ? 'shutdown'
        : paused
          ? 'paused'
          : blocked
            ? 'blocked'
            : 'running';
    const letters = [
      running ? 'r' : '-',
      blocked ? 'b' : '-',
      paused ? 'p' : '-',
      shutdown ? 's' : '-',
      crashed ? 'c' : '-',
      dying ? 'd' : '-',
    ].join('');
    return {
      domid: s.field(slot, DF_DOMID),
      state,
      running,
      blocked,
      paused,
      shutdown,
      crashed,
      dying,
      flags: letters,
      shutdownReason: reason,
      privileged: (flags & DFL_PRIVILEGED) !== 0,
      abi: s.field(slot, DF_ABI64) ? 'x86_64' : 'x86_32',
      vcpus: s.field(slot, DF_VCPUS),
      totPages: s.field(slot, DF_TOT_PAGES),
      maxPages: s.field(slot, DF_MAX_PAGES),
      nrGrantFrames: s.field(slot, DF_NR_GRANT_FRAMES),
      maxGrantFrames: s.field(slot, DF_MAX_GRANT_FRAMES),
      mappedForeignGrants: s.field(slot, DF_MT_IN_USE),
      pinnedGrants: s.field(slot, DF_PINNED_ACTIVE),
    };
  }

  /** Every alive or dying domain, by domid. */
  list(): DomainInfo[] {
    const out: DomainInfo[] = [];
    for (let slot = 0; slot < this.s.limits.maxDomains; slot++) {
      const st = this.s.field(slot, DF_STATE);
      if (st === DS_FREE) continue;
      if (this.s.field(slot, DF_FLAGS) & DFL_DESTROYING && st === DS_ALIVE) continue; // still being built
      out.push(this.info(slot));
    }
    return out.sort((a, b) => a.domid - b.domid);
  }
}
