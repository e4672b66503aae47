/**
 * The procfs files tap-ctl reads. Simplification: the kernel model has no procfs, so /proc/misc is
 * rendered from the kernel's char-device table in Linux's format (drivers/char/misc.c: "%3i %s\n").
 */
import { MISC_MAJOR } from '../../kernel/char-device.js';
import type { Kernel } from '../../kernel/kernel.js';

export function procMisc(kernel: Kernel): string {
  return kernel.chars
    .list()
    .filter((d) => d.major === MISC_MAJOR && d.name !== 'misc')
    .map((d) => `${String(d.baseMinor).padStart(3, ' ')} ${d.name}\n`)
    .join('');
}

/** fscanf(f, "%d %Ns", &minor, name) over /proc/misc: the minor of `name`, or undefined. */
export function findMiscMinor(text: string, name: string, width: number): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^\s*([+-]?\d+)\s+(\S+)/.exec(line);
    if (m && m[2]!.slice(0, width) === name) return Number(m[1]);
  }
  return undefined;
}
