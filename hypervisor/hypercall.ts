/**
 * The hypercall surface, bound to the calling domain: the one seam every kernel uses (like QEMU's
 * backend ops). Calls are synchronous and never block, as Xen hypercalls return immediately.
 *
 * Conventions, as in Xen: grant-table ops report per element in `status` (GNTST_*) and the batch
 * call returns 0 / -ENOSYS / -EINVAL; event-channel, domctl and sched ops return a value >= 0 or
 * -errno. Accessors with nothing to report through (page views, frame allocation) throw XenError.
 * Arguments a C caller could not express (a ref of -1, a domid of 70000) throw RangeError before
 * anything is changed. A domain that is dying or gone has no vCPU left: its hypercalls throw.
 */
import { checkUint } from './args.js';
import type { DomainConfig, DomainInfo, Domains } from './domain.js';
import { EINVAL, ENOMEM, ENOSYS, EPERM, ESRCH, XenError } from './errno.js';
import type { EventChannels, EvtchnFlowCounter, EvtchnStatus } from './event-channel.js';
import type {
  GnttabCopy,
  GnttabMapGrantRef,
  GnttabQuerySize,
  GnttabSetupTable,
  GnttabUnmapGrantRef,
  GrantTables,
} from './grant-table.js';
import {
  DOMID_SELF,
  DOMID_XEN,
  EVTCHNOP_alloc_unbound,
  EVTCHNOP_bind_interdomain,
  EVTCHNOP_bind_ipi,
  EVTCHNOP_bind_virq,
  EVTCHNOP_close,
  EVTCHNOP_send,
  EVTCHNOP_status,
  EVTCHNOP_unmask,
  GNTMAP_device_map,
  GNTMAP_host_map,
  GNTMAP_readonly,
  GNTTABOP_copy,
  GNTTABOP_map_grant_ref,
  GNTTABOP_query_size,
  GNTTABOP_setup_table,
  GNTTABOP_unmap_grant_ref,
  type GuestAbi,
} from './layout.js';
import type { MachineMemory } from './memory.js';
import type { ReadOnlyPage } from './readonly-page.js';
import {
  DF_ABI64,
  DF_MAX_EVTCHNS,
  DF_MAX_GRANT_FRAMES,
  DF_SHARED_INFO_MFN,
  DF_STATE,
  DF_VCPUS,
  DS_ALIVE,
  type SharedState,
} from './shared-state.js';

export interface Services {
  s: SharedState;
  mem: MachineMemory;
  grants: GrantTables;
  evtchn: EventChannels;
  domains: Domains;
}

/** What a PV kernel learns at boot (start_info + shared_info location). */
export interface StartInfo {
  domid: number;
  abi: GuestAbi;
  sharedInfoMfn: number;
  /** Ports 0..nrEvtchns-1 exist (min(max_evtchn_port + 1, 2-level limit)). */
  nrEvtchns: number;
  vcpus: number;
  maxGrantFrames: number;
}

export interface MapGrantOptions {
  readonly?: boolean;
  /** Also (or only, with host false) map for device DMA: GNTMAP_device_map. */
  device?: boolean;
  host?: boolean;
  hostAddr?: number;
}

export interface MapGrantResult {
  status: number;
  handle: number;
  devBusAddr: number;
  page: Uint8Array | ReadOnlyPage | undefined;
}

type GnttabOp = GnttabMapGrantRef | GnttabUnmapGrantRef | GnttabSetupTable | GnttabCopy | GnttabQuerySize;

export interface EvtchnAllocUnbound {
  dom: number;
  remoteDom: number;
  port?: number;
}
export interface EvtchnBindInterdomain {
  remoteDom: number;
  remotePort: number;
  localPort?: number;
}
export interface EvtchnBindVirq {
  virq: number;
  vcpu: number;
  port?: number;
}
export interface EvtchnBindIpi {
  vcpu: number;
  port?: number;
}
export interface EvtchnPortArg {
  port: number;
}
export interface EvtchnStatusArg {
  dom: number;
  port: number;
  result?: EvtchnStatus;
}

export class Hypercalls {
  readonly domid: number;
  private readonly slotAtBind: number;

  constructor(
    private readonly x: Services,
    domid: number,
  ) {
    this.domid = domid;
    this.slotAtBind = x.domains.slotOf(domid);
    if (this.slotAtBind < 0) throw new XenError(-ESRCH, `hypercalls: no domain ${domid}`);
  }

  /** The caller's slot; throws if the domain is no longer alive (it has no vCPU to call from). */
  private self(): number {
    const slot = this.x.domains.slotOf(this.domid);
    if (slot !== this.slotAtBind || this.x.s.field(slot, DF_STATE) !== DS_ALIVE) {
      throw new XenError(-ESRCH, `d${this.domid} is dying or destroyed and cannot make hypercalls`);
    }
    return slot;
  }

