/**
 * Event channels, 2-level ABI (xen/common/event_channel.c, event_2l.c): per-domain port tables in
 * Xen-owned frames, delivery through the shared_info bitmaps, EVTCHNOP_* with Xen's error codes.
 *
 * Port entry (16 bytes, our layout of Xen's struct evtchn): word 0 = state | vcpu << 8 |
 * remote domid << 16 (the allowed peer while unbound), word 1 = remote port (or VIRQ number),
 * word 2 = the port's allocation serial, word 3 = sends delivered to it (trace flows, below).
 *
 * Every port below the domain's limit is valid (Xen grows its buckets lazily, which only changes
 * whether EVTCHNOP_status of a never-used high port says -EINVAL or closed; we say closed).
 *
 * Locks: a domain's DF_LOCK_EVTCHN guards its port table; two are taken in slot order. Kicks are
 * made after the locks are dropped.
 *
 * Trace flows (not in Xen): send is the one place both ends of a channel meet, so it numbers the
 * notifications. Each port gets a host-unique serial when it is allocated and counts the sends
 * delivered to it (one Atomics.add, before the pending bit is set); a send's flow id is
 * serial * 2^30 + count. The receiver reads the count after clearing the pending bit and owns every
 * number it has not seen: sends whose count it read are delivered by the handler it is about to run,
 * and a later send sets the bit again, so it is answered by a later upcall. The sender learns the id
 * beforehand (nextSendFlow) so that it can trace the send before the receiver can see it.
 */
import { checkUint } from './args.js';
import { EEXIST, EINVAL, ENOENT, ENOSPC, EPERM, ESRCH } from './errno.js';
import type { EvtchnLossTable } from './evtchn-loss.js';
import {
  DOMID_SELF,
  DOMID_XEN,
  ECS_FREE,
  ECS_INTERDOMAIN,
  ECS_IPI,
  ECS_RESERVED,
  ECS_UNBOUND,
  ECS_VIRQ,
  EVTCHNSTAT_closed,
  EVTCHNSTAT_interdomain,
  EVTCHNSTAT_ipi,
  EVTCHNSTAT_unbound,
  EVTCHNSTAT_virq,
  GLOBAL_VIRQS,
  NR_VIRQS,
  PAGE_SIZE,
  SHARED_INFO_X86_32,
  SHARED_INFO_X86_64,
} from './layout.js';
import type { MachineMemory } from './memory.js';
import { SharedInfoBits } from './shared-info.js';
import {
  DF_ABI64,
  DF_DOMID,
  DF_EVTCHN_FRAMES,
  DF_LOCK_EVTCHN,
  DF_MAX_EVTCHNS,
  DF_SHARED_INFO_MFN,
  DF_STATE,
  DF_VCPUS,
  DF_VIRQ_BASE,
  DS_ALIVE,
  DS_FREE,
  EVTCHN_ENTRY_SIZE,
  EVTCHN_PER_FRAME,
  H_GLOBAL_VIRQ_BASE,
  H_NEXT_EVTCHN_SERIAL,
  type SharedState,
} from './shared-state.js';
import { spinLock, spinUnlock } from './spinlock.js';

export interface EvtchnStatus {
  status: number;
  vcpu: number;
  /** unbound: the domain allowed to bind; interdomain: the peer. */
  dom?: number;
  /** interdomain: the peer's port. */
  port?: number;
  /** virq: the VIRQ number. */
  virq?: number;
}

interface Port {
  state: number;
  vcpu: number;
  remoteDom: number;
  remotePort: number;
}

export type Kick = (slot: number, vcpu: number) => void;

/** Sends counted per port allocation before flow ids repeat (the count's low 30 bits). */
export const EVTCHN_FLOW_SEQ_BITS = 30;
const FLOW_SEQ_SPAN = 2 ** EVTCHN_FLOW_SEQ_BITS;
const FLOW_SEQ_MASK = FLOW_SEQ_SPAN - 1;
/** Port allocations per host before serials repeat: serial * 2^30 must stay a safe integer. */
export const EVTCHN_FLOW_SERIALS = 2 ** (53 - EVTCHN_FLOW_SEQ_BITS) - 1;
const WORD_SERIAL = 2;
const WORD_SENDS = 3;

