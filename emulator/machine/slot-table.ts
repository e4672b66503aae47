/**
 * Guest slots. Xen hands out domids when `xl create` runs (1, 2, 3 ... a domain restarted gets a new
 * one), but engine domains are fixed before a run starts. So the machine adds one engine domain per
 * guest named in the host config (a "slot": a vCPU waiting for work) and keeps this table in shared
 * memory, visible to every domain:
 *
 * - per slot: its state (empty, boot requested, running, halted), the Xen domid booted into it, which
 *   kernel to run, and a generation counter (one per boot);
 * - a map Xen domid -> slot, so the machine's kicker can turn `kick(xenDomid)` into a kick of the slot's
 *   engine domain.
 *
 * dom0's domain builder writes a boot request and kicks the slot; the slot's upcall handler (slot.ts)
 * sees it and spawns the kernel's boot task. When the hypervisor reports the domain shut down, dying or
 * gone, the slot halts every task of the kernel (Env.haltDomain) and marks itself halted; the slot is
 * free again once the Xen domain no longer exists.
 *
 * Engine domain numbering: engine domain 0 is Xen's dom0; slot i is engine domain i + 1.
 */
import { DOMID_FIRST_RESERVED } from '../../hypervisor/layout.js';

export const SLOT_EMPTY = 0;
export const SLOT_BOOT = 1;
export const SLOT_RUNNING = 2;
export const SLOT_HALTED = 3;
export type SlotState = typeof SLOT_EMPTY | typeof SLOT_BOOT | typeof SLOT_RUNNING | typeof SLOT_HALTED;
export const SLOT_STATE_NAMES = ['empty', 'boot', 'running', 'halted'] as const;

/** Kernels a slot can boot, by index in the table. */
export const KERNELS = ['pv-guest', 'hello-ping', 'hello-pong'] as const;
export type KernelName = (typeof KERNELS)[number];

const HEADER = 4;
const SLOT_WORDS = 8;
const F_STATE = 0;
const F_DOMID = 1;
const F_KERNEL = 2;
const F_GENERATION = 3;
const F_STORE_MFN = 4;
const F_STORE_EVTCHN = 5;
const F_STORE_REF = 6;

export interface SlotInfo {
  slot: number;
  state: SlotState;
  stateName: (typeof SLOT_STATE_NAMES)[number];
  domid: number;
  kernel: KernelName;
  generation: number;
  /** From the domain builder's start info (0 when the kernel has no xenstore). */
  store: BootStore;
}

/** The start_info store fields a kernel boots with. */
export interface BootStore {
  mfn: number;
  evtchn: number;
  grantRef: number;
}

export class SlotTable {
  readonly words: Int32Array;
  readonly count: number;
  private readonly mapAt: number;

  static create(count: number): SlotTable {
    if (!Number.isInteger(count) || count < 0 || count > 1000) {
      throw new RangeError(`SlotTable: count must be an integer in 0..1000, got ${count}`);
    }
    const sab = new SharedArrayBuffer(4 * (HEADER + count * SLOT_WORDS + DOMID_FIRST_RESERVED));
    const words = new Int32Array(sab);
    words[0] = count;
    return new SlotTable(sab);
  }

  constructor(readonly buffer: SharedArrayBuffer) {
    this.words = new Int32Array(buffer);
    this.count = this.words[0];
    this.mapAt = HEADER + this.count * SLOT_WORDS;
  }

  /** Engine domain of a slot. */
  static engineDomain(slot: number): number {
    return slot + 1;
  }

  private at(slot: number, field: number): number {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.count) {
      throw new RangeError(`slot ${slot} does not exist (slots: 0..${this.count - 1})`);
    }
    return HEADER + slot * SLOT_WORDS + field;
  }

  info(slot: number): SlotInfo {
    const state = Atomics.load(this.words, this.at(slot, F_STATE)) as SlotState;
    return {
      slot,
      state,
      stateName: SLOT_STATE_NAMES[state],
      domid: Atomics.load(this.words, this.at(slot, F_DOMID)),
      kernel: KERNELS[Atomics.load(this.words, this.at(slot, F_KERNEL))],
      generation: Atomics.load(this.words, this.at(slot, F_GENERATION)),
      store: {
        mfn: Atomics.load(this.words, this.at(slot, F_STORE_MFN)),
        evtchn: Atomics.load(this.words, this.at(slot, F_STORE_EVTCHN)),
        grantRef: Atomics.load(this.words, this.at(slot, F_STORE_REF)),
      },
    };
  }

  /** The slot a Xen domid is booted into, or -1. */
  slotOf(domid: number): number {
    if (!Number.isInteger(domid) || domid <= 0 || domid >= DOMID_FIRST_RESERVED) return -1;
    return Atomics.load(this.words, this.mapAt + domid) - 1;
  }

  /**
   * dom0's builder: claim an empty slot for `domid` and ask it to boot `kernel`. `isGone(domid)` says
   * whether a previous occupant's Xen domain no longer exists (then its slot may be reused).
   */
  requestBoot(
    slot: number,
    domid: number,
    kernel: KernelName,
    isGone: (domid: number) => boolean,
    store: BootStore = { mfn: 0, evtchn: 0, grantRef: 0 },
  ): void {
    const k = KERNELS.indexOf(kernel);
    if (k < 0)
      throw new RangeError(`requestBoot: kernel must be one of ${KERNELS.join(', ')}, got ${kernel}`);
    if (!Number.isInteger(domid) || domid <= 0 || domid >= DOMID_FIRST_RESERVED) {
      throw new RangeError(`requestBoot: domid must be in 1..${DOMID_FIRST_RESERVED - 1}, got ${domid}`);
    }
    const cur = this.info(slot);
    if (cur.state !== SLOT_EMPTY) {
      if (cur.state !== SLOT_HALTED || !isGone(cur.domid)) {
        throw new Error(
          `requestBoot: slot ${slot} is ${cur.stateName} with d${cur.domid}; it frees when that domain is gone`,
        );
      }
      this.release(slot);
    }
    Atomics.store(this.words, this.at(slot, F_DOMID), domid);
    Atomics.store(this.words, this.at(slot, F_KERNEL), k);
    Atomics.store(this.words, this.at(slot, F_STORE_MFN), store.mfn);
    Atomics.store(this.words, this.at(slot, F_STORE_EVTCHN), store.evtchn);
    Atomics.store(this.words, this.at(slot, F_STORE_REF), store.grantRef);
    Atomics.add(this.words, this.at(slot, F_GENERATION), 1);
    Atomics.store(this.words, this.mapAt + domid, slot + 1);
    Atomics.store(this.words, this.at(slot, F_STATE), SLOT_BOOT);
  }

  /** The slot's own view: BOOT -> RUNNING once the kernel's boot task is spawned. */
  markRunning(slot: number): void {
    Atomics.compareExchange(this.words, this.at(slot, F_STATE), SLOT_BOOT, SLOT_RUNNING);
  }

  markHalted(slot: number): void {
    Atomics.store(this.words, this.at(slot, F_STATE), SLOT_HALTED);
  }

  /** Forget a halted slot's domain (its Xen domain is gone). */
  release(slot: number): void {
    const domid = Atomics.load(this.words, this.at(slot, F_DOMID));
    if (domid > 0 && Atomics.load(this.words, this.mapAt + domid) === slot + 1) {
      Atomics.store(this.words, this.mapAt + domid, 0);
    }
    Atomics.store(this.words, this.at(slot, F_STATE), SLOT_EMPTY);
  }
}