  private privileged(slot: number): boolean {
    return this.x.domains.isPrivileged(slot);
  }

  // ---------------- memory (XENMEM_*) ----------------

  /** XENMEM_populate_physmap of `n` frames; all or nothing. Throws XenError(-ENOMEM) when short. */
  allocPages(n: number): number[] {
    const slot = this.self();
    checkUint(n, 32, 'allocPages.n');
    const got = this.x.mem.alloc(this.domid, slot, n);
    if (!got) {
      throw new XenError(
        -ENOMEM,
        `d${this.domid}: ${n} page(s) wanted, ${this.x.mem.freeFrames()} free on the host, ` +
          `allowance ${this.x.domains.info(slot).maxPages - this.x.domains.info(slot).totPages}`,
      );
    }
    return got;
  }

  /** XENMEM_decrease_reservation of one frame the caller owns. */
  freePage(mfn: number): void {
    const slot = this.self();
    this.x.mem.checkMfn(mfn, 'freePage.mfn');
    const owner = this.x.mem.ownerOf(mfn);
    if (owner !== this.domid || this.x.mem.isPendingFree(mfn)) {
      throw new XenError(-EINVAL, `freePage: mfn ${mfn} is not a page of d${this.domid} (owner ${owner})`);
    }
    this.x.mem.release(mfn, slot);
  }

  /**
   * A view of one frame the caller owns, or a Xen frame shared with it (grant-table frames, its
   * shared_info). Foreign frames are reachable only through grant maps.
   */
  page(mfn: number): Uint8Array {
    this.self();
    this.x.mem.checkMfn(mfn, 'page.mfn');
    const owner = this.x.mem.ownerOf(mfn);
    const mine = owner === this.domid && !this.x.mem.isPendingFree(mfn);
    const shared = owner === DOMID_XEN && this.x.mem.sharedWith(mfn) === this.domid;
    if (!mine && !shared) {
      throw new XenError(-EPERM, `page: mfn ${mfn} does not belong to d${this.domid} (owner ${owner})`);
    }
    return this.x.mem.view(mfn);
  }

  startInfo(): StartInfo {
    const slot = this.self();
    const s = this.x.s;
    return {
      domid: this.domid,
      abi: s.field(slot, DF_ABI64) ? 'x86_64' : 'x86_32',
      sharedInfoMfn: s.field(slot, DF_SHARED_INFO_MFN),
      nrEvtchns: s.field(slot, DF_MAX_EVTCHNS),
      vcpus: s.field(slot, DF_VCPUS),
      maxGrantFrames: s.field(slot, DF_MAX_GRANT_FRAMES),
    };
  }

  // ---------------- sched ----------------

  /** SCHEDOP_shutdown. */
  shutdown(reason: number): number {
    this.self();
    return this.x.domains.shutdown(this.domid, reason);
  }

  /** SCHEDOP_block: mark the vCPU blocked until the next upcall (no-op if one is pending). */
  block(): void {
    this.x.domains.block(this.self());
  }

  // ---------------- domctl / sysctl (privileged) ----------------

  private requirePrivilege(): number {
    const slot = this.self();
    return this.privileged(slot) ? 0 : -EPERM;
  }

  /** XEN_DOMCTL_createdomain: the new domain is paused; returns its domid or -errno. */
  createDomain(config: DomainConfig = {}): number {
    const rc = this.requirePrivilege();
    if (rc) return rc;
    return this.x.domains.create(config);
  }

  destroyDomain(domid: number): number {
    const rc = this.requirePrivilege();
    if (rc) return rc;
    checkUint(domid, 16, 'destroyDomain.domid');
    return this.x.domains.destroy(this.domid, domid);
  }

  pauseDomain(domid: number): number {
    const rc = this.requirePrivilege();
    if (rc) return rc;
    checkUint(domid, 16, 'pauseDomain.domid');
    return this.x.domains.pause(this.domid, domid);
  }

  unpauseDomain(domid: number): number {
    const rc = this.requirePrivilege();
    if (rc) return rc;
    checkUint(domid, 16, 'unpauseDomain.domid');
    return this.x.domains.unpause(this.domid, domid);
  }

  /** SCHEDOP_remote_shutdown. */
  shutdownDomain(domid: number, reason: number): number {
    const rc = this.requirePrivilege();
    if (rc) return rc;
    checkUint(domid, 16, 'shutdownDomain.domid');
    return this.x.domains.shutdown(domid, reason);
  }

