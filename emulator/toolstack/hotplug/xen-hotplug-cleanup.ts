/**
 * /etc/xen/scripts/xen-hotplug-cleanup (tools/hotplug/Linux/xen-hotplug-cleanup), which udev runs on
 * every xen-backend `remove` uevent: under the "block" lock, remove the device's frontend directory (as
 * the backend's `frontend` node names it), the backend directory, `error/<XENBUS_PATH>` and, when the
 * guest's /vm entry has one, its `device/<class>/<devid>` (or `device/tap2/<devid>` for a blktap2 vbd),
 * each with `xenstore-rm -t` (tidy: emptied parents go too) and every failure ignored (`|| true`).
 * Removing the backend directory is what takes `hotplug-status` away: xend's waitForBackend_destroy
 * waits for exactly that.
 */
import type { XsDaemonConnector } from '../../../drivers/xenbus/direct-transport.js';
import type { Kernel } from '../../kernel/kernel.js';
import type { Process, Program } from '../../kernel/process.js';
import { splitEnvArgs } from '../libxl/hotplug-exec.js';
import { XsHandle } from '../libxl/xs-handle.js';
import { claimLock, releaseLock } from './lock.js';
import { deferredToLibxl } from './udev-gate.js';

export const XEN_HOTPLUG_CLEANUP_SCRIPT = 'xen-hotplug-cleanup';

/**
 * `xenstore-rm -t path`: remove `path`, then each parent that has neither children nor a value, in one
 * transaction (xenstore_client.c). False when the first removal failed (the node did not exist).
 */
export async function xenstoreRmTidy(xs: XsHandle, path: string): Promise<boolean> {
  return xs.transaction(async (t) => {
    if (!(await xs.tryRm(path, t))) return false;
    let p = path;
    for (;;) {
      const slash = p.lastIndexOf('/');
      if (slash <= 0) break;
      p = p.slice(0, slash);
      const children = await xs.tryDirectory(p, t);
      if (children === undefined || children.length > 0) break;
      const value = await xs.tryRead(p, t);
      if (value === undefined || value.length > 0) break;
      if (!(await xs.tryRm(p, t))) break;
    }
    return true;
  });
}

export function xenHotplugCleanupScript(kernel: Kernel, xenstored: XsDaemonConnector): Program {
  return async (proc: Process, args: readonly string[]): Promise<number> => {
    const { env } = splitEnvArgs(args);
    if (await deferredToLibxl(proc, kernel, xenstored, env)) return 0;
    const xbPath = env.get('XENBUS_PATH') ?? '';
    const xs = new XsHandle(proc, kernel, xenstored);
    await claimLock(kernel, proc, 'block');
    try {
      kernel.env.trace.emit('hotplug', 'run', { pid: proc.pid, command: 'cleanup', path: xbPath });
      // path_array=( ${XENBUS_PATH//\// } ): backend DEVCLASS VMID DEVID
      const parts = xbPath.split('/').filter((p) => p !== '');
      const [, devclass, vmid, devid] = parts;
      const vm = vmid === undefined ? '' : ((await xs.tryRead(`/local/domain/${vmid}/vm`)) ?? '');
      let vmDev = '';
      if (vm !== '') {
        vmDev = `${vm}/device/${devclass ?? ''}/${devid ?? ''}`;
        if ((await xs.tryRead(vmDev)) === undefined && devclass === 'vbd')
          vmDev = `${vm}/device/tap2/${devid ?? ''}`;
      }
      const frontend = xbPath === '' ? undefined : await xs.tryRead(`${xbPath}/frontend`);
      if (frontend !== undefined && frontend !== '') await xenstoreRmTidy(xs, frontend);
      if (xbPath !== '') {
        await xenstoreRmTidy(xs, xbPath);
        await xenstoreRmTidy(xs, `error/${xbPath}`);
      }
      if (vmDev !== '') await xenstoreRmTidy(xs, vmDev);
    } finally {
      releaseLock(kernel, proc, 'block');
      await xs.close();
    }
    return 0;
  };
}
