/**
 * /etc/xen/scripts/block (tools/hotplug/Linux/block with xen-hotplug-common.sh, block-common.sh and
 * locking.sh) as a dom0 process: `add` finds the major:minor of the backend's `params` device and
 * writes `physical-device` (hex "MAJ:MIN", which makes blkback open the device), then
 * `physical-device-path` and `hotplug-status = connected`; `remove` has nothing to undo for `phy`.
 * Failures go through `fatal`: `hotplug-error` and `hotplug-status = error`, a log line, exit 1.
 *
 * Image files go through a loop device: `add` binds the file with `losetup` (a child process, as the
 * script runs it), records the device in `node` and writes it as `physical-device`; `remove` reads
 * `node` and runs `losetup -d` on it. C21 (teardown.md §4): before 92e6cb5673 (2009, Gary Grebus) the
 * two ran unlocked and `add` never asked whether the device was still wanted, so a `remove` that ran
 * while `add` was still working found no `node` to detach, and the loop device `add` then bound was
 * never unbound. After it both take the "block" lock and `add` gives up, under the lock, unless the
 * backend still reads InitWait ("Path closed or removed during hotplug add"). `phy` always had the
 * lock and is given the same re-check here.
 * Simplifications: check_device_sharing is not modelled; libxl on Linux sends regular files down the
 * `phy` path (libxl__try_phy_backend accepts S_ISREG), so a `phy` params that is not a device node but
 * an absolute file path takes the script's `file` branch, as a `type = file` backend (xend) does.
 * Started by udev under the 4.2 rules (UDEV_CALL), it exits 0 when libxl runs the scripts (udev-gate.ts).
 * XENBUS_PATH from a uevent is relative ("backend/vbd/1/51712"): xenstore resolves it in dom0's home.
 * A slow `add` (armSlowHotplugAdd: a loaded dom0, a slow losetup) sleeps before it writes
 * `physical-device`, so the frontend may connect first (C16). In the loop-file branch the sleep sits
 * where the script's time goes, before it binds the file: the 2009 script walked /dev/loop* running
 * `losetup $dev` on each for its sharing check before `losetup $loopdev $file`. A `remove` during that
 * sleep finds no `node` (C21); one after the bind finds it and unbinds the device.
 */
import type { XsDaemonConnector } from '../../../drivers/xenbus/direct-transport.js';
import type { Kernel } from '../../kernel/kernel.js';
import type { Process, Program } from '../../kernel/process.js';
import { splitEnvArgs } from '../libxl/hotplug-exec.js';
import { XsHandle } from '../libxl/xs-handle.js';
import { claimLock, releaseLock } from './lock.js';
import { LOSETUP_PATH } from './losetup.js';
import { deferredToLibxl } from './udev-gate.js';

export const BLOCK_SCRIPT = 'block';

/** C21: the script before 92e6cb5673 (loop files unlocked, no re-check in `add`) or after it. */
export type BlockScriptVersion = '2009-pre' | '92e6cb5673';
export const BLOCK_SCRIPT_VERSIONS: readonly BlockScriptVersion[] = ['2009-pre', '92e6cb5673'];

/** Which version of the script is installed in a kernel's /etc/xen/scripts (default: after the fix). */
const installed = new WeakMap<Kernel, BlockScriptVersion>();

export function setBlockScriptVersion(kernel: Kernel, version: BlockScriptVersion): void {
  if (!BLOCK_SCRIPT_VERSIONS.includes(version)) {
    throw new RangeError(
      `block script version ${JSON.stringify(version)} is not one of ${BLOCK_SCRIPT_VERSIONS.join(', ')}`,
    );
  }
  installed.set(kernel, version);
}

export function blockScriptVersion(kernel: Kernel): BlockScriptVersion {
  return installed.get(kernel) ?? '92e6cb5673';
}

/** Delays armed for the next `add` runs of a kernel's script, oldest first (one run each). */
const slowAdds = new WeakMap<Kernel, number[]>();

/** The next `block add` run on `kernel` sleeps `ms` before it writes physical-device. */
export function armSlowHotplugAdd(kernel: Kernel, ms: number): void {
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new RangeError(`slow hotplug: delay ${JSON.stringify(ms)} is not a positive duration in ms`);
  }
  const q = slowAdds.get(kernel) ?? [];
  q.push(ms);
  slowAdds.set(kernel, q);
}

