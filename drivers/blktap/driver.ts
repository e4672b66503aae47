/**
 * The blktap2 kernel module (`blktap.ko`, Stodden/Citrix line, 2010): module init registers the tapdev
 * block major, the ring character region, the `blktap2` sysfs class and the control misc device; the
 * `blktaps[]` slot array maps minors to `struct blktap`.
 *
 * Version switch `destroySemantics` (ydirson/blktap-module, branch dstodden-from-jfitzhardinge):
 * - '2010-08' (546b11c "Fix device destruction path"): vm_close fails pending requests with EIO and frees
 *   the sring; the release of the ring file waits uninterruptibly until the tapdev has no openers and
 *   its gendisk is destroyed (blktap_device_destroy_sync).
 * - '2010-06' (546b11c~1): ring release and vm_close try to destroy the device once; while it is open
 *   they fail its requests with EIO and return EBUSY without waiting, so the gendisk lingers until its
 *   last opener closes it after a shutdown was requested.
 * `destroyLock`: 'trylock' is the C3 fix (2ab5e84: bd_mutex trylock + EBUSY + retry); 'lock' is the
 * pre-fix mutex_lock, which can deadlock against a last close that flushes through tapdisk.
 */
import { MISC_DYNAMIC_MINOR } from '../../emulator/kernel/char-device.js';
import type { Kernel } from '../../emulator/kernel/kernel.js';
import { BLKTAP_RING_SIZE, BLKTAP2_CONTROL_NAME, BLKTAP2_SYSFS_CLASS, MAX_BLKTAP_DEVICE } from './abi.js';
import { controlDriver } from './control.js';
import { ringDriver } from './ring.js';
import type { Blktap } from './tap.js';

export type DestroySemantics = '2010-06' | '2010-08';

export interface BlktapOptions {
  destroySemantics: DestroySemantics;
  /** Size cap of blktaps[] (MAX_BLKTAP_DEVICE, 1024). */
  maxDevices?: number;
  /** 'trylock' (default, the C3 fix) or 'lock' (before 2ab5e84). */
  destroyLock?: 'trylock' | 'lock';
}

export class BlktapDriver {
  readonly semantics: DestroySemantics;
  readonly destroyLock: 'trylock' | 'lock';
  readonly maxDevices: number;
  /** blktap_device_major ("tapdev"). */
  readonly deviceMajor: number;
  /** blktap_ring_major ("blktap2"). */
  readonly ringMajor: number;
  readonly controlMinor: number;
  /** blktaps[]: grows by doubling from 64 up to maxDevices, as blktap_control_get_minor does. */
  readonly blktaps: Array<Blktap | undefined>;
  /** The module reference count (one per allocated tap). */
  moduleRefs = 0;
  /** Page-pool kobject references held by taps. */
  poolRefs = 0;
  readonly ringSize = BLKTAP_RING_SIZE;

  constructor(
    readonly k: Kernel,
    options: BlktapOptions,
  ) {
    checkSemantics(options.destroySemantics);
    this.semantics = options.destroySemantics;
    this.destroyLock = options.destroyLock ?? 'trylock';
    if (this.destroyLock !== 'trylock' && this.destroyLock !== 'lock') {
      throw new RangeError(
        `blktap destroyLock: '${String(this.destroyLock)}' is neither 'trylock' nor 'lock'`,
      );
    }
    this.maxDevices = options.maxDevices ?? MAX_BLKTAP_DEVICE;
    if (!Number.isInteger(this.maxDevices) || this.maxDevices < 1 || this.maxDevices > MAX_BLKTAP_DEVICE) {
      throw new RangeError(
        `blktap maxDevices: ${this.maxDevices} is not an integer in [1, ${MAX_BLKTAP_DEVICE}]`,
      );
    }
    this.blktaps = new Array<Blktap | undefined>(Math.min(64, this.maxDevices)).fill(undefined);
    // blktap_init(): device, ring, sysfs, control, in that order.
    this.deviceMajor = k.blocks.registerBlkdev(0, 'tapdev');
    this.log(`blktap device major ${this.deviceMajor}`);
    this.ringMajor = k.chars.register(0, 0, MAX_BLKTAP_DEVICE, 'blktap2', ringDriver(this));
    this.log(`blktap ring major: ${this.ringMajor}`);
    k.sysfs.classCreate(BLKTAP2_SYSFS_CLASS);
    // The misc name is what tap-ctl looks for in /proc/misc (BLKTAP2_CONTROL_NAME).
    this.controlMinor = k.chars.miscRegister(BLKTAP2_CONTROL_NAME, MISC_DYNAMIC_MINOR, controlDriver(this));
    k.sysfs.deviceCreate('misc', BLKTAP2_CONTROL_NAME, {
      devt: { kind: 'chr', major: 10, minor: this.controlMinor },
      devnode: 'xen/blktap-2/control',
    });
  }

  get env() {
    return this.k.env;
  }

  tap(minor: number): Blktap | undefined {
    return minor >= 0 && minor < this.blktaps.length ? this.blktaps[minor] : undefined;
  }

  /** Allocated minors, ascending. */
  minors(): number[] {
    const out: number[] = [];
    this.blktaps.forEach((t, i) => {
      if (t !== undefined) out.push(i);
    });
    return out;
  }

  log(message: string): void {
    this.k.env.trace.log('blktap', message);
  }

  emit(kind: string, fields: Record<string, unknown>): void {
    this.k.env.trace.emit('blktap', kind, fields);
  }
}

/** Loads the module into a kernel (the `misc` class must not exist yet, or is created here). */
export function installBlktap(k: Kernel, options: BlktapOptions): BlktapDriver {
  checkSemantics(options.destroySemantics);
  if (!k.ns.exists('/sys/class/misc')) k.sysfs.classCreate('misc');
  return new BlktapDriver(k, options);
}

function checkSemantics(s: unknown): void {
  if (s !== '2010-06' && s !== '2010-08') {
    throw new RangeError(`blktap destroySemantics: '${String(s)}' is neither '2010-06' nor '2010-08'`);
  }
}