  /** XEN_DOMCTL_getdomaininfo: own info always; others need privilege. */
  domainInfo(domid: number = DOMID_SELF): DomainInfo | number {
    const slot = this.self();
    checkUint(domid, 16, 'domainInfo.domid');
    const d = domid === DOMID_SELF ? this.domid : domid;
    if (d !== this.domid && !this.privileged(slot)) return -EPERM;
    const target = this.x.domains.slotOf(d);
    if (target < 0) return -ESRCH;
    return this.x.domains.info(target);
  }

  /** XEN_SYSCTL_getdomaininfolist: what `xl list` prints. */
  domains(): DomainInfo[] | number {
    const rc = this.requirePrivilege();
    if (rc) return rc;
    return this.x.domains.list();
  }

  // ---------------- grant tables ----------------

  /**
   * HYPERVISOR_grant_table_op(cmd, ops, count). Every op is validated before any runs; each gets
   * its own `status`. Returns 0, -ENOSYS for an unknown or unsupported cmd.
   */
  grantTableOp(cmd: number, ops: readonly GnttabOp[]): number {
    const slot = this.self();
    if (!Array.isArray(ops)) throw new RangeError('grantTableOp: ops must be an array');
    const g = this.x.grants;
    const priv = this.privileged(slot);
    switch (cmd) {
      case GNTTABOP_map_grant_ref: {
        const list = ops as GnttabMapGrantRef[];
        for (let i = 0; i < list.length; i++) g.checkMap(list[i], i);
        for (const op of list) g.mapOne(slot, this.domid, op);
        return 0;
      }
      case GNTTABOP_unmap_grant_ref: {
        const list = ops as GnttabUnmapGrantRef[];
        for (let i = 0; i < list.length; i++) g.checkUnmap(list[i], i);
        for (const op of list) g.unmapOne(slot, op);
        return 0;
      }
      case GNTTABOP_setup_table: {
        const list = ops as GnttabSetupTable[];
        for (let i = 0; i < list.length; i++) g.checkSetup(list[i], i);
        for (const op of list) g.setupOne(this.domid, priv, op);
        return 0;
      }
      case GNTTABOP_copy: {
        const list = ops as GnttabCopy[];
        for (let i = 0; i < list.length; i++) g.checkCopy(list[i], i);
        for (const op of list) g.copyOne(slot, this.domid, op);
        return 0;
      }
      case GNTTABOP_query_size: {
        const list = ops as GnttabQuerySize[];
        for (let i = 0; i < list.length; i++) g.checkQuery(list[i], i);
        for (const op of list) g.queryOne(this.domid, priv, op);
        return 0;
      }
      default:
        // dump_table, transfer, unmap_and_replace, v2 ops: not modelled (blkif never uses them).
        return -ENOSYS;
    }
  }

  mapGrantRef(op: GnttabMapGrantRef): GnttabMapGrantRef {
    this.grantTableOp(GNTTABOP_map_grant_ref, [op]);
    return op;
  }

  unmapGrantRef(op: GnttabUnmapGrantRef): GnttabUnmapGrantRef {
    this.grantTableOp(GNTTABOP_unmap_grant_ref, [op]);
    return op;
  }

  grantCopy(op: GnttabCopy): GnttabCopy {
    this.grantTableOp(GNTTABOP_copy, [op]);
    return op;
  }

  setupTable(nrFrames: number, dom: number = DOMID_SELF): GnttabSetupTable {
    const op: GnttabSetupTable = { dom, nrFrames };
    this.grantTableOp(GNTTABOP_setup_table, [op]);
    return op;
  }

  querySize(dom: number = DOMID_SELF): GnttabQuerySize {
    const op: GnttabQuerySize = { dom };
    this.grantTableOp(GNTTABOP_query_size, [op]);
    return op;
  }

  /** Map one grant (host mapping by default); the result carries the page view. */
  mapGrant(dom: number, ref: number, options: MapGrantOptions = {}): MapGrantResult {
    let flags = 0;
    if (options.host ?? true) flags |= GNTMAP_host_map;
    if (options.device) flags |= GNTMAP_device_map;
    if (options.readonly) flags |= GNTMAP_readonly;
    const op = this.mapGrantRef({ hostAddr: options.hostAddr ?? 0, flags, ref, dom });
    return {
      status: op.status ?? -1,
      handle: op.handle ?? -1,
      devBusAddr: op.devBusAddr ?? 0,
      page: op.page,
    };
  }