/** The trace flow id of the `count`-th send (an int32 counter value) to a port with `serial`. */
export function evtchnFlowId(serial: number, count: number): number {
  return serial * FLOW_SEQ_SPAN + (count & FLOW_SEQ_MASK);
}

/** Where a port's delivered-send count lives, for the receiver's upcall (trace instrumentation). */
export interface EvtchnFlowCounter {
  /** The port's allocation serial (1..EVTCHN_FLOW_SERIALS). */
  readonly serial: number;
  /** `Atomics.load(words, index)` is the int32 count of sends delivered to the port so far. */
  readonly words: Int32Array;
  readonly index: number;
}

export class EventChannels {
  /**
   * Flow id of this thread's last EVTCHNOP_send, 0 when it reached no bound port (dropped or failed).
   * Read right after the call (trace instrumentation; one thread never interleaves two sends).
   */
  lastSendFlow = 0;
  /** This thread's last EVTCHNOP_send was swallowed by an armed loss fault: the target it would reach. */
  lastSendLost: { domid: number; port: number } | undefined;
  /** Fault hook (evtchn-loss.ts): armed drops of notifications, shared by every worker. */
  loss: EvtchnLossTable | undefined;

  constructor(
    private readonly s: SharedState,
    private readonly mem: MachineMemory,
    private readonly kick: Kick,
  ) {}

  // ---- table helpers ----

  private portWord(slot: number, port: number): number {
    const mfn = this.s.dom[this.s.base(slot) + this.s.evtchnListAt + Math.floor(port / EVTCHN_PER_FRAME)];
    return (mfn * PAGE_SIZE + (port % EVTCHN_PER_FRAME) * EVTCHN_ENTRY_SIZE) >>> 2;
  }

  private read(slot: number, port: number): Port {
    const w = this.portWord(slot, port);
    const w0 = Atomics.load(this.s.mem32, w);
    return {
      state: w0 & 0xff,
      vcpu: (w0 >>> 8) & 0xff,
      remoteDom: w0 >>> 16,
      remotePort: Atomics.load(this.s.mem32, w + 1) >>> 0,
    };
  }

  private write(slot: number, port: number, p: Port): void {
    const w = this.portWord(slot, port);
    Atomics.store(this.s.mem32, w + 1, p.remotePort | 0);
    Atomics.store(this.s.mem32, w, p.state | (p.vcpu << 8) | (p.remoteDom << 16));
  }

  /** A newly allocated port: a fresh serial and no sends yet (table lock held). */
  private stampSerial(slot: number, port: number): void {
    const w = this.portWord(slot, port);
    const serial = (Atomics.add(this.s.ctl, H_NEXT_EVTCHN_SERIAL, 1) >>> 0) % EVTCHN_FLOW_SERIALS;
    Atomics.store(this.s.mem32, w + WORD_SENDS, 0);
    Atomics.store(this.s.mem32, w + WORD_SERIAL, serial + 1);
  }

  /** Count one send delivered to a port and return its flow id (the receiver's table lock held). */
  private countSend(slot: number, port: number): number {
    const w = this.portWord(slot, port);
    const count = Atomics.add(this.s.mem32, w + WORD_SENDS, 1) + 1;
    return evtchnFlowId(Atomics.load(this.s.mem32, w + WORD_SERIAL), count);
  }

  /**
   * The flow id the next EVTCHNOP_send on `port` will get, or 0 when it would be dropped or fail. The
   * sender traces its send before making it, so the receiver's upcall can never be traced first; only
   * the port's own domain sends on it, so nothing else moves the count in between. Lock-free reads:
   * a binding changed meanwhile by the peer makes the send drop, and the traced id go unanswered.
   */
  nextSendFlow(lslot: number, ldomid: number, port: number): number {
    if (!this.isValid(lslot, port)) return 0;
    const p = this.read(lslot, port);
    let slot = lslot;
    let tport = port;
    if (p.state === ECS_INTERDOMAIN) {
      slot = p.remoteDom === ldomid ? lslot : this.slotOfLive(p.remoteDom);
      if (slot < 0 || !this.isValid(slot, p.remotePort)) return 0;
      const r = this.read(slot, p.remotePort);
      if (r.state !== ECS_INTERDOMAIN || r.remoteDom !== ldomid || r.remotePort !== port) return 0;
      tport = p.remotePort;
    } else if (p.state !== ECS_IPI) {
      return 0;
    }
    // A send the loss fault will swallow gets no flow id: the receiver never answers it.
    if (this.loss !== undefined && this.loss.pending(this.s.field(slot, DF_DOMID), tport) > 0) return 0;
    const w = this.portWord(slot, tport);
    return evtchnFlowId(
      Atomics.load(this.s.mem32, w + WORD_SERIAL),
      Atomics.load(this.s.mem32, w + WORD_SENDS) + 1,
    );
  }

