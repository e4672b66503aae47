/**
 * The backend bus of dom0's kernel (Linux drivers/xen/xenbus/xenbus_probe_backend.c): devices are
 * `backend/<type>/<frontend domid>/<devid>` under dom0's home; the other end is named by `frontend` and
 * `frontend-id`. The watch on the frontend's state (which the guest can write) refuses new events while
 * one is pending (XSA-349, frontend_will_handle), and a frontend whose state node vanished (Unknown)
 * gets its backend device unregistered.
 */
import type { Env } from '../../emulator/runtime/engine.js';
import { type XenBusType, XenbusBus } from './bus.js';
import type { XenbusClient } from './client.js';
import { XenstoreError } from './errors.js';
import { joinPath, scanInteger } from './state.js';
import { XS_ERRNO } from './xs-wire.js';

export const BACKEND_BUS_TYPE: XenBusType = {
  root: 'backend',
  levels: 3,
  otherendIdKey: 'frontend-id',
  otherendPathKey: 'frontend',
  // backend_bus_id: "<type>-<frontend-id>-<devid>", only while the frontend directory exists.
  async busId(client: XenbusClient, nodename: string): Promise<string> {
    const parts = nodename.split('/');
    const type = parts[1] ?? '';
    if (parts.length < 3 || type === '') {
      throw new RangeError(`backend nodename ${JSON.stringify(nodename)} is not backend/<type>/...`);
    }
    const devid = parts[parts.length - 1]!;
    const idText = await client.read(joinPath(nodename, 'frontend-id'));
    const frontend = await client.read(joinPath(nodename, 'frontend'));
    const domid = scanInteger(idText);
    if (domid === undefined) {
      throw new XenstoreError(
        'EINVAL',
        'READ',
        joinPath(nodename, 'frontend-id'),
        `value ${JSON.stringify(idText)}`,
      );
    }
    if (frontend.length === 0) throw new RangeError(`${nodename}/frontend is empty`);
    if (!(await client.exists(frontend))) {
      throw new XenstoreError(
        'ENOENT',
        'DIRECTORY',
        frontend,
        `frontend of ${nodename} (errno ${XS_ERRNO.ENOENT})`,
      );
    }
    return `${type}-${domid}-${devid}`;
  },
  async probeType(bus: XenbusBus, type: string): Promise<void> {
    let domids: string[];
    try {
      domids = await bus.client.directory(`backend/${type}`);
    } catch (e) {
      if (e instanceof XenstoreError) return;
      throw e;
    }
    for (const domid of domids) {
      let devids: string[];
      try {
        devids = await bus.client.directory(`backend/${type}/${domid}`);
      } catch (e) {
        if (e instanceof XenstoreError) continue;
        throw e;
      }
      for (const devid of devids) await bus.probeNode(type, `backend/${type}/${domid}/${devid}`);
    }
  },
  // XSA-349: the frontend state watch keeps no more than one pending event.
  otherendWillHandle: (watch) => watch.nrPending === 0,
  ignoreOnShutdown: false,
  unregisterOnOtherendUnknown: true,
};

export class BackendBus extends XenbusBus {
  constructor(env: Env, client: XenbusClient) {
    super(env, client, BACKEND_BUS_TYPE);
  }
}
