/**
 * What the frontend and backend buses share (Linux drivers/xen/xenbus/xenbus_probe.c): enumerating and
 * probing devices, reacting to changes under the bus root (xenbus_dev_changed), reading and watching
 * the other end (talk_to_otherend, watch_otherend, xenbus_otherend_changed) and unregistering
 * (xenbus_dev_remove). All of it runs in the domain's xenwatch, so one slow driver callback delays
 * every other device.
 */
import { type Env, traceWanted } from '../../emulator/runtime/engine.js';
import type { XenbusClient } from './client.js';
import type { XenbusDevice as Device, XenbusDriver } from './device.js';
import { XenbusDevice } from './device.js';
import { XenstoreError } from './errors.js';
import {
  devError,
  devFatal,
  joinPath,
  readDriverState,
  scanInteger,
  switchState,
  XenbusState,
  type XenbusStateValue,
  xenbusStateName,
} from './state.js';
import type { XenbusWatch } from './xenwatch.js';
import { XS_ERRNO } from './xs-wire.js';

/** The differences between the two buses (struct xen_bus_type). */
export interface XenBusType {
  /** "device" (frontend) or "backend". */
  readonly root: string;
  /** Path components below the root that name a device: 2 (type/devid) or 3 (type/domid/devid). */
  readonly levels: number;
  /** Keys naming the other end: ["backend-id", "backend"] or ["frontend-id", "frontend"]. */
  readonly otherendIdKey: string;
  readonly otherendPathKey: string;
  /** Bus id of a device (get_bus_id); throws when it cannot be formed, and the device is then skipped. */
  busId(client: XenbusClient, nodename: string): Promise<string>;
  /** Probe everything under <root>/<type> (xenbus_probe_device_type). */
  probeType(bus: XenbusBus, type: string): Promise<void>;
  /** xen_bus_type.otherend_will_handle (the backend refuses events while one is pending, XSA-349). */
  readonly otherendWillHandle?: (watch: XenbusWatch) => boolean;
  /** Linux's ignore_on_shutdown argument of xenbus_otherend_changed (frontend: true). */
  readonly ignoreOnShutdown: boolean;
  /**
   * Unregister the device when the other end's state reads Unknown (its node vanished) instead of
   * telling the driver: blkback's frontend_changed does exactly this, so the backend bus does it for
   * every backend driver.
   */
  readonly unregisterOnOtherendUnknown: boolean;
}

/** Linux strsep_len: index of the `len`-th separator, the whole length if there are exactly `len`, else -1. */
export function strsepLen(str: string, sep: string, len: number): number {
  for (let i = 0; i < str.length; i++) {
    if (str[i] === sep) {
      if (len === 0) return i;
      len--;
    }
  }
  return len === 0 ? str.length : -1;
}

export class XenbusBus {
  private readonly drivers = new Map<string, XenbusDriver>();
  private readonly devs = new Map<string, Device>();
  private rootWatch: XenbusWatch | undefined;
  /** Linux system_state > SYSTEM_RUNNING: other-end changes are no longer passed to drivers. */
  systemShuttingDown = false;

  constructor(
    readonly env: Env,
    readonly client: XenbusClient,
    readonly type: XenBusType,
  ) {}

  /** Registered devices, in registration order. */
  devices(): Device[] {
    return [...this.devs.values()];
  }

  find(nodename: string): Device | undefined {
    return this.devs.get(nodename);
  }

  /**
   * Enumerate existing devices, then watch the bus root (xenbus_probe_devices + register the
   * fe_watch/be_watch). Call once the domain's xenwatch runs.
   */
  async start(): Promise<void> {
    if (this.rootWatch) throw new Error(`xenbus ${this.type.root} bus: already started`);
    await this.probeDevices();
    this.rootWatch = await this.client.watch(this.type.root, (path) => this.devChanged(path));
  }