  /** The delivered-send counter of one of `slot`'s ports, or undefined for a port that is not in use. */
  flowCounter(slot: number, port: number): EvtchnFlowCounter | undefined {
    if (!this.isValid(slot, port) || port === 0) return undefined;
    const w = this.portWord(slot, port);
    if ((Atomics.load(this.s.mem32, w) & 0xff) === ECS_FREE) return undefined;
    return {
      serial: Atomics.load(this.s.mem32, w + WORD_SERIAL),
      words: this.s.mem32,
      index: w + WORD_SENDS,
    };
  }

  private isValid(slot: number, port: number): boolean {
    return Number.isInteger(port) && port >= 0 && port < this.s.field(slot, DF_MAX_EVTCHNS);
  }

  bits(slot: number): SharedInfoBits {
    const layout = this.s.field(slot, DF_ABI64) ? SHARED_INFO_X86_64 : SHARED_INFO_X86_32;
    return new SharedInfoBits(this.s.memory, this.s.mem32, this.s.field(slot, DF_SHARED_INFO_MFN), layout);
  }

  private lock(slot: number): void {
    spinLock(this.s.dom, this.s.base(slot) + DF_LOCK_EVTCHN, this.s.token, 'event channels', slot);
  }

  private unlock(slot: number): void {
    spinUnlock(this.s.dom, this.s.base(slot) + DF_LOCK_EVTCHN, this.s.token, 'event channels', slot);
  }

  /** Lock two domains' tables in slot order (once if they are the same). */
  private lock2(a: number, b: number): void {
    if (a === b) {
      this.lock(a);
      return;
    }
    this.lock(Math.min(a, b));
    this.lock(Math.max(a, b));
  }

  private unlock2(a: number, b: number): void {
    this.unlock(Math.max(a, b));
    if (a !== b) this.unlock(Math.min(a, b));
  }

  /** Resolve a live domain and check the slot was not recycled (caller holds no lock). */
  private slotOfLive(domid: number): number {
    const slot = this.s.slotOf(domid);
    if (slot < 0 || this.s.field(slot, DF_STATE) === DS_FREE || this.s.field(slot, DF_DOMID) !== domid)
      return -1;
    return slot;
  }

  // ---- lifetime ----

  /** evtchn_init: port table frames for min(max_evtchn_port + 1, ABI limit) ports; port 0 reserved. */
  init(slot: number, maxEvtchnPort: number, abi64: boolean): boolean {
    const limit = abi64 ? SHARED_INFO_X86_64.nrChannels : SHARED_INFO_X86_32.nrChannels;
    const nr = Math.min(maxEvtchnPort + 1, limit);
    const frames = Math.ceil(nr / EVTCHN_PER_FRAME);
    const got = this.mem.alloc(DOMID_XEN, -1, frames);
    if (!got) return false;
    const base = this.s.base(slot);
    for (let i = 0; i < frames; i++) this.s.dom[base + this.s.evtchnListAt + i] = got[i];
    this.s.setField(slot, DF_EVTCHN_FRAMES, frames);
    this.s.setField(slot, DF_MAX_EVTCHNS, nr);
    for (let v = 0; v < NR_VIRQS; v++) this.s.setField(slot, DF_VIRQ_BASE + v, 0);
    this.write(slot, 0, { state: ECS_RESERVED, vcpu: 0, remoteDom: 0, remotePort: 0 });
    return true;
  }

  teardown(slot: number): void {
    const base = this.s.base(slot);
    const frames = this.s.field(slot, DF_EVTCHN_FRAMES);
    for (let i = 0; i < frames; i++) this.mem.release(this.s.dom[base + this.s.evtchnListAt + i], -1);
    this.s.setField(slot, DF_EVTCHN_FRAMES, 0);
    this.s.setField(slot, DF_MAX_EVTCHNS, 0);
  }

