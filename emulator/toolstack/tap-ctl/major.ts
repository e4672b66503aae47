/**
 * tap-ctl-major.c: the block major registered as "tapdev", read from /proc/devices with fgets into a
 * 32-byte buffer and sscanf("%d tapdev%n"). Faithful to its quirk: `major` is reset to -ENODEV only
 * after each successful fgets, and a line that starts with a number but names another driver still
 * stores that number, so without a tapdev major the result is the number of the last line read when it
 * starts with one (the last block major), else -ENODEV.
 */
import { errno, type TapCtlContext } from './context.js';
import { fgetsChunks, PROC_DEVICES, readProcFile } from './procfs.js';

/** sscanf(buf, "%d tapdev%n", &major, &offset): fields assigned and whether %n was reached. */
export function scanTapdevLine(buf: string): { n: number; major?: number; matched: boolean } {
  const m = /^\s*([+-]?\d+)/.exec(buf);
  if (!m) return { n: 0, matched: false };
  const major = Number(m[1]) | 0;
  // A blank in the format skips any white space (none needed), then "tapdev" must follow literally.
  const rest = buf.slice(m[0].length).replace(/^\s+/, '');
  return { n: 1, major, matched: rest.startsWith('tapdev') };
}

/** tap_ctl_blk_major(): the tapdev block major, or a negative errno. */
export async function tapCtlBlkMajor(ctx: TapCtlContext): Promise<number> {
  const devices = await readProcFile(ctx, PROC_DEVICES);
  if ('errno' in devices) return -devices.errno;
  // An empty file leaves `major` uninitialised in C; -ENODEV stands for that garbage here.
  let major = -errno('ENODEV');
  for (const buf of fgetsChunks(devices.text, 32)) {
    major = -errno('ENODEV');
    const scan = scanTapdevLine(buf);
    if (scan.n === 1) major = scan.major!;
    if (scan.n === 1 && scan.matched) break;
  }
  return major;
}
