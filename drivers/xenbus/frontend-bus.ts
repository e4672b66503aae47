/**
 * The frontend bus of a guest kernel (Linux drivers/xen/xenbus/xenbus_probe_frontend.c): devices are
 * `device/<type>/<devid>` under the domain's home; the other end is named by `backend` and
 * `backend-id`; the guest's shutdown hook closes connected devices and waits at most 5 s for each.
 */
import type { Env } from '../../emulator/runtime/engine.js';
import { type XenBusType, XenbusBus } from './bus.js';
import type { XenbusClient } from './client.js';
import type { XenbusDevice } from './device.js';
import { XenstoreError } from './errors.js';
import { switchState, XenbusState, xenbusStateName } from './state.js';

/** How long the shutdown hook waits for each device to close (5*HZ in xenbus_frontend_dev_shutdown). */
export const FRONTEND_SHUTDOWN_TIMEOUT_MS = 5000;

export const FRONTEND_BUS_TYPE: XenBusType = {
  root: 'device',
  levels: 2,
  otherendIdKey: 'backend-id',
  otherendPathKey: 'backend',
  // frontend_bus_id: "device/vbd/51712" -> "vbd-51712".
  async busId(_client: XenbusClient, nodename: string): Promise<string> {
    const slash = nodename.indexOf('/');
    if (slash < 0) throw new RangeError(`frontend nodename ${JSON.stringify(nodename)} has no '/'`);
    return nodename.slice(slash + 1).replaceAll('/', '-');
  },
  async probeType(bus: XenbusBus, type: string): Promise<void> {
    let names: string[];
    try {
      names = await bus.client.directory(`device/${type}`);
    } catch (e) {
      if (e instanceof XenstoreError) return;
      throw e;
    }
    for (const name of names) await bus.probeNode(type, `device/${type}/${name}`);
  },
  ignoreOnShutdown: true,
  unregisterOnOtherendUnknown: false,
};

export class FrontendBus extends XenbusBus {
  constructor(env: Env, client: XenbusClient) {
    super(env, client, FRONTEND_BUS_TYPE);
  }

  /**
   * The system is shutting down (device_shutdown → xenbus_frontend_dev_shutdown for each device, last
   * registered first): a Connected device switches to Closing and waits up to 5 s for its `down`
   * completion; from now on a backend Closing closes the frontend directly instead of reaching the driver.
   */
  async shutdown(): Promise<void> {
    this.systemShuttingDown = true;
    for (const dev of this.devices().reverse()) await this.shutdownDevice(dev);
  }

  private async shutdownDevice(dev: XenbusDevice): Promise<void> {
    if (dev.state !== XenbusState.Connected) {
      this.env.trace.log(
        'xenbus',
        `xenbus_frontend_dev_shutdown: ${dev.nodename}: ${xenbusStateName(dev.state)} != Connected, skipping`,
      );
      return;
    }
    await switchState(dev, XenbusState.Closing);
    const r = await this.env.wait(dev.downQueue, () => dev.down, {
      what: `${dev.nodename} to close (frontend Closed)`,
      timeoutMs: FRONTEND_SHUTDOWN_TIMEOUT_MS,
      timeoutName: 'xenbus_frontend_dev_shutdown 5 s timeout',
    });
    if (r === 'timeout') {
      this.env.trace.log('xenbus', `xenbus_frontend_dev_shutdown: ${dev.nodename} timeout closing device`);
    }
  }
}