  /** evtchn_destroy: close every port of a dying domain; interdomain peers return to unbound. */
  closeAll(slot: number, domid: number): void {
    const nr = this.s.field(slot, DF_MAX_EVTCHNS);
    for (let port = 1; port < nr; port++) {
      if (this.read(slot, port).state !== ECS_FREE) this.closePort(slot, domid, port);
    }
  }

  /** Lowest free port (get_free_port); table lock held. */
  private freePort(slot: number): number {
    if (this.s.field(slot, DF_STATE) !== DS_ALIVE) return -EINVAL;
    const nr = this.s.field(slot, DF_MAX_EVTCHNS);
    for (let port = 1; port < nr; port++) {
      if ((Atomics.load(this.s.mem32, this.portWord(slot, port)) & 0xff) === ECS_FREE) return port;
    }
    return -ENOSPC;
  }

  /** evtchn_port_set_pending + vcpu kick; the caller has dropped its locks or holds only table locks. */
  private setPending(slot: number, port: number, vcpu: number): void {
    if (this.bits(slot).setPending(port, vcpu)) this.kick(slot, vcpu);
  }

  // ---- EVTCHNOP_alloc_unbound ----

  allocUnbound(lslot: number, ldomid: number, privileged: boolean, dom: number, remoteDom: number): number {
    checkUint(dom, 16, 'alloc_unbound.dom');
    checkUint(remoteDom, 16, 'alloc_unbound.remote_dom');
    const d = dom === DOMID_SELF ? ldomid : dom;
    const slot = d === ldomid ? lslot : this.slotOfLive(d);
    if (slot < 0) return -ESRCH;
    if (d !== ldomid && !privileged) return -EPERM;
    const rdom = remoteDom === DOMID_SELF ? ldomid : remoteDom;
    this.lock(slot);
    try {
      const port = this.freePort(slot);
      if (port < 0) return port;
      this.write(slot, port, { state: ECS_UNBOUND, vcpu: 0, remoteDom: rdom, remotePort: 0 });
      this.stampSerial(slot, port);
      return port;
    } finally {
      this.unlock(slot);
    }
  }

  // ---- EVTCHNOP_bind_interdomain ----

  bindInterdomain(lslot: number, ldomid: number, remoteDom: number, remotePort: number): number {
    checkUint(remoteDom, 16, 'bind_interdomain.remote_dom');
    checkUint(remotePort, 32, 'bind_interdomain.remote_port');
    const rdom = remoteDom === DOMID_SELF ? ldomid : remoteDom;
    const rslot = rdom === ldomid ? lslot : this.slotOfLive(rdom);
    if (rslot < 0) return -ESRCH;
    let lport: number;
    let vcpu = 0;
    this.lock2(lslot, rslot);
    try {
      if (this.s.field(rslot, DF_DOMID) !== rdom) return -ESRCH;
      lport = this.freePort(lslot);
      if (lport < 0) return lport;
      if (!this.isValid(rslot, remotePort)) return -EINVAL;
      const r = this.read(rslot, remotePort);
      if (r.state !== ECS_UNBOUND || r.remoteDom !== ldomid) return -EINVAL;
      this.write(lslot, lport, { state: ECS_INTERDOMAIN, vcpu: 0, remoteDom: rdom, remotePort });
      this.stampSerial(lslot, lport);
      this.write(rslot, remotePort, {
        state: ECS_INTERDOMAIN,
        vcpu: r.vcpu,
        remoteDom: ldomid,
        remotePort: lport,
      });
      vcpu = 0;
    } finally {
      this.unlock2(lslot, rslot);
    }
    // Always pending at first: covers sends made while the remote end was unbound.
    this.setPending(lslot, lport, vcpu);
    return lport;
  }

  // ---- EVTCHNOP_bind_virq / EVTCHNOP_bind_ipi ----