  /**
   * Remove every mapping a handle holds (what gntdev/blkback do when they pass the address they
   * mapped at and the bus address Xen returned). Returns the GNTST status.
   */
  unmapGrant(handle: number): number {
    const slot = this.self();
    checkUint(handle, 32, 'unmapGrant.handle');
    const op: GnttabUnmapGrantRef = { hostAddr: 0, devBusAddr: 0, handle };
    this.x.grants.unmapOne(slot, op, true);
    return op.status as number;
  }

  // ---------------- event channels ----------------

  evtchnAllocUnbound(remoteDom: number, dom: number = DOMID_SELF): number {
    const slot = this.self();
    return this.x.evtchn.allocUnbound(slot, this.domid, this.privileged(slot), dom, remoteDom);
  }

  evtchnBindInterdomain(remoteDom: number, remotePort: number): number {
    return this.x.evtchn.bindInterdomain(this.self(), this.domid, remoteDom, remotePort);
  }

  evtchnBindVirq(virq: number, vcpu = 0): number {
    return this.x.evtchn.bindVirq(this.self(), virq, vcpu);
  }

  evtchnBindIpi(vcpu = 0): number {
    return this.x.evtchn.bindIpi(this.self(), vcpu);
  }

  evtchnSend(port: number): number {
    return this.x.evtchn.send(this.self(), this.domid, port);
  }

  /** Trace instrumentation, not a hypercall: the flow id of this thread's last evtchnSend (0: none). */
  evtchnLastSendFlow(): number {
    return this.x.evtchn.lastSendFlow;
  }

  /** Fault instrumentation, not a hypercall: where this thread's last evtchnSend went when a loss fault ate it. */
  evtchnLastSendLost(): { domid: number; port: number } | undefined {
    return this.x.evtchn.lastSendLost;
  }

  /** Trace instrumentation, not a hypercall: the flow id the next evtchnSend(port) will get (0: none). */
  evtchnNextSendFlow(port: number): number {
    return this.x.evtchn.nextSendFlow(this.self(), this.domid, port);
  }

  /** Trace instrumentation, not a hypercall: where Xen counts the sends delivered to one of our ports. */
  evtchnFlowCounter(port: number): EvtchnFlowCounter | undefined {
    return this.x.evtchn.flowCounter(this.self(), port);
  }

  evtchnClose(port: number): number {
    return this.x.evtchn.close(this.self(), this.domid, port);
  }

  evtchnUnmask(port: number): number {
    return this.x.evtchn.unmask(this.self(), port);
  }

  evtchnStatus(port: number, dom: number = DOMID_SELF): EvtchnStatus | number {
    const slot = this.self();
    return this.x.evtchn.status(slot, this.domid, this.privileged(slot), dom, port);
  }

  /** HYPERVISOR_event_channel_op(cmd, arg): OUT fields are written into `arg`. */
  eventChannelOp(
    cmd: number,
    arg:
      | EvtchnAllocUnbound
      | EvtchnBindInterdomain
      | EvtchnBindVirq
      | EvtchnBindIpi
      | EvtchnPortArg
      | EvtchnStatusArg,
  ): number {
    const keep = (rc: number, set: (v: number) => void): number => {
      if (rc < 0) return rc;
      set(rc);
      return 0;
    };
    switch (cmd) {
      case EVTCHNOP_alloc_unbound: {
        const a = arg as EvtchnAllocUnbound;
        return keep(this.evtchnAllocUnbound(a.remoteDom, a.dom), (v) => (a.port = v));
      }
      case EVTCHNOP_bind_interdomain: {
        const a = arg as EvtchnBindInterdomain;
        return keep(this.evtchnBindInterdomain(a.remoteDom, a.remotePort), (v) => (a.localPort = v));
      }
      case EVTCHNOP_bind_virq: {
        const a = arg as EvtchnBindVirq;
        return keep(this.evtchnBindVirq(a.virq, a.vcpu), (v) => (a.port = v));
      }
      case EVTCHNOP_bind_ipi: {
        const a = arg as EvtchnBindIpi;
        return keep(this.evtchnBindIpi(a.vcpu), (v) => (a.port = v));
      }
      case EVTCHNOP_send:
        return this.evtchnSend((arg as EvtchnPortArg).port);
      case EVTCHNOP_close:
        return this.evtchnClose((arg as EvtchnPortArg).port);
      case EVTCHNOP_unmask:
        return this.evtchnUnmask((arg as EvtchnPortArg).port);
      case EVTCHNOP_status: {
        const a = arg as EvtchnStatusArg;
        const r = this.evtchnStatus(a.port, a.dom);
        if (typeof r === 'number') return r;
        a.result = r;
        return 0;
      }
      default:
        // bind_pirq, bind_vcpu, reset and the FIFO ABI ops are not modelled.
        this.self();
        return -ENOSYS;
    }
  }
}
