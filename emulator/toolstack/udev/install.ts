/**
 * udev in dom0: the xen-backend rules of the toolstack's era installed, and udevd started at boot so it
 * reads every uevent from the first backend device on.
 */
import type { Kernel } from '../../kernel/kernel.js';
import type { Process } from '../../kernel/process.js';
import type { LibxlVersion } from '../libxl/host.js';
import {
  parseRules,
  type UdevRule,
  XEN_BACKEND_RULES_41,
  XEN_BACKEND_RULES_42,
  XEN_BACKEND_RULES_PATH,
} from './rules.js';
import { UDEVADM_PATH, UDEVD_PATH, udevadmProgram, udevdProgram } from './udevd.js';

/** The pid udevd got at boot (below the kernel's firstPid, which the run's own processes start from). */
export const UDEVD_BOOT_PID = 42;

/** The rules installed with a toolstack: 4.2's defer to libxl; the older ones run the scripts. */
export function xenBackendRules(version: LibxlVersion): UdevRule[] {
  return parseRules(XEN_BACKEND_RULES_PATH, version === '4.2' ? XEN_BACKEND_RULES_42 : XEN_BACKEND_RULES_41);
}

/** Installs udevd with the rules of `version` and starts it; returns its process. */
export function startUdevd(
  kernel: Kernel,
  version: LibxlVersion,
  options: { eventTimeoutS?: number } = {},
): Process {
  kernel.registerProgram(UDEVADM_PATH, udevadmProgram(kernel));
  kernel.registerProgram(
    UDEVD_PATH,
    udevdProgram(kernel, {
      rules: xenBackendRules(version),
      ...(options.eventTimeoutS === undefined ? {} : { eventTimeoutS: options.eventTimeoutS }),
    }),
  );
  return kernel.spawn(UDEVD_PATH, ['--daemon'], { name: 'udevd', bootPid: UDEVD_BOOT_PID });
}
