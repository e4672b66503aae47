/**
 * The backend bus of dom0's kernel (Linux drivers/xen/xenbus/xenbus_probe_backend.c): devices are
 * `backend/<type>/<frontend domid>/<devid>` under dom0's home; the other end is named by `frontend` and
 * `frontend-id`. The watch on the frontend's state (which the guest can write) refuses new events while
 * one is pending (XSA-349, frontend_will_handle), and a frontend whose state node vanished (Unknown)
 * gets its backend device unregistered.
 */
import type { Env, WaitFor } from '../../emulator/runtime/engine.js';
import { type XenBusType, XenbusBus } from './bus.js';
import type { XenbusClient } from './client.js';
import type { XenbusDevice } from './device.js';
import { XenstoreError } from './errors.js';
import { joinPath, scanInteger, switchState, XenbusState, xenbusStateName } from './state.js';
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

/**
 * C23: before "xenbus: move xenbus_dev_shutdown() into frontend code" (Paul Durrant, Dec 2019) the one
 * shutdown hook, xenbus_dev_shutdown (switch a Connected device to Closing, wait <= 5 s for its `down`
 * completion), was registered on the backend bus too, where nothing ever completes `down`: dom0's
 * power-off waited 5 s per connected backend device. 'frontend-only' is the code after the move.
 */
export type BackendShutdownHook = 'xenbus_dev_shutdown' | 'frontend-only';
export const BACKEND_SHUTDOWN_HOOKS: readonly BackendShutdownHook[] = [
  'xenbus_dev_shutdown',
  'frontend-only',
];

/** 5*HZ in xenbus_dev_shutdown. */
export const XENBUS_DEV_SHUTDOWN_TIMEOUT_MS = 5000;

export class BackendBus extends XenbusBus {
  readonly shutdownHook: BackendShutdownHook;

  constructor(env: Env, client: XenbusClient, opts: { shutdownHook?: BackendShutdownHook } = {}) {
    super(env, client, BACKEND_BUS_TYPE);
    const hook = opts.shutdownHook ?? 'frontend-only';
    if (!BACKEND_SHUTDOWN_HOOKS.includes(hook)) {
      throw new RangeError(
        `backend bus shutdownHook: ${JSON.stringify(hook)} is not one of ${BACKEND_SHUTDOWN_HOOKS.map((x) => `'${x}'`).join(', ')}`,
      );
    }
    this.shutdownHook = hook;
  }

  /**
   * What a party holding on until `nodename`'s device is removed waits for once the removal is in
   * xenwatch's hands: an event of the bus root watch naming the device's directory or a parent of it is
   * queued (or its callback, xenbus_dev_changed, is running). A registered device's directory produces
   * such an event only by disappearing (its creation was handled before it registered; simplification:
   * a remove and re-create before xenwatch runs counts as a removal). Undefined when no removal is
   * pending there, i.e. the directory is presumably still there and someone has yet to remove it.
   */
  removalWait(nodename: string): WaitFor | undefined {
    const xenwatch = this.client.xenwatch;
    if (xenwatch === undefined) return undefined;
    const root = this.type.root;
    const place = xenwatch.findEvent(
      (watch, path) => watch.node === root && namesDirectoryOf(path, nodename),
    );
    if (place === undefined) return undefined;
    return xenwatch.waitFor(
      `${xenwatch.name} to ${place === 'queued' ? 'run' : 'finish'} the removal of ${nodename}`,
    );
  }

  /**
   * device_shutdown for the backend bus's devices (last registered first). Since the move the bus has no
   * shutdown hook; before it, each Connected device went to Closing and waited for a completion only the
   * frontend bus ever signals.
   */
  async shutdown(): Promise<void> {
    if (this.shutdownHook === 'frontend-only') return;
    for (const dev of this.devices().reverse()) await this.devShutdown(dev);
  }

  private async devShutdown(dev: XenbusDevice): Promise<void> {
    if (dev.state !== XenbusState.Connected) {
      this.env.trace.log(
        'xenbus',
        `xenbus_dev_shutdown: ${dev.nodename}: ${xenbusStateName(dev.state)} != Connected, skipping`,
      );
      return;
    }
    await switchState(dev, XenbusState.Closing);
    const r = await this.env.wait(dev.downQueue, () => dev.down, {
      what: `${dev.nodename} to close (its down completion)`,
      timeoutMs: XENBUS_DEV_SHUTDOWN_TIMEOUT_MS,
      timeoutName: 'xenbus_dev_shutdown 5 s timeout',
    });
    if (r === 'timeout')
      this.env.trace.log('xenbus', `xenbus_dev_shutdown: ${dev.nodename} timeout closing device`);
  }
}

/**
 * True when a change event for `path` can unregister the device at `nodename`: `path` is that directory
 * or a parent deep enough for xenbus_dev_changed to look at (two slashes: `backend/<type>/<domid>`).
 */
export function namesDirectoryOf(path: string, nodename: string): boolean {
  if (path !== nodename && !(nodename.startsWith(path) && nodename[path.length] === '/')) return false;
  let slashes = 0;
  for (const ch of path) if (ch === '/') slashes++;
  return slashes >= 2;
}
