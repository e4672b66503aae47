/**
 * libxl__device_hotplug (4.2, libxl_linux.c + libxl_device.c): run the backend's `script` with `add` or
 * `remove` as a child of xl, with the environment libxl sets (script, XENBUS_TYPE, XENBUS_PATH,
 * XENBUS_BASE_PATH), killed with SIGKILL after LIBXL_HOTPLUG_TIMEOUT. A failed `add` fails the device
 * (the script's hotplug-error is logged); a failed `remove` is only reported.
 *
 * The kernel model's exec has no environment: variables travel as leading NAME=value arguments, as
 * env(1) would pass them.
 *
 * Only 4.2 runs scripts (libxl: call hotplug scripts from libxl for vbd); before it, udev ran them on the
 * backend device's uevents (xen-backend.rules) and libxl only wrote the backend's `script` node. 4.2
 * writes `libxl/disable_udev` at domain creation (run_hotplug_scripts=1, the xl.conf default), which
 * both makes libxl run the scripts (libxl__get_hotplug_script_info) and the udev-started ones exit.
 */
import { KernelError } from '../../kernel/errno.js';
import { DISABLE_UDEV_PATH } from '../hotplug/udev-gate.js';
import { LIBXL_HOTPLUG_TIMEOUT, type LibxlCtx, LibxlError } from './context.js';
import type { LibxlVersion } from './host.js';

/** Whether this libxl runs the hotplug scripts itself (4.2) or leaves them to udev (4.1, 4.2-pre, xend). */
export function libxlRunsHotplugScripts(version: LibxlVersion): boolean {
  return version === '4.2';
}

export type HotplugAction = 'add' | 'remove';

export function hotplugArgs(script: string, action: HotplugAction, bePath: string): string[] {
  return [`script=${script}`, 'XENBUS_TYPE=vbd', `XENBUS_PATH=${bePath}`, 'XENBUS_BASE_PATH=backend', action];
}

/** Splits env(1)-style arguments into the environment and the remaining argv. */
export function splitEnvArgs(args: readonly string[]): { env: Map<string, string>; argv: string[] } {
  const env = new Map<string, string>();
  let i = 0;
  for (; i < args.length; i++) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(args[i]!);
    if (!m) break;
    env.set(m[1]!, m[2]!);
  }
  return { env, argv: args.slice(i) };
}

/** Runs the hotplug script; 0 or a libxl error code. */
export async function runHotplug(ctx: LibxlCtx, bePath: string, action: HotplugAction): Promise<number> {
  if (!libxlRunsHotplugScripts(ctx.version)) return 0; // udev runs them
  // libxl__get_hotplug_script_info: without libxl/disable_udev, udev is in charge.
  if ((await ctx.xs.tryRead(`/local/domain/0/${DISABLE_UDEV_PATH}`)) === undefined) return 0;
  const script = await ctx.xs.tryRead(`${bePath}/script`);
  if (script === undefined || script === '') return 0; // no script: nothing to run
  const what = `${script} ${action}`;
  ctx.op(`hotplug ${what} ${bePath}`);
  let pid: number;
  try {
    pid = await ctx.proc.spawn(script, hotplugArgs(script, action, bePath), {
      name: script.slice(script.lastIndexOf('/') + 1),
    });
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
    ctx.log(
      'error',
      'libxl_device.c:device_hotplug',
      `unable to execute hotplug script ${script}: ${e.message}`,
    );
    return action === 'add' ? LibxlError.ERROR_FAIL : 0;
  }
  let waited = await ctx.proc.waitpid(pid, { timeoutMs: LIBXL_HOTPLUG_TIMEOUT * 1000 });
  if (waited === undefined) {
    ctx.log(
      'error',
      'libxl_device.c:device_hotplug_timeout',
      `killing hotplug script ${what} because of timeout`,
    );
    await ctx.proc.kill(pid, 'SIGKILL');
    waited = await ctx.proc.waitpid(pid);
    ctx.log(
      'error',
      'libxl_exec.c:libxl_report_child_exitstatus',
      `${what} [${pid}] died due to fatal signal Killed`,
    );
    return action === 'add' ? LibxlError.ERROR_TIMEDOUT : 0;
  }
  const st = waited!.status;
  if (st.signal === undefined && (st.code ?? 0) === 0) return 0;
  const level = action === 'add' ? 'error' : 'warning';
  ctx.log(
    level,
    'libxl_exec.c:libxl_report_child_exitstatus',
    st.signal !== undefined
      ? `${what} [${pid}] died due to fatal signal ${st.signal}`
      : `${what} [${pid}] exited with error status ${st.code}`,
  );
  const hotplugError = await ctx.xs.tryRead(`${bePath}/hotplug-error`);
  if (hotplugError !== undefined)
    ctx.log(level, 'libxl_device.c:device_hotplug_child_death_cb', `script: ${hotplugError}`);
  return action === 'add' ? LibxlError.ERROR_FAIL : 0;
}
