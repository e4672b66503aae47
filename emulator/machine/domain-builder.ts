/**
 * dom0's domain builder: what libxl's domain-create path does at the hypervisor (create the domain
 * paused, build it, unpause) with "build" meaning: claim the guest's slot and ask it to boot a kernel
 * (slot-table.ts). The toolstack in emulator/toolstack/libxl/ calls it through `boot(domid, name,
 * kernel)`; demos call `create`. Destroy is Xen's: the slot learns it from the kick that follows and
 * halts the kernel.
 */
import type { Hypercalls } from '../../hypervisor/hypercall.js';
import type { Hypervisor } from '../../hypervisor/hypervisor.js';
import type { Env, UpcallKicker } from '../runtime/engine.js';
import type { DomainBuilder, GuestStartInfo } from '../toolstack/libxl/host.js';
import type { MachineConfig } from './config.js';
import { type BootStore, KERNELS, type KernelName, SlotTable } from './slot-table.js';

export class MachineDomainBuilder implements DomainBuilder {
  private readonly names = new Map<number, string>();
  private readonly listeners: Array<() => void> = [];

  constructor(
    private readonly hc: Hypercalls,
    private readonly hv: Hypervisor,
    private readonly slots: SlotTable,
    private readonly machine: MachineConfig,
    private readonly kicker: UpcallKicker,
    private readonly env: Env,
  ) {}

  /** The slot of a guest named in the host config, or a precise error. */
  slotFor(name: string): number {
    const i = this.machine.guests.findIndex((g) => g.name === name);
    if (i < 0) {
      const names = this.machine.guests.map((g) => g.name).join(', ') || 'none';
      throw new Error(`domain builder: no guest named "${name}" in the host config (guests: ${names})`);
    }
    return i;
  }

  /** The Xen domid most recently built for guest `name`, if any. */
  latestDomid(name: string): number | undefined {
    let last: number | undefined;
    for (const [d, n] of this.names) if (n === name) last = d;
    return last;
  }

  /**
   * The scenario's view of a guest: running, shutdown, dying, or dead (built once, now gone);
   * undefined when it was never built.
   */
  guestState(name: string): 'running' | 'shutdown' | 'dying' | 'dead' | undefined {
    const domid = this.latestDomid(name);
    if (domid === undefined) return undefined;
    const info = this.hv.domainInfo(domid);
    if (info === undefined) return 'dead';
    if (info.dying) return 'dying';
    if (info.shutdown) return 'shutdown';
    return 'running';
  }

  /** Every Xen domid this builder has booted a kernel for. */
  builtDomids(): number[] {
    return [...this.names.keys()];
  }

  /** Called after each build and destroy (domain-state waits re-check). */
  onStateChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  nameOf(domid: number): string | undefined {
    if (domid === 0) return 'Domain-0';
    return this.names.get(domid);
  }

  /** libxl's DomainBuilder.boot: the PV guest kernel with the store ring libxl set up. */
  boot(domid: number, name: string, startInfo: GuestStartInfo): void {
    this.bootKernel(domid, name, 'pv-guest', {
      mfn: startInfo.storeMfn,
      evtchn: startInfo.storeEvtchn,
      grantRef: startInfo.storeGrantRef,
    });
  }

  /** libxl's DomainBuilder.destroyed: kick the slot so its kernel halts now. */
  destroyed(domid: number): void {
    if (this.slots.slotOf(domid) >= 0) this.kicker.kick(domid);
    this.changed();
  }

  /** Boot `kernel` as the (created, paused) Xen domain `domid` into the slot of guest `name`. */
  bootKernel(domid: number, name: string, kernel: KernelName, store?: BootStore): void {
    const slot = this.slotFor(name);
    this.slots.requestBoot(slot, domid, kernel, (d) => this.hv.domainInfo(d) === undefined, store);
    this.names.delete(domid); // a reused domid moves to the end (latest)
    this.names.set(domid, name);
    this.env.trace.emit('machine', 'build', { domid, name, slot, kernel });
    this.kicker.kick(domid);
    this.changed();
  }

  /** createdomain + build + unpause; returns the new domid. */
  create(name: string, kernel: string): number {
    if (!(KERNELS as readonly string[]).includes(kernel)) {
      throw new Error(`domain builder: kernel must be one of ${KERNELS.join(', ')}, got "${kernel}"`);
    }
    const guest = this.machine.guests[this.slotFor(name)];
    const domid = this.hc.createDomain({ abi: guest.abi, maxPages: Math.floor(guest.memory / 4096) });
    if (domid < 0) throw new Error(`domain builder: createdomain for ${name} failed with ${domid}`);
    this.bootKernel(domid, name, kernel as KernelName);
    const rc = this.hc.unpauseDomain(domid);
    if (rc < 0) throw new Error(`domain builder: unpause d${domid} failed with ${rc}`);
    return domid;
  }

  /** XEN_DOMCTL_destroydomain, then kick the slot so its kernel halts now rather than at its next event. */
  destroy(domid: number): void {
    const slot = this.slots.slotOf(domid);
    const rc = this.hc.destroyDomain(domid);
    if (rc < 0) throw new Error(`domain builder: destroy d${domid} failed with ${rc}`);
    if (slot >= 0) this.kicker.kick(domid);
    this.changed();
  }
}

export { SlotTable };
