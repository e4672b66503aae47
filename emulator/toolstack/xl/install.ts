/** Installs `xl` and the block hotplug script into dom0's kernel (what `make install` of tools/ does). */
import { BLOCK_SCRIPT, blockScript } from '../hotplug/block.js';
import { type ToolstackHost, XEN_SCRIPT_DIR, XL_PATH } from '../libxl/host.js';
import { xlProgram } from './xl.js';

export function installToolstack(host: ToolstackHost): void {
  host.kernel.registerProgram(XL_PATH, xlProgram(host));
  host.kernel.registerProgram(`${XEN_SCRIPT_DIR}/${BLOCK_SCRIPT}`, blockScript(host.kernel, host.xenstored));
}
