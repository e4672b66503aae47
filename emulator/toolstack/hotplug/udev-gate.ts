/**
 * The top of xen-hotplug-common.sh from 4.2 on: a script started by udev (UDEV_CALL set by the 4.2
 * rules) exits 0 at once when libxl wrote `libxl/disable_udev` in dom0's home, because libxl runs the
 * hotplug scripts itself (libxl__device_hotplug). Run from libxl (no UDEV_CALL), or under the 4.1 rules,
 * the script goes on.
 */
import type { XsDaemonConnector } from '../../../drivers/xenbus/direct-transport.js';
import type { Kernel } from '../../kernel/kernel.js';
import type { Process } from '../../kernel/process.js';
import { XsHandle } from '../libxl/xs-handle.js';

/** libxl_internal.h DISABLE_UDEV_PATH (relative: dom0's /local/domain/0/libxl/disable_udev). */
export const DISABLE_UDEV_PATH = 'libxl/disable_udev';

/** True when the script must exit 0 without doing anything. */
export async function deferredToLibxl(
  proc: Process,
  kernel: Kernel,
  xenstored: XsDaemonConnector,
  env: ReadonlyMap<string, string>,
): Promise<boolean> {
  if ((env.get('UDEV_CALL') ?? '') === '') return false;
  // `xenstore-read "libxl/disable_udev"`: a process of its own with its own connection.
  const xs = new XsHandle(proc, kernel, xenstored);
  try {
    const deferred = (await xs.tryRead(DISABLE_UDEV_PATH)) !== undefined;
    if (deferred) kernel.env.trace.emit('hotplug', 'deferred-to-libxl', { pid: proc.pid, name: proc.name });
    return deferred;
  } finally {
    await xs.close();
  }
}