  /** Register a driver (xenbus_register_driver_common): bind every unbound device of its type now. */
  async registerDriver(driver: XenbusDriver): Promise<void> {
    if (this.drivers.has(driver.deviceType)) {
      throw new Error(
        `xenbus ${this.type.root} bus: a driver for ${driver.deviceType} is already registered`,
      );
    }
    this.drivers.set(driver.deviceType, driver);
    for (const dev of this.devices()) {
      if (dev.registered && !dev.driver && dev.devicetype === driver.deviceType) await this.devProbe(dev);
    }
  }

  /**
   * device_unregister: drop the other-end watch, run the driver's remove, and (unless the driver allows
   * rebinding and the device is not Closing) switch to Closed, which does nothing once the node is gone.
   */
  async unregisterDevice(dev: Device): Promise<void> {
    if (!dev.registered) return;
    dev.registered = false;
    this.devs.delete(dev.nodename);
    this.env.trace.emit('xenbus', 'device-unregister', { node: dev.nodename });
    const drv = dev.driver;
    if (!drv) return;
    await this.freeOtherendWatch(dev);
    await drv.remove(dev);
    dev.driver = undefined;
    dev.otherend = undefined;
    dev.otherendId = undefined;
    if (!drv.allowRebind || (await readDriverState(this.client, dev.nodename)) === XenbusState.Closing) {
      await switchState(dev, XenbusState.Closed);
    }
  }

  /** Probe one device directory (xenbus_probe_node): only one still Initialising is taken. */
  async probeNode(type: string, nodename: string): Promise<Device | undefined> {
    if (this.devs.has(nodename)) return this.devs.get(nodename);
    const state = await readDriverState(this.client, nodename);
    // Not new (e.g. going away after switching to Closed): ignore it.
    if (state !== XenbusState.Initialising) return undefined;
    if (this.devs.has(nodename)) return this.devs.get(nodename);
    let busId: string;
    try {
      busId = await this.type.busId(this.client, nodename);
    } catch (e) {
      if (!(e instanceof XenstoreError) && !(e instanceof RangeError)) throw e;
      this.env.trace.log('xenbus', `xenbus_probe_node: bus id of ${nodename} failed: ${e.message}`);
      return undefined;
    }
    if (this.devs.has(nodename)) return this.devs.get(nodename);
    const dev = new XenbusDevice(this.env, this.client, type, nodename, busId);
    this.devs.set(nodename, dev);
    this.env.trace.emit('xenbus', 'device-register', { node: nodename, bus: this.type.root });
    await this.devProbe(dev);
    return dev;
  }

  /** xenbus_probe_devices: every <root>/<type>/... present now. */
  private async probeDevices(): Promise<void> {
    let types: string[];
    try {
      types = await this.client.directory(this.type.root);
    } catch (e) {
      if (e instanceof XenstoreError) return;
      throw e;
    }
    for (const t of types) await this.type.probeType(this, t);
  }

  /** xenbus_dev_changed: something under the root changed; probe a new device or clean up a gone one. */
  private async devChanged(node: string): Promise<void> {
    if (countChar(node, '/') < 2) return;
    if (!(await this.client.exists(node))) {
      await this.cleanupDevices(node);
      return;
    }
    const afterRoot = node.slice(node.indexOf('/') + 1);
    const slash = afterRoot.indexOf('/');
    const type = slash < 0 ? afterRoot : afterRoot.slice(0, slash);
    const rootlen = strsepLen(node, '/', this.type.levels);
    if (rootlen < 0) return;
    const root = node.slice(0, rootlen);
    if (!this.devs.has(root)) await this.probeNode(type, root);
  }

  /** xenbus_cleanup_devices: unregister the devices at or below `path`. */
  private async cleanupDevices(path: string): Promise<void> {
    for (const dev of this.devices()) {
      const n = dev.nodename;
      if (n === path || (n.startsWith(path) && n[path.length] === '/')) await this.unregisterDevice(dev);
    }
  }