/** How many armed slow `add` runs are still to come. */
export function pendingSlowHotplugAdds(kernel: Kernel): number {
  return slowAdds.get(kernel)?.length ?? 0;
}

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
    if (await deferredToLibxl(proc, kernel, xenstored, env)) return 0;
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

    /** `$(cmd)`: runs a program as a child, waits for it; its exit code and what it printed. */
    async function run(path: string, argv: string[]): Promise<{ code: number; out: string[] }> {
      const pid = await proc.spawn(path, argv);
      const child = kernel.processes.get(pid);
      const w = await proc.waitpid(pid);
      const st = w?.status;
      const code = st === undefined ? 1 : st.signal !== undefined ? 128 : (st.code ?? 0);
      return { code, out: child ? [...child.output] : [] };
    }

    /** The backend must still be in InitWait: otherwise the toolstack gave up on it (92e6cb5673). */
    async function checkStillWanted(): Promise<void> {
      const state = await readDefault('state', 'unknown');
      if (state !== '2') await fatal(`Path closed or removed during hotplug add: ${xbPath} state: ${state}`);
    }

    /**
     * An armed delay goes to the first run that gets this far (a run that fails earlier keeps none):
     * before the loop device is bound (`losetup`) or, for a real device, before physical-device.
     */
    async function slowDown(before: 'losetup' | 'physical-device'): Promise<void> {
      const slowBy = slowAdds.get(kernel)?.shift();
      if (slowBy === undefined) return;
      kernel.env.trace.emit('fault', 'fault', {
        fault: 'slow-hotplug',
        pid: proc.pid,
        path: xbPath,
        ms: slowBy,
        before,
      });
      // nanosleep: a SIGKILL (libxl's hotplug timeout) kills the script before it writes anything.
      await proc.sleep(slowBy);
    }

    async function writeDev(major: number, minor: number, dev: string): Promise<void> {
      await xs.write(`${xbPath}/physical-device`, majorMinorHex(major, minor));
      await xs.write(`${xbPath}/physical-device-path`, dev);
      await xs.write(`${xbPath}/hotplug-status`, 'connected');
    }

    async function addFile(file: string, mode: string): Promise<number> {
      const fixed = blockScriptVersion(kernel) === '92e6cb5673';
      if (!file.startsWith('/')) return fatal(`${file} does not exist.`);
      if (fixed) await claimLock(kernel, proc, 'block');
      try {
        if (fixed) await checkStillWanted();
        await slowDown('losetup');
        const free = await run(LOSETUP_PATH, ['-f']);
        const loopdev = free.code === 0 ? (free.out[0] ?? '') : '';
        if (loopdev === '') return await fatal('Failed to find an unused loop device');
        const bind = await run(LOSETUP_PATH, [...(mode === 'r' ? ['-r'] : []), loopdev, file]);
        if (bind.code !== 0) return await fatal(`losetup ${loopdev} ${file} failed`);
        await xs.write(`${xbPath}/node`, loopdev);
        const node = kernel.ns.lookup(loopdev);
        if (node.kind !== 'blk') return await fatal(`${loopdev} is not a block device.`);
        await writeDev(node.major, node.minor, loopdev);
      } finally {
        if (fixed) releaseLock(kernel, proc, 'block');
      }
      return 0;
    }

    async function removeFile(): Promise<number> {
      const fixed = blockScriptVersion(kernel) === '92e6cb5673';
      if (fixed) await claimLock(kernel, proc, 'block');
      try {
        const node = await read('node');
        const r = await run(LOSETUP_PATH, ['-d', node]);
        // The script does not check losetup -d's status.
        if (r.code !== 0) log(`losetup -d ${node} failed: ${r.out.at(-1) ?? `exit ${r.code}`}`);
      } finally {
        if (fixed) releaseLock(kernel, proc, 'block');
      }
      return 0;
    }

    /** A `phy` params that names no device node but an absolute file: the loop-file branch. */
    function isImageFile(params: string): boolean {
      if (!params.startsWith('/')) return false;
      try {
        kernel.ns.lookup(params);
        return false;
      } catch {
        return true;
      }
    }

    async function runCommand(): Promise<number> {
      const type = await readDefault('type', 'MISSING');
      if (command === 'remove') {
        if (type === 'file') return removeFile();
        if (type === 'phy') {
          // Only a loop-file add records `node`; a real device has nothing to release.
          const node = await xs.tryRead(`${xbPath}/node`);
          const params = await xs.tryRead(`${xbPath}/params`);
          if (node !== undefined || (params !== undefined && isImageFile(params))) return removeFile();
        }
        return 0;
      }
      if ((await readDefault('physical-device', 'MISSING')) !== 'MISSING') return 0; // called twice
      const p = await read('params');
      const mode = await read('mode');
      if (type === 'file' || (type === 'phy' && isImageFile(p))) return addFile(p, mode);
      if (type !== 'phy') return fatal(`Unknown type ${type}`);
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
        await checkStillWanted();
        await slowDown('physical-device');
        await writeDev(node.major, node.minor, dev);
      } finally {
        releaseLock(kernel, proc, 'block');
      }
      return 0;
    }
  };
}
