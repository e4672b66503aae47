/**
 * tapdisk's version switches, from its command line (`tapdisk2 --variant=xapi --reply-before-teardown`)
 * or from the defaults the program was registered with:
 * - `variant` 'xen-4.1': Xen's in-tree tapdisk2 (DETACH closes the ring fd, then munmaps it);
 *   'xapi': xapi-project/blktap after fa28881 (REMOVE_DEVICE retried while EBUSY, servicing I/O, before
 *   unmapping; abandoned when the tap-ctl client goes away).
 * - `replyBeforeTeardown`: send the DETACH reply before closing and unmapping the ring (teardown §3.7).
 * - `latencyMs`: modelled service time of every image request.
 */
import type { ImageFaults } from './image-faults.js';

export type TapdiskVariant = 'xen-4.1' | 'xapi';

export interface TapdiskOptions {
  variant: TapdiskVariant;
  replyBeforeTeardown: boolean;
  latencyMs: number;
  /** Storage faults a scenario injects under the image files (not a command-line option). */
  imageFaults?: ImageFaults;
}

export const DEFAULT_TAPDISK_OPTIONS: TapdiskOptions = {
  variant: 'xen-4.1',
  replyBeforeTeardown: false,
  latencyMs: 1,
};

export function parseTapdiskArgs(
  args: readonly string[],
  defaults: TapdiskOptions = DEFAULT_TAPDISK_OPTIONS,
): TapdiskOptions {
  const out = { ...defaults };
  for (const arg of args) {
    if (arg === '--reply-before-teardown') out.replyBeforeTeardown = true;
    else if (arg.startsWith('--variant=')) {
      const v = arg.slice('--variant='.length);
      if (v !== 'xen-4.1' && v !== 'xapi') {
        throw new RangeError(`tapdisk2 ${arg}: variant '${v}' is neither 'xen-4.1' nor 'xapi'`);
      }
      out.variant = v;
    } else if (arg.startsWith('--latency-ms=')) {
      const n = Number(arg.slice('--latency-ms='.length));
      if (!Number.isFinite(n) || n < 0) throw new RangeError(`tapdisk2 ${arg}: not a latency >= 0`);
      out.latencyMs = n;
    } else {
      throw new RangeError(
        `tapdisk2: unknown argument '${arg}' (known: --variant=xen-4.1|xapi, --reply-before-teardown, --latency-ms=N)`,
      );
    }
  }
  return out;
}