  bindVirq(lslot: number, virq: number, vcpu: number): number {
    checkUint(virq, 32, 'bind_virq.virq');
    checkUint(vcpu, 32, 'bind_virq.vcpu');
    if (virq >= NR_VIRQS) return -EINVAL;
    if (GLOBAL_VIRQS.has(virq) && vcpu !== 0) return -EINVAL;
    if (vcpu >= this.s.field(lslot, DF_VCPUS)) return -ENOENT;
    this.lock(lslot);
    try {
      if (this.s.field(lslot, DF_VIRQ_BASE + virq) !== 0) return -EEXIST;
      const port = this.freePort(lslot);
      if (port < 0) return port;
      this.write(lslot, port, { state: ECS_VIRQ, vcpu, remoteDom: 0, remotePort: virq });
      this.stampSerial(lslot, port);
      this.s.setField(lslot, DF_VIRQ_BASE + virq, port);
      return port;
    } finally {
      this.unlock(lslot);
    }
  }

  bindIpi(lslot: number, vcpu: number): number {
    checkUint(vcpu, 32, 'bind_ipi.vcpu');
    if (vcpu >= this.s.field(lslot, DF_VCPUS)) return -ENOENT;
    this.lock(lslot);
    try {
      const port = this.freePort(lslot);
      if (port < 0) return port;
      this.write(lslot, port, { state: ECS_IPI, vcpu, remoteDom: 0, remotePort: 0 });
      this.stampSerial(lslot, port);
      return port;
    } finally {
      this.unlock(lslot);
    }
  }

  /** send_guest_vcpu_virq for vCPU 0 of one domain; dropped if the VIRQ is not bound. */
  sendVirq(slot: number, virq: number): void {
    let port = 0;
    let vcpu = 0;
    this.lock(slot);
    try {
      port = this.s.field(slot, DF_VIRQ_BASE + virq);
      if (port !== 0) vcpu = this.read(slot, port).vcpu;
    } finally {
      this.unlock(slot);
    }
    if (port !== 0) this.setPending(slot, port, vcpu);
  }

  /** send_global_virq: to the domain that handles it (the hardware domain, d0, by default). */
  sendGlobalVirq(virq: number): void {
    const handler = Atomics.load(this.s.ctl, H_GLOBAL_VIRQ_BASE + virq);
    const slot = this.slotOfLive(Math.max(handler, 0));
    if (slot >= 0 && this.s.field(slot, DF_STATE) === DS_ALIVE) this.sendVirq(slot, virq);
  }

  // ---- EVTCHNOP_send ----

  /** The loss fault takes this send: it is dropped before the pending bit (and the flow count) moves. */
  private lose(domid: number, port: number): boolean {
    if (this.loss === undefined || !this.loss.consume(domid, port)) return false;
    this.lastSendLost = { domid, port };
    return true;
  }

  send(lslot: number, ldomid: number, port: number): number {
    this.lastSendFlow = 0;
    this.lastSendLost = undefined;
    checkUint(port, 32, 'send.port');
    let target = -1;
    let tport = 0;
    let tvcpu = 0;
    this.lock(lslot);
    let remoteDom = 0;
    let remotePort = 0;
    try {
      if (!this.isValid(lslot, port)) return -EINVAL;
      const p = this.read(lslot, port);
      switch (p.state) {
        case ECS_INTERDOMAIN:
          remoteDom = p.remoteDom;
          remotePort = p.remotePort;
          break;
        case ECS_IPI:
          if (this.lose(ldomid, port)) return 0;
          target = lslot;
          tport = port;
          tvcpu = p.vcpu;
          this.lastSendFlow = this.countSend(lslot, port);
          break;
        case ECS_UNBOUND:
          return 0; // silently dropped
        default:
          return -EINVAL;
      }
    } finally {
      this.unlock(lslot);
    }
    if (target < 0) {
      // Interdomain: re-read the peer end under its own lock; if it was closed meanwhile, drop.
      const rslot = remoteDom === ldomid ? lslot : this.slotOfLive(remoteDom);
      if (rslot < 0) return 0;
      this.lock(rslot);
      try {
        const r = this.read(rslot, remotePort);
        if (r.state !== ECS_INTERDOMAIN || r.remoteDom !== ldomid || r.remotePort !== port) return 0;
        if (this.lose(remoteDom, remotePort)) return 0;
        target = rslot;
        tport = remotePort;
        tvcpu = r.vcpu;
        this.lastSendFlow = this.countSend(rslot, remotePort);
      } finally {
        this.unlock(rslot);
      }
    }
    this.setPending(target, tport, tvcpu);
    return 0;
  }

  // ---- EVTCHNOP_close ----

