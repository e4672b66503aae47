/**
 * /etc/xen/scripts/block (tools/hotplug/Linux/block with xen-hotplug-common.sh, block-common.sh and
 * locking.sh) as a dom0 process: `add` finds the major:minor of the backend's `params` device and
 * writes `physical-device` (hex "MAJ:MIN", which makes blkback open the device), then
 * `physical-device-path` and `hotplug-status = connected`; `remove` has nothing to undo for `phy`.
 * Failures go through `fatal`: `hotplug-error` and `hotplug-status = error`, a log line, exit 1.
 *
 * Like the script after 92e6cb5673 (C21), `add` re-checks under the lock that the toolstack still waits
 * for the device (backend still InitWait); the script does it for loop files, here it covers `phy`,
 * the only type the model has. Simplification: check_device_sharing is not modelled.
 */
import type { XsDaemonConnector } from '../../../drivers/xenbus/direct-transport.js';
import type { Kernel } from '../../kernel/kernel.js';
import type { Process, Program } from '../../kernel/process.js';
import { splitEnvArgs } from '../libxl/hotplug-exec.js';
import { XsHandle } from '../libxl/xs-handle.js';
import { claimLock, releaseLock } from './lock.js';

export const BLOCK_SCRIPT = 'block';

/** Thrown by fatal() to unwind to the script's exit. */
class ScriptExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** block-common.sh expand_dev: a bare name is under /dev. */
export function expandDev(p: string): string {
  return p.startsWith('/') ? p : `/dev/${p}`;
}

/** `stat -L -c %t:%T`: major and minor in lower-case hex without 0x. */
export function majorMinorHex(major: number, minor: number): string {
  return `${major.toString(16)}:${minor.toString(16)}`;
}

export function blockScript(kernel: Kernel, xenstored: XsDaemonConnector): Program {
  return async (proc: Process, args: readonly string[]): Promise<number> => {
    const { env, argv } = splitEnvArgs(args);
    const command = argv[0];
    const xbPath = env.get('XENBUS_PATH');
    const log = (msg: string) => {
      kernel.env.trace.log('hotplug', `block: ${msg}`);
      proc.print(msg);
    };
    if (xbPath === undefined || xbPath === '') {
      log('XENBUS_PATH is not set');
      return 1;
    }
    if (command !== 'add' && command !== 'remove') {
      log(`Invalid command: ${command ?? ''}`);
      return 1;
    }
    const xs = new XsHandle(proc, kernel, xenstored);
    const readDefault = async (node: string, dflt: string) => (await xs.tryRead(`${xbPath}/${node}`)) ?? dflt;
    const fatal = async (msg: string): Promise<never> => {
      await xs.transaction(async (t) => {
        await xs.write(`${xbPath}/hotplug-error`, msg, t);
        await xs.write(`${xbPath}/hotplug-status`, 'error', t);
      });
      log(msg);
      throw new ScriptExit(1);
    };
    const read = async (node: string) => {
      const v = await xs.tryRead(`${xbPath}/${node}`);
      if (v === undefined) return fatal(`xenstore-read ${xbPath}/${node} failed.`);
      return v;
    };
    kernel.env.trace.emit('hotplug', 'run', { pid: proc.pid, command, path: xbPath });
    try {
      return await runCommand();
    } catch (e) {
      if (e instanceof ScriptExit) return e.code;
      throw e;
    } finally {
      // Each xenstore-* call of the shell script is a process that closes its socket at exit.
      await xs.close();
    }

    async function runCommand(): Promise<number> {
      const type = await readDefault('type', 'MISSING');
      if (command === 'remove') {
        // `phy` has nothing to release; loop files would be detached here.
        if (type === 'file') return fatal('not implemented: file backend (loop devices are not modelled)');
        return 0;
      }
      if ((await readDefault('physical-device', 'MISSING')) !== 'MISSING') return 0; // called twice
      const p = await read('params');
      await read('mode');
      if (type !== 'phy') {
        if (type === 'file') return fatal('not implemented: file backend (loop devices are not modelled)');
        return fatal(`Unknown type ${type}`);
      }
      const dev = expandDev(p);
      let node: ReturnType<typeof kernel.ns.lookup> | undefined;
      try {
        node = kernel.ns.lookup(dev);
      } catch {
        node = undefined;
      }
      if (node === undefined) return fatal(`${dev} does not exist.`);
      if (node.kind !== 'blk') return fatal(`${dev} is not a block device.`);

      await claimLock(kernel, proc, 'block');
      try {
        const state = await readDefault('state', 'unknown');
        if (state !== '2') {
          return await fatal(`Path closed or removed during hotplug add: ${xbPath} state: ${state}`);
        }
        // write_dev + success
        await xs.write(`${xbPath}/physical-device`, majorMinorHex(node.major, node.minor));
        await xs.write(`${xbPath}/physical-device-path`, dev);
        await xs.write(`${xbPath}/hotplug-status`, 'connected');
      } finally {
        releaseLock(kernel, proc, 'block');
      }
      return 0;
    }
  };
}
