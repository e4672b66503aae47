/**
 * The simulated Xen host. `Hypervisor.create` allocates every SharedArrayBuffer and boots dom0
 * (privileged, unpaused); `hv.buffers` can be posted to workers, where `Hypervisor.attach` gives an
 * equivalent instance over the same state. `hv.hypercalls(domid)` is the surface a domain's
 * kernel calls.
 */
import type { UpcallKicker } from '../emulator/runtime/engine.js';
import { checkUint } from './args.js';
import { type DomainConfig, type DomainInfo, Domains } from './domain.js';
import { XenError } from './errno.js';
import { EventChannels } from './event-channel.js';
import { EvtchnLossTable } from './evtchn-loss.js';
import { GrantTables } from './grant-table.js';
import { Hypercalls, type Services } from './hypercall.js';
import { DEFAULT_MAX_GRANT_FRAMES, DEFAULT_MAX_MAPTRACK_FRAMES } from './layout.js';
import { MachineMemory } from './memory.js';
import { DF_DOMID, DF_KICKS, type HypervisorBuffers, SharedState } from './shared-state.js';

export interface HypervisorOptions {
  /** Machine frames (4 KiB each), including Xen's own pages. */
  frames: number;
  /** Domain slots, dom0 included. */
  maxDomains: number;
  /** Host cap on grant frames per domain (Xen's gnttab_max_frames, default 64). */
  maxGrantFrames?: number;
  /** Host cap on maptrack frames per domain (default 1024). */
  maxMaptrackFrames?: number;
  dom0?: DomainConfig;
  kicker?: UpcallKicker;
}

export class Hypervisor {
  readonly buffers: HypervisorBuffers;
  private readonly x: Services;
  private kicker: UpcallKicker | undefined;
  private readonly surfaces = new Map<number, Hypercalls>();

  /** Armed event-channel losses (a fault hook, not Xen; see evtchn-loss.ts). */
  readonly evtchnLoss: EvtchnLossTable;

  private constructor(s: SharedState, kicker: UpcallKicker | undefined) {
    // The loss table travels with the other buffers so attached instances share it.
    const shared = s.buffers.evtchnLoss;
    this.evtchnLoss = new EvtchnLossTable(shared ?? undefined);
    this.buffers = shared ? s.buffers : { ...s.buffers, evtchnLoss: this.evtchnLoss.buffer };
    this.kicker = kicker;
    const mem = new MachineMemory(s);
    const grants = new GrantTables(s, mem);
    const evtchn = new EventChannels(s, mem, (slot) => this.kick(slot));
    evtchn.loss = this.evtchnLoss;
    const domains = new Domains(s, mem, grants, evtchn);
    this.x = { s, mem, grants, evtchn, domains };
  }

  static create(options: HypervisorOptions): Hypervisor {
    const frames = checkUint(options.frames, 32, 'options.frames');
    const maxDomains = checkUint(options.maxDomains, 16, 'options.maxDomains');
    const maxGrantFrames = checkUint(
      options.maxGrantFrames ?? DEFAULT_MAX_GRANT_FRAMES,
      16,
      'options.maxGrantFrames',
    );
    const maxMaptrackFrames = checkUint(
      options.maxMaptrackFrames ?? DEFAULT_MAX_MAPTRACK_FRAMES,
      16,
      'options.maxMaptrackFrames',
    );
    if (frames < 16) throw new RangeError(`options.frames must be at least 16, got ${frames}`);
    if (maxDomains < 1)
      throw new RangeError(`options.maxDomains must be at least 1 (dom0), got ${maxDomains}`);
    if (maxGrantFrames < 1)
      throw new RangeError(`options.maxGrantFrames must be at least 1, got ${maxGrantFrames}`);
    const s = SharedState.allocate({ frames, maxDomains, maxGrantFrames, maxMaptrackFrames });
    const hv = new Hypervisor(s, options.kicker);
    const dom0 = hv.x.domains.create(options.dom0 ?? {}, { privileged: true, domid: 0, paused: false });
    if (dom0 !== 0) throw new XenError(dom0, 'could not build dom0 (too little memory for its tables?)');
    return hv;
  }

  /**
   * The machine is gone for good (its engine closed; no thread, task or view uses its memory again):
   * its buffers go to the next `Hypervisor.create` of the same size in this thread (SharedState.recycle).
   */
  recycle(): void {
    SharedState.recycle(this.x.s.buffers);
  }

  /** Another instance (e.g. in a worker) over the same shared state. */
  static attach(buffers: HypervisorBuffers, kicker?: UpcallKicker): Hypervisor {
    return new Hypervisor(SharedState.attach(buffers), kicker);
  }

  setKicker(kicker: UpcallKicker | undefined): void {
    this.kicker = kicker;
  }

  /** The hypercall surface of `domid` (cached; a destroyed domain's surface throws on use). */
  hypercalls(domid: number): Hypercalls {
    const cached = this.surfaces.get(domid);
    if (cached && this.x.domains.slotOf(domid) >= 0) {
      try {
        cached.startInfo();
        return cached;
      } catch {
        // The domid was reused by a new domain: bind a fresh surface below.
      }
    }
    const hc = new Hypercalls(this.x, domid);
    this.surfaces.set(domid, hc);
    return hc;
  }

  /** Every alive or dying domain (the host's view; no privilege check). */
  domains(): DomainInfo[] {
    return this.x.domains.list();
  }

  domainInfo(domid: number): DomainInfo | undefined {
    const slot = this.x.domains.slotOf(domid);
    return slot < 0 ? undefined : this.x.domains.info(slot);
  }

  get totalFrames(): number {
    return this.x.mem.totalFrames;
  }

  freeFrames(): number {
    return this.x.mem.freeFrames();
  }

  /**
   * The word that counts kicks of a domain: engines can `Atomics.waitAsync(words, index, seen)` on
   * it to sleep until the next upcall (the threads engine's wake-up).
   */
  kickWord(domid: number): { words: Int32Array; index: number } {
    const slot = this.x.domains.slotOf(domid);
    if (slot < 0) throw new XenError(-3, `kickWord: no domain ${domid}`);
    return { words: this.x.s.dom, index: this.x.s.base(slot) + DF_KICKS };
  }

  /** Raise a domain's upcall: unblock, count, wake waiters, and tell this thread's engine. */
  private kick(slot: number): void {
    const s = this.x.s;
    this.x.domains.unblock(slot);
    const at = s.base(slot) + DF_KICKS;
    Atomics.add(s.dom, at, 1);
    Atomics.notify(s.dom, at);
    this.kicker?.kick(s.field(slot, DF_DOMID));
  }

  /** Internal services for tests and the machine assembler (memory ownership, active pins). */
  get internals(): Services {
    return this.x;
  }
}
