/**
 * dom0's xenstore daemon, handed to the machine that booted it when both live in one thread (the sim
 * engine). dom0 records its daemon under the machine's slot-table buffer, which is the same
 * SharedArrayBuffer object in the builder and in dom0's boot context only when they share a thread;
 * under threads dom0 records it in its worker's copy of this module, so the main thread finds nothing.
 */
import type { XenstoreDaemon } from '../xenstored/daemon.js';

const daemons = new WeakMap<SharedArrayBuffer, XenstoreDaemon>();

/** Called by dom0's boot: `machineKey` is its machine's slot-table buffer. */
export function recordLocalXenstored(machineKey: SharedArrayBuffer, daemon: XenstoreDaemon): void {
  if (daemons.has(machineKey)) throw new Error('machine: dom0 booted twice on one slot table');
  daemons.set(machineKey, daemon);
}

/** The daemon dom0 recorded for this machine, when dom0 runs in this thread. */
export function localXenstored(machineKey: SharedArrayBuffer): XenstoreDaemon | undefined {
  return daemons.get(machineKey);
}