  close(lslot: number, ldomid: number, port: number): number {
    checkUint(port, 32, 'close.port');
    if (!this.isValid(lslot, port)) return -EINVAL;
    return this.closePort(lslot, ldomid, port);
  }

  private closePort(slot: number, domid: number, port: number): number {
    for (;;) {
      this.lock(slot);
      const p = this.read(slot, port);
      if (p.state === ECS_INTERDOMAIN) {
        // Need the peer's lock too: drop ours, take both in order, re-check (Xen's "goto again").
        this.unlock(slot);
        const rslot = p.remoteDom === domid ? slot : this.slotOfLive(p.remoteDom);
        if (rslot < 0)
          throw new Error(`evtchn close: d${domid} port ${port} bound to missing d${p.remoteDom}`);
        this.lock2(slot, rslot);
        try {
          const again = this.read(slot, port);
          if (
            again.state !== ECS_INTERDOMAIN ||
            again.remoteDom !== p.remoteDom ||
            again.remotePort !== p.remotePort
          ) {
            continue;
          }
          const r = this.read(rslot, p.remotePort);
          this.write(rslot, p.remotePort, {
            state: ECS_UNBOUND,
            vcpu: r.vcpu,
            remoteDom: domid,
            remotePort: 0,
          });
          this.free(slot, port);
          return 0;
        } finally {
          this.unlock2(slot, rslot);
        }
      }
      try {
        switch (p.state) {
          case ECS_FREE:
          case ECS_RESERVED:
            return -EINVAL;
          case ECS_VIRQ:
            if (this.s.field(slot, DF_VIRQ_BASE + p.remotePort) === port) {
              this.s.setField(slot, DF_VIRQ_BASE + p.remotePort, 0);
            }
            break;
          case ECS_UNBOUND:
          case ECS_IPI:
            break;
          default:
            return -EINVAL;
        }
        this.free(slot, port);
        return 0;
      } finally {
        this.unlock(slot);
      }
    }
  }

  /** evtchn_free: state free, pending cleared, notify vCPU back to 0. */
  private free(slot: number, port: number): void {
    this.write(slot, port, { state: ECS_FREE, vcpu: 0, remoteDom: 0, remotePort: 0 });
    this.bits(slot).clearPending(port);
  }

  // ---- EVTCHNOP_unmask ----

  unmask(lslot: number, port: number): number {
    checkUint(port, 32, 'unmask.port');
    if (!this.isValid(lslot, port)) return -EINVAL;
    const vcpu = this.read(lslot, port).vcpu;
    if (this.bits(lslot).unmask(port, vcpu)) this.kick(lslot, vcpu);
    return 0;
  }

  // ---- EVTCHNOP_status ----

  status(
    lslot: number,
    ldomid: number,
    privileged: boolean,
    dom: number,
    port: number,
  ): EvtchnStatus | number {
    checkUint(dom, 16, 'status.dom');
    checkUint(port, 32, 'status.port');
    const d = dom === DOMID_SELF ? ldomid : dom;
    const slot = d === ldomid ? lslot : this.slotOfLive(d);
    if (slot < 0) return -ESRCH;
    if (d !== ldomid && !privileged) return -EPERM;
    if (!this.isValid(slot, port)) return -EINVAL;
    this.lock(slot);
    try {
      const p = this.read(slot, port);
      switch (p.state) {
        case ECS_UNBOUND:
          return { status: EVTCHNSTAT_unbound, vcpu: p.vcpu, dom: p.remoteDom };
        case ECS_INTERDOMAIN:
          return { status: EVTCHNSTAT_interdomain, vcpu: p.vcpu, dom: p.remoteDom, port: p.remotePort };
        case ECS_VIRQ:
          return { status: EVTCHNSTAT_virq, vcpu: p.vcpu, virq: p.remotePort };
        case ECS_IPI:
          return { status: EVTCHNSTAT_ipi, vcpu: p.vcpu };
        default:
          return { status: EVTCHNSTAT_closed, vcpu: p.vcpu };
      }
    } finally {
      this.unlock(slot);
    }
  }

  /** Raw state of a port (ECS_*), for listings and tests. */
  portState(slot: number, port: number): number {
    return this.isValid(slot, port) ? this.read(slot, port).state : ECS_FREE;
  }
}
