/**
 * dom0's backend bus with the uevents Linux sends for its devices: device_add's KOBJ_ADD when a backend
 * device is registered and device_del's KOBJ_REMOVE once it is unregistered (after the driver's remove),
 * both from xenwatch, with xenbus_uevent_backend's variables (MODALIAS, XENBUS_TYPE, XENBUS_PATH,
 * XENBUS_BASE_PATH). udevd turns them into hotplug script runs (xen-backend.rules).
 */
import { BackendBus, type BackendShutdownHook } from '../../drivers/xenbus/backend-bus.js';
import type { XenbusClient } from '../../drivers/xenbus/client.js';
import type { XenbusDevice } from '../../drivers/xenbus/device.js';
import type { Kernel } from '../kernel/kernel.js';
import type { UeventAction, UeventSource } from '../kernel/uevent.js';

/** struct bus_type xenbus_backend.bus.name */
export const XEN_BACKEND_SUBSYSTEM = 'xen-backend';

/** The event source of one backend device: /sys/devices/xen-backend/<bus id>. */
export function backendUeventSource(
  dev: Pick<XenbusDevice, 'busId' | 'devicetype' | 'nodename'>,
): UeventSource {
  return {
    devpath: `/devices/${XEN_BACKEND_SUBSYSTEM}/${dev.busId}`,
    subsystem: XEN_BACKEND_SUBSYSTEM,
    vars: [
      ['MODALIAS', `${XEN_BACKEND_SUBSYSTEM}:${dev.devicetype}`],
      ['XENBUS_TYPE', dev.devicetype],
      ['XENBUS_PATH', dev.nodename],
      ['XENBUS_BASE_PATH', 'backend'],
    ],
  };
}

export class UeventBackendBus extends BackendBus {
  constructor(
    private readonly kernel: Kernel,
    client: XenbusClient,
    opts: { shutdownHook?: BackendShutdownHook } = {},
  ) {
    super(kernel.env, client, opts);
  }

  /**
   * xenbus_probe_node. Simplification: Linux sends KOBJ_ADD in device_add, just before the driver's
   * probe; here it follows the probe (the bus gives no hook in between), still in the same xenwatch run.
   */
  override async probeNode(type: string, nodename: string): Promise<XenbusDevice | undefined> {
    const known = this.find(nodename) !== undefined;
    const dev = await super.probeNode(type, nodename);
    if (!known && dev?.registered) this.send('add', dev);
    return dev;
  }

  /** device_unregister: the driver's remove runs first (bus_remove_device), then KOBJ_REMOVE. */
  override async unregisterDevice(dev: XenbusDevice): Promise<void> {
    const wasRegistered = dev.registered;
    await super.unregisterDevice(dev);
    if (wasRegistered) this.send('remove', dev);
  }

  private send(action: UeventAction, dev: XenbusDevice): void {
    this.kernel.uevents.emit(action, backendUeventSource(dev));
  }
}
