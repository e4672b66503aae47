/**
 * The hotplug scripts' lock (tools/hotplug/Linux/locking.sh, flock version of 5622adc372): claim_lock
 * opens /var/run/xen-hotplug/<name> and flock -x's it, sleeping (interruptibly) while another script
 * holds it; release_lock removes the file. The lock belongs to the process that took it and goes when
 * that process exits, killed or not, as a flock does when its descriptor is closed.
 * Simplification: the kernel model has no regular files or flock, so the lock is a table per kernel;
 * the scripts release it in a `finally`, which runs on SIGKILL too (TaskKilled unwinds the task).
 */
import type { Kernel } from '../../kernel/kernel.js';
import type { Process } from '../../kernel/process.js';
import type { WaitQueue } from '../../runtime/engine.js';

export const LOCK_BASEDIR = '/var/run/xen-hotplug';

interface LockState {
  owner: Process | undefined;
  queue: WaitQueue;
}

const tables = new WeakMap<Kernel, Map<string, LockState>>();

function lockOf(kernel: Kernel, name: string): LockState {
  let table = tables.get(kernel);
  if (!table) {
    table = new Map();
    tables.set(kernel, table);
  }
  let s = table.get(name);
  if (!s) {
    s = { owner: undefined, queue: kernel.env.waitQueue(`flock ${LOCK_BASEDIR}/${name}`) };
    table.set(name, s);
  }
  return s;
}

/** True when the owner still holds it (a dead owner's flock is gone with its descriptor). */
function held(s: LockState): boolean {
  return s.owner !== undefined && s.owner.state === 'live';
}

/** claim_lock <name> */
export async function claimLock(kernel: Kernel, proc: Process, name: string): Promise<void> {
  const s = lockOf(kernel, name);
  if (s.owner === proc) throw new Error(`${proc.label}: claim_lock ${name} twice`);
  await kernel.waits.waitInterruptible(s.queue, () => !held(s), {
    what: `flock -x ${LOCK_BASEDIR}/${name}`,
    holders: () => (s.owner && held(s) ? [s.owner] : []),
  });
  s.owner = proc;
  kernel.env.trace.emit('hotplug', 'lock', { pid: proc.pid, name });
}

/** release_lock <name>; a no-op when `proc` does not hold it. */
export function releaseLock(kernel: Kernel, proc: Process, name: string): void {
  const s = lockOf(kernel, name);
  if (s.owner !== proc) return;
  s.owner = undefined;
  kernel.env.trace.emit('hotplug', 'unlock', { pid: proc.pid, name });
  s.queue.wakeAll();
}

/** The pid holding the lock, if any (what `cat` of the lock directory would tell an admin). */
export function lockHolder(kernel: Kernel, name: string): number | undefined {
  const s = tables.get(kernel)?.get(name);
  return s && held(s) ? s.owner!.pid : undefined;
}
