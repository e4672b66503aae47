/**
 * A xenbus device (struct xenbus_device) and the driver interface (struct xenbus_driver). A device is
 * one directory in xenstore, `device/<type>/<devid>` in a guest or `backend/<type>/<domid>/<devid>` in
 * dom0 (relative to the domain's home, as Linux keeps nodename), with an "other end" it watches.
 */
import type { Env, WaitQueue } from '../../emulator/runtime/engine.js';
import type { XenbusClient } from './client.js';
import { type StatefulDevice, XenbusState, type XenbusStateValue } from './state.js';
import type { XenbusWatch } from './xenwatch.js';

/**
 * What a driver (blkfront, blkback) provides. Every method runs in the domain's xenwatch task except a
 * probe triggered by registerDriver(), which runs in the registering task, as in Linux.
 */
export interface XenbusDriver {
  /** For logs, e.g. "vbd" (Linux names the backend driver "vbd" too). */
  readonly name: string;
  /** The device type this driver binds (the <type> path component): "vbd". */
  readonly deviceType: string;
  /**
   * Bind to a new device. The other end's details are already read (dev.otherend, dev.otherendId); the
   * watch on the other end's state is set after probe returns, and fires once at once. Throwing fails
   * the probe: the error is written to the device's error node and the device stays unbound.
   */
  probe(dev: XenbusDevice): Promise<void>;
  /**
   * The other end's `state` node changed (or the watch fired spuriously): `state` is its current value,
   * read just now; intermediate values may have been skipped, and the same value may repeat.
   */
  otherendChanged(dev: XenbusDevice, state: XenbusStateValue): Promise<void>;
  /** The device is being unregistered (directory removed, other end gone, or unregisterDevice()). */
  remove(dev: XenbusDevice): Promise<void>;
  /**
   * Linux allow_rebind: when false (the default), removal switches the device to Closed afterwards
   * (a no-op once its directory is gone).
   */
  readonly allowRebind?: boolean;
}

export class XenbusDevice implements StatefulDevice {
  /** The cached state this side last switched to (dev->state). */
  state: XenbusStateValue = XenbusState.Initialising;
  /** The other end's directory (absolute), read from `backend` or `frontend`. */
  otherend: string | undefined;
  otherendId: number | undefined;
  otherendWatch: XenbusWatch | undefined;
  driver: XenbusDriver | undefined;
  /** Per-driver data (dev_set_drvdata). */
  driverData: unknown;
  /** True until the device is unregistered. */
  registered = true;
  /** Completion `down`, signalled by frontendClosed(); the frontend shutdown hook waits on it. */
  down = false;
  readonly downQueue: WaitQueue;

  constructor(
    readonly env: Env,
    readonly client: XenbusClient,
    /** The device type: "vbd". */
    readonly devicetype: string,
    /** e.g. "device/vbd/51712" or "backend/vbd/3/51712". */
    readonly nodename: string,
    /** The Linux bus id: "vbd-51712" (frontend), "vbd-3-51712" (backend). */
    readonly busId: string,
  ) {
    this.downQueue = env.waitQueue(`${busId} down`);
  }

  /** The trailing path component: the devid (virtual-device number) for vbd. */
  get devid(): string {
    return this.nodename.slice(this.nodename.lastIndexOf('/') + 1);
  }
}
