/**
 * How tap-ctl reads the procfs files the kernel renders (emulator/kernel/procfs.ts): `/proc/misc`
 * through fscanf("%d %Ns") and `/proc/devices` through fgets into a 32-byte buffer.
 */
import { PROC_DEVICES, PROC_MISC } from '../../kernel/procfs.js';
import { errnoOf, type TapCtlContext } from './context.js';

export { PROC_DEVICES, PROC_MISC };

/** fopen + read: the text, or the errno fopen() would leave. */
export async function readProcFile(
  ctx: TapCtlContext,
  path: string,
): Promise<{ text: string } | { errno: number }> {
  try {
    return { text: await ctx.proc.readText(path) };
  } catch (e) {
    return { errno: errnoOf(ctx, e) };
  }
}

/**
 * `while (fscanf(f, "%d %<width>s", &minor, name) == 2) if (!strcmp(name, wanted)) ...` over
 * /proc/misc: the minor of `name`, or undefined. A token longer than `width` is cut there and the
 * rest of it makes the next "%d" fail, which ends the scan.
 */
export function findMiscMinor(text: string, name: string, width: number): number | undefined {
  let rest = text;
  for (;;) {
    const m = /^\s*([+-]?\d+)\s*(\S+)/.exec(rest);
    if (!m) return undefined;
    const token = m[2]!;
    const scanned = token.slice(0, width);
    if (scanned === name) return Number(m[1]);
    rest = rest.slice(m[0].length - (token.length - scanned.length));
  }
}

/** fgets(buf, size, f) over `text`: the successive chunks (each at most size-1 chars, ending at '\n'). */
export function fgetsChunks(text: string, size: number): string[] {
  const out: string[] = [];
  let at = 0;
  while (at < text.length) {
    const nl = text.indexOf('\n', at);
    const lineEnd = nl < 0 ? text.length : nl + 1;
    const end = Math.min(lineEnd, at + size - 1);
    out.push(text.slice(at, end));
    at = end;
  }
  return out;
}
