/**
 * The guest kernel's event-channel layer, 2-level ABI (Linux drivers/xen/events/events_base.c and
 * events_2l.c): per-port handlers, masking, and the upcall handler that scans the shared_info
 * bitmaps.
 *
 * Upcall convention: clear evtchn_upcall_pending, exchange evtchn_pending_sel with 0, then for each
 * selected word scan pending & ~mask, clearing each pending bit before calling that port's handler
 * (edge semantics: one bit, not a counter); repeat while upcall_pending was raised again.
 * Simplification: ports are scanned from the lowest each time (Linux resumes where it stopped for
 * fairness) and everything is delivered on vCPU 0.
 *
 * Closing a port while its handler runs is safe (XSA-332): handlers are looked up at dispatch time,
 * so the running one finishes and no further call is made for that port. Handlers are synchronous;
 * one that starts asynchronous work owns that work's lifetime.
 *
 * Trace flows (with an env): notify() emits `evtchn-send` with the flow id Xen will give the send
 * (emitted just before it, so in the threads engine the peer's upcall never precedes it), and the
 * upcall emits `evtchn-upcall` for a port, before its handler runs, with the ids of every send it
 * delivers (several when sends coalesced into one pending bit). The ids come from the receiving
 * port's delivered-send count in Xen's port table (hypervisor/event-channel.ts), read once per port
 * handled, after its pending bit is cleared; an upcall that delivers no new send (the bind-time event,
 * a VIRQ) emits nothing.
 */
import type { Env, Tracer } from '../emulator/runtime/engine.js';
import { evtchnFlowId } from '../hypervisor/event-channel.js';
import type { Hypercalls } from '../hypervisor/hypercall.js';
import {
  type SharedInfoLayout,
  sharedInfoLayout,
  VCPU_INFO_UPCALL_MASK,
  VCPU_INFO_UPCALL_PENDING,
} from '../hypervisor/layout.js';

export type PortHandler = (port: number) => void;

export type EventHypercalls = Pick<
  Hypercalls,
  | 'startInfo'
  | 'page'
  | 'evtchnAllocUnbound'
  | 'evtchnBindInterdomain'
  | 'evtchnBindVirq'
  | 'evtchnBindIpi'
  | 'evtchnSend'
  | 'evtchnClose'
  | 'evtchnUnmask'
> &
  // Trace instrumentation; hand-made surfaces may leave it out (then nothing is traced).
  Partial<Pick<Hypercalls, 'evtchnNextSendFlow' | 'evtchnFlowCounter' | 'evtchnLastSendLost'>>;

export interface GuestEventsOptions {
  /** Trace flows through this env (attach() sets it too). */
  env?: Env;
}

/** Flow ids listed in one evtchn-upcall at most; a larger backlog is summarised by `unlisted`. */
export const MAX_UPCALL_FLOWS = 1024;

export class GuestEvents {
  private readonly hc: EventHypercalls;
  private readonly layout: SharedInfoLayout;
  private readonly u8: Uint8Array;
  private readonly u32: Int32Array;
  private readonly pendingAt: number;
  private readonly maskAt: number;
  private readonly selAt: number;
  readonly nrPorts: number;
  private readonly handlers = new Map<number, PortHandler>();
  private inUpcall = false;
  private upcallAgain = false;
  private trace: Tracer | undefined;
  /** Per port: where Xen counts the sends delivered to it (0: unknown), its serial, and the count seen. */
  private readonly flowIndex: Int32Array;
  private readonly flowSerial: Int32Array;
  private readonly flowSeen: Int32Array;
  private flowWords: Int32Array | undefined;

  constructor(hc: EventHypercalls, options: GuestEventsOptions = {}) {
    this.hc = hc;
    this.trace = options.env?.trace;
    const info = hc.startInfo();
    this.layout = sharedInfoLayout(info.abi);
    this.nrPorts = info.nrEvtchns;
    const view = hc.page(info.sharedInfoMfn);
    this.u8 = view;
    this.u32 = new Int32Array(view.buffer, view.byteOffset, view.byteLength / 4);
    this.pendingAt = this.layout.evtchnPendingOffset / 4;
    this.maskAt = this.layout.evtchnMaskOffset / 4;
    this.selAt = this.layout.pendingSelOffset / 4; // vcpu_info[0]
    this.flowIndex = new Int32Array(this.nrPorts);
    this.flowSerial = new Int32Array(this.nrPorts);
    this.flowSeen = new Int32Array(this.nrPorts);
    // xen_evtchn_mask_all: every port starts masked; binding unmasks.
    for (let port = 0; port < this.nrPorts; port += 32)
      Atomics.store(this.u32, this.maskAt + (port >>> 5), -1);
  }

