/**
 * The 2-level event-channel bits in a domain's shared_info frame, as Xen's event_2l.c changes them:
 * evtchn_pending / evtchn_mask bitmaps, each vCPU's evtchn_pending_sel and evtchn_upcall_pending.
 *
 * Xen words are xen_ulong_t (64-bit for x86_64 guests); bit n of a little-endian array of u64 is
 * bit n%32 of u32 word n/32, so 32-bit atomics give the same bytes and the same atomicity per bit.
 */
import {
  PAGE_SIZE,
  type SharedInfoLayout,
  VCPU_INFO_SIZE,
  VCPU_INFO_UPCALL_MASK,
  VCPU_INFO_UPCALL_PENDING,
} from './layout.js';

export class SharedInfoBits {
  private readonly pendingWord: number;
  private readonly maskWord: number;
  private readonly base: number;

  constructor(
    private readonly mem8: Uint8Array,
    private readonly mem32: Int32Array,
    mfn: number,
    readonly layout: SharedInfoLayout,
  ) {
    this.base = mfn * PAGE_SIZE;
    this.pendingWord = (this.base + layout.evtchnPendingOffset) >>> 2;
    this.maskWord = (this.base + layout.evtchnMaskOffset) >>> 2;
  }

  private static bit(port: number): number {
    return 1 << (port & 31);
  }

  isPending(port: number): boolean {
    return (Atomics.load(this.mem32, this.pendingWord + (port >>> 5)) & SharedInfoBits.bit(port)) !== 0;
  }

  isMasked(port: number): boolean {
    return (Atomics.load(this.mem32, this.maskWord + (port >>> 5)) & SharedInfoBits.bit(port)) !== 0;
  }

  clearPending(port: number): void {
    Atomics.and(this.mem32, this.pendingWord + (port >>> 5), ~SharedInfoBits.bit(port));
  }

  upcallPending(vcpu: number): number {
    return Atomics.load(this.mem8, this.base + vcpu * VCPU_INFO_SIZE + VCPU_INFO_UPCALL_PENDING);
  }

  upcallMask(vcpu: number): number {
    return Atomics.load(this.mem8, this.base + vcpu * VCPU_INFO_SIZE + VCPU_INFO_UPCALL_MASK);
  }

  /** Set selector bit for `port` on `vcpu`; true if it was clear. */
  private testAndSetSel(vcpu: number, port: number): boolean {
    const selBit = Math.floor(port / this.layout.wordBits);
    const word = (this.base + vcpu * VCPU_INFO_SIZE + this.layout.pendingSelOffset) / 4 + (selBit >>> 5);
    const bit = 1 << (selBit & 31);
    return (Atomics.or(this.mem32, word, bit) & bit) === 0;
  }

  /** vcpu_mark_events_pending: true when upcall_pending went 0 -> 1 (the vCPU must be kicked). */
  private markEventsPending(vcpu: number): boolean {
    return Atomics.exchange(this.mem8, this.base + vcpu * VCPU_INFO_SIZE + VCPU_INFO_UPCALL_PENDING, 1) === 0;
  }

  /**
   * evtchn_2l_set_pending. Returns true when the upcall was raised. A port already pending stops
   * here (edge semantics); a masked port stays pending without a selector bit until unmask.
   */
  setPending(port: number, vcpu: number): boolean {
    const bit = SharedInfoBits.bit(port);
    if (Atomics.or(this.mem32, this.pendingWord + (port >>> 5), bit) & bit) return false;
    if (!this.isMasked(port) && this.testAndSetSel(vcpu, port)) return this.markEventsPending(vcpu);
    return false;
  }

  /** evtchn_2l_unmask: clear the mask; if it was set and the port is pending, re-raise. */
  unmask(port: number, vcpu: number): boolean {
    const bit = SharedInfoBits.bit(port);
    const was = Atomics.and(this.mem32, this.maskWord + (port >>> 5), ~bit);
    if (was & bit && this.isPending(port) && this.testAndSetSel(vcpu, port))
      return this.markEventsPending(vcpu);
    return false;
  }
}
