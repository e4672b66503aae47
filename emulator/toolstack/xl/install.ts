/**
 * Installs `xl`, the block hotplug script and xen-hotplug-cleanup into dom0's kernel (what `make install`
 * of tools/ does). udev's rules and daemon are installed and started by udev/install.ts.
 */
import { BLOCK_SCRIPT, blockScript } from '../hotplug/block.js';
import { XEN_HOTPLUG_CLEANUP_SCRIPT, xenHotplugCleanupScript } from '../hotplug/xen-hotplug-cleanup.js';
import { type ToolstackHost, XEN_SCRIPT_DIR, XL_PATH } from '../libxl/host.js';
import { xlProgram } from './xl.js';

export function installToolstack(host: ToolstackHost): void {
  host.kernel.registerProgram(XL_PATH, xlProgram(host));
  host.kernel.registerProgram(`${XEN_SCRIPT_DIR}/${BLOCK_SCRIPT}`, blockScript(host.kernel, host.xenstored));
  host.kernel.registerProgram(
    `${XEN_SCRIPT_DIR}/${XEN_HOTPLUG_CLEANUP_SCRIPT}`,
    xenHotplugCleanupScript(host.kernel, host.xenstored),
  );
}