  /** Run this domain's upcalls through the engine. */
  attach(env: Env): void {
    this.trace ??= env.trace;
    env.onUpcall(() => {
      this.handleUpcall();
    });
  }

  private checkPort(port: number, what: string): void {
    if (!Number.isInteger(port) || port <= 0 || port >= this.nrPorts) {
      throw new RangeError(`${what}: port ${port} is not a usable event channel (1..${this.nrPorts - 1})`);
    }
  }

  // ---------------- binding ----------------

  /** Attach a handler to a port this domain owns and unmask it. */
  bind(port: number, handler: PortHandler): void {
    this.checkPort(port, 'bind');
    if (this.handlers.has(port)) throw new RangeError(`bind: port ${port} already has a handler`);
    this.handlers.set(port, handler);
    this.learnFlowCounter(port);
    this.unmask(port);
  }

  /**
   * Where Xen counts this port's delivered sends. A new allocation (new serial) starts from zero, so
   * sends made before the handler was bound are delivered, and traced, by its first upcall; a port
   * unbound and bound again keeps what it had seen.
   */
  private learnFlowCounter(port: number): void {
    const c = this.hc.evtchnFlowCounter?.(port);
    if (c === undefined) {
      this.flowIndex[port] = 0;
      return;
    }
    this.flowWords = c.words;
    this.flowIndex[port] = c.index;
    if (this.flowSerial[port] !== c.serial) {
      this.flowSerial[port] = c.serial;
      this.flowSeen[port] = 0;
    }
  }

  /** Mask the port and drop its handler (a handler running now finishes; none runs after). */
  unbind(port: number): void {
    this.checkPort(port, 'unbind');
    this.mask(port);
    this.handlers.delete(port);
  }

  /** unbind_from_irqhandler: unbind, then EVTCHNOP_close. Returns the close result (0 or -errno). */
  close(port: number): number {
    this.unbind(port);
    return this.hc.evtchnClose(port);
  }

  isBound(port: number): boolean {
    return this.handlers.has(port);
  }

  /** xenbus_alloc_evtchn: an unbound port for `remoteDom`, optionally with a handler. */
  allocUnbound(remoteDom: number, handler?: PortHandler): number {
    const port = this.hc.evtchnAllocUnbound(remoteDom);
    if (port > 0 && handler) this.bind(port, handler);
    return port;
  }

  /** bind_interdomain_evtchn_to_irqhandler. Returns the local port or -errno. */
  bindInterdomain(remoteDom: number, remotePort: number, handler: PortHandler): number {
    const port = this.hc.evtchnBindInterdomain(remoteDom, remotePort);
    if (port > 0) this.bind(port, handler);
    return port;
  }

  bindVirq(virq: number, handler: PortHandler): number {
    const port = this.hc.evtchnBindVirq(virq, 0);
    if (port > 0) this.bind(port, handler);
    return port;
  }

  bindIpi(handler: PortHandler): number {
    const port = this.hc.evtchnBindIpi(0);
    if (port > 0) this.bind(port, handler);
    return port;
  }

  /** notify_remote_via_evtchn. */
  notify(port: number): number {
    // Traced before the send: once it is made, the peer may take its upcall (and trace it) at once.
    if (this.trace !== undefined && this.hc.evtchnNextSendFlow !== undefined) {
      const flow = this.hc.evtchnNextSendFlow(port);
      if (flow > 0) this.trace.emit('evtchn', 'evtchn-send', { port, flow });
    }
    const rc = this.hc.evtchnSend(port);
    // A scenario's lose-event fault swallowed it in Xen's send path: say so (the sender cannot tell).
    const lost = this.trace === undefined ? undefined : this.hc.evtchnLastSendLost?.();
    if (lost !== undefined) {
      this.trace!.emit('evtchn', 'fault', {
        fault: 'lose-event',
        port,
        to: lost.domid,
        remotePort: lost.port,
      });
    }
    return rc;
  }

  // ---------------- masking ----------------

