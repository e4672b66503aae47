/**
 * The two procfs files user space reads to find drivers: `/proc/misc` (drivers/char/misc.c
 * misc_seq_show, "%3i %s\n" per device, newest registration first) and `/proc/devices`
 * (fs/proc/devices.c: "Character devices:" then one "%3d %s\n" per char region, a blank line,
 * "Block devices:" then one per block major). Both are rendered when read, as seq_file does.
 * Simplification: they are attribute nodes of the name space, not a mounted procfs.
 */
import type { BlockLayer } from './block-device.js';
import type { CharDevices } from './char-device.js';
import type { Namespace } from './namespace.js';

export const PROC_MISC = '/proc/misc';
export const PROC_DEVICES = '/proc/devices';

export function renderProcMisc(chars: CharDevices): string {
  return chars
    .miscList()
    .map((d) => `${String(d.minor).padStart(3, ' ')} ${d.name}\n`)
    .join('');
}

export function renderProcDevices(chars: CharDevices, blocks: BlockLayer): string {
  const row = (major: number, name: string) => `${String(major).padStart(3, ' ')} ${name}\n`;
  return [
    'Character devices:\n',
    ...chars.regionList().map((r) => row(r.major, r.name)),
    '\nBlock devices:\n',
    ...blocks.majorList().map((b) => row(b.major, b.name)),
  ].join('');
}

/** Creates /proc/misc and /proc/devices (read-only) in the name space. */
export function mountProcfs(ns: Namespace, chars: CharDevices, blocks: BlockLayer): void {
  ns.mkdir('/proc', { parents: true });
  ns.createAttribute(PROC_MISC, { show: () => renderProcMisc(chars) });
  ns.createAttribute(PROC_DEVICES, { show: () => renderProcDevices(chars, blocks) });
}