  /** xenbus_dev_probe: read the other end, run the driver's probe, then watch the other end's state. */
  private async devProbe(dev: Device): Promise<void> {
    const drv = this.drivers.get(dev.devicetype);
    if (!drv) return;
    if (!(await this.talkToOtherend(dev))) {
      this.env.trace.log('xenbus', `${dev.busId}: talk_to_otherend on ${dev.nodename} failed.`);
      return;
    }
    dev.driver = drv;
    try {
      await drv.probe(dev);
    } catch (e) {
      dev.driver = undefined;
      const errno = e instanceof XenstoreError ? e.errno : XS_ERRNO.EIO;
      this.env.trace.log('xenbus', `${dev.busId}: probe by ${drv.name} failed: ${(e as Error).message}`);
      await devError(dev, errno, `xenbus_dev_probe on ${dev.nodename}`);
      return;
    }
    if (!dev.registered) return;
    await this.watchOtherend(dev);
  }

  /** xenbus_read_otherend_details. Returns false after a fatal error on the device. */
  private async talkToOtherend(dev: Device): Promise<boolean> {
    dev.otherend = undefined;
    dev.otherendId = undefined;
    let idText: string;
    let path: string;
    try {
      idText = await this.client.read(joinPath(dev.nodename, this.type.otherendIdKey));
      path = await this.client.read(joinPath(dev.nodename, this.type.otherendPathKey));
    } catch (e) {
      if (!(e instanceof XenstoreError)) throw e;
      await devFatal(dev, e.errno, `reading other end details from ${dev.nodename}`);
      return false;
    }
    const id = scanInteger(idText);
    if (id === undefined) {
      await devFatal(dev, XS_ERRNO.EINVAL, `reading other end details from ${dev.nodename}`);
      return false;
    }
    if (path.length === 0 || !(await this.client.exists(path))) {
      await devFatal(dev, XS_ERRNO.ENOENT, `unable to read other end details from ${dev.nodename}`);
      return false;
    }
    dev.otherendId = id;
    dev.otherend = path;
    return true;
  }

  private async watchOtherend(dev: Device): Promise<void> {
    const path = joinPath(dev.otherend!, 'state');
    const willHandle = this.type.otherendWillHandle;
    try {
      dev.otherendWatch = await this.client.watch(
        path,
        (changed) => this.otherendChanged(dev, changed),
        willHandle ? { willHandle: (w) => willHandle(w) } : {},
      );
    } catch (e) {
      if (!(e instanceof XenstoreError)) throw e;
      await devFatal(dev, e.errno, `adding watch on ${path}`);
      this.env.trace.log('xenbus', `${dev.busId}: watch_otherend on ${dev.nodename} failed.`);
    }
  }

  private async freeOtherendWatch(dev: Device): Promise<void> {
    const w = dev.otherendWatch;
    if (!w) return;
    dev.otherendWatch = undefined;
    await this.client.unwatch(w);
  }

  /** xenbus_otherend_changed: re-read the other end's state and hand it to the driver. */
  private async otherendChanged(dev: Device, path: string): Promise<void> {
    // Ignore events on old details (the other end moved, e.g. after resume) and on unbound devices.
    if (!dev.registered || !dev.driver || !dev.otherend || !path.startsWith(dev.otherend)) return;
    const state = await readDriverState(this.client, dev.otherend);
    if (traceWanted(this.env.trace, 'xenbus', 'otherend-changed')) {
      this.env.trace.emit('xenbus', 'otherend-changed', {
        node: dev.nodename,
        otherend: dev.otherend,
        state,
        name: xenbusStateName(state),
      });
    }
    if (this.systemShuttingDown) {
      if (this.type.ignoreOnShutdown && state === XenbusState.Closing) await frontendClosed(dev);
      return;
    }
    if (state === XenbusState.Unknown && this.type.unregisterOnOtherendUnknown) {
      await this.unregisterDevice(dev);
      return;
    }
    await dev.driver.otherendChanged(dev, state);
  }
}

/** xenbus_frontend_closed: switch to Closed and signal the `down` completion. */
export async function frontendClosed(dev: Device): Promise<void> {
  await switchState(dev, XenbusState.Closed);
  dev.down = true;
  dev.downQueue.wakeAll();
}

function countChar(s: string, c: string): number {
  let n = 0;
  for (const ch of s) if (ch === c) n++;
  return n;
}

export type { XenbusStateValue };