  /** mask_evtchn: a plain atomic bit set in shared memory. */
  mask(port: number): void {
    Atomics.or(this.u32, this.maskAt + (port >>> 5), 1 << (port & 31));
  }

  /** unmask_evtchn via EVTCHNOP_unmask, so Xen re-raises a port that went pending while masked. */
  unmask(port: number): number {
    return this.hc.evtchnUnmask(port);
  }

  isMasked(port: number): boolean {
    return (Atomics.load(this.u32, this.maskAt + (port >>> 5)) & (1 << (port & 31))) !== 0;
  }

  isPending(port: number): boolean {
    return (Atomics.load(this.u32, this.pendingAt + (port >>> 5)) & (1 << (port & 31))) !== 0;
  }

  /** evtchn_upcall_mask of vCPU 0 (local_irq_disable / enable in a PV guest). */
  setUpcallMask(masked: boolean): number {
    Atomics.store(this.u8, VCPU_INFO_UPCALL_MASK, masked ? 1 : 0);
    // xen_irq_enable: an upcall that arrived while masked is handled now.
    if (!masked && Atomics.load(this.u8, VCPU_INFO_UPCALL_PENDING)) return this.handleUpcall();
    return 0;
  }

  // ---------------- the upcall ----------------

  /**
   * xen_evtchn_do_upcall + evtchn_2l_handle_events. Returns how many handlers ran. Re-entered
   * (a handler made itself pending again), it asks the running pass to loop instead of nesting.
   */
  handleUpcall(): number {
    if (Atomics.load(this.u8, VCPU_INFO_UPCALL_MASK)) return 0;
    if (this.inUpcall) {
      this.upcallAgain = true;
      return 0;
    }
    this.inUpcall = true;
    let calls = 0;
    try {
      do {
        this.upcallAgain = false;
        Atomics.store(this.u8, VCPU_INFO_UPCALL_PENDING, 0);
        calls += this.scan();
      } while (this.upcallAgain || Atomics.load(this.u8, VCPU_INFO_UPCALL_PENDING));
    } finally {
      this.inUpcall = false;
    }
    return calls;
  }

  private scan(): number {
    const halves = this.layout.wordBits / 32; // u32 halves per xen_ulong_t
    let calls = 0;
    for (let h = 0; h < halves; h++) {
      let sel = Atomics.exchange(this.u32, this.selAt + h, 0) >>> 0;
      while (sel !== 0) {
        const bit = 31 - Math.clz32(sel & -sel);
        sel &= sel - 1;
        const word = h * 32 + bit; // index of the xen_ulong_t word of pending bits
        for (let part = 0; part < halves; part++) {
          const w = word * halves + part; // u32 index into the bitmaps
          let bits =
            (Atomics.load(this.u32, this.pendingAt + w) & ~Atomics.load(this.u32, this.maskAt + w)) >>> 0;
          while (bits !== 0) {
            const b = 31 - Math.clz32(bits & -bits);
            bits &= bits - 1;
            const port = w * 32 + b;
            // Clear before handling: a new event during the handler sets it again.
            Atomics.and(this.u32, this.pendingAt + w, ~(1 << b));
            const handler = this.handlers.get(port);
            if (handler) {
              if (this.trace !== undefined && this.flowIndex[port] !== 0) this.traceUpcall(port);
              handler(port);
              calls++;
            }
          }
        }
      }
    }
    return calls;
  }

  /** evtchn-upcall for the sends delivered since the last one this port handled (none: no event). */
  private traceUpcall(port: number): void {
    const count = Atomics.load(this.flowWords!, this.flowIndex[port]);
    const seen = this.flowSeen[port];
    const fresh = (count - seen) >>> 0;
    if (fresh === 0) return;
    this.flowSeen[port] = count;
    const serial = this.flowSerial[port];
    if (fresh === 1) {
      this.trace!.emit('evtchn', 'evtchn-upcall', { port, flow: evtchnFlowId(serial, count) });
      return;
    }
    const listed = Math.min(fresh, MAX_UPCALL_FLOWS);
    const flows = new Array<number>(listed);
    // The most recent sends are listed when the backlog is longer than the list.
    for (let i = 0; i < listed; i++) flows[i] = evtchnFlowId(serial, count - listed + 1 + i);
    const fields: Record<string, unknown> = { port, flows };
    if (fresh > listed) fields.unlisted = fresh - listed;
    this.trace!.emit('evtchn', 'evtchn-upcall', fields);
  }
}
