/**
 * tapdisk's version switches, from its command line (`tapdisk2 --variant=xapi --reply-before-teardown`)
 * or from the defaults the program was registered with:
 * - `variant` 'xen-4.1': Xen's in-tree tapdisk2 (DETACH closes the ring fd, then munmaps it);
 *   'xapi': xapi-project/blktap after fa28881 (REMOVE_DEVICE retried while EBUSY, servicing I/O, before
 *   unmapping; abandoned when the tap-ctl client goes away).
 * - `replyBeforeTeardown`: send the DETACH reply before closing and unmapping the ring (teardown §3.7).
 * - `latencyMs`: modelled service time of every image request.
 * - `openFailure` (teardown C18): '2011-06' frees the whole VBD when OPEN fails (left linked in the
 *   server's list, so the rollback DETACH touches freed memory); 'e403288' (2011-07-13, "control: Fix
 *   borked td create shutdown path") keeps the VBD and frees only its name.
 * - `controlExit` (teardown C17, xapi control only): '2012-07' asserts at exit that every accepted
 *   connection has its reply done (`conn->out.done`), aborting on one accepted but not yet read;
 *   '2132029' (2012-08-08, CA-86426) drops such connections.
 */
import type { ImageFaults } from './image-faults.js';

export type TapdiskVariant = 'xen-4.1' | 'xapi';
export const TAPDISK_OPEN_FAILURE_VERSIONS = ['2011-06', 'e403288'] as const;
export type TapdiskOpenFailure = (typeof TAPDISK_OPEN_FAILURE_VERSIONS)[number];
export const TAPDISK_CONTROL_EXIT_VERSIONS = ['2012-07', '2132029'] as const;
export type TapdiskControlExit = (typeof TAPDISK_CONTROL_EXIT_VERSIONS)[number];

export interface TapdiskOptions {
  variant: TapdiskVariant;
  replyBeforeTeardown: boolean;
  latencyMs: number;
  openFailure: TapdiskOpenFailure;
  controlExit: TapdiskControlExit;
  /** Storage faults a scenario injects under the image files (not a command-line option). */
  imageFaults?: ImageFaults;
}

export const DEFAULT_TAPDISK_OPTIONS: TapdiskOptions = {
  variant: 'xen-4.1',
  replyBeforeTeardown: false,
  latencyMs: 1,
  openFailure: 'e403288',
  controlExit: '2132029',
};

function oneOf<T extends string>(arg: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new RangeError(`tapdisk2 ${arg}: '${value}' is not one of ${allowed.join(', ')}`);
  }
  return value as T;
}

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
    } else if (arg.startsWith('--open-failure=')) {
      out.openFailure = oneOf(arg, arg.slice('--open-failure='.length), TAPDISK_OPEN_FAILURE_VERSIONS);
    } else if (arg.startsWith('--control-exit=')) {
      out.controlExit = oneOf(arg, arg.slice('--control-exit='.length), TAPDISK_CONTROL_EXIT_VERSIONS);
    } else if (arg.startsWith('--latency-ms=')) {
      const n = Number(arg.slice('--latency-ms='.length));
      if (!Number.isFinite(n) || n < 0) throw new RangeError(`tapdisk2 ${arg}: not a latency >= 0`);
      out.latencyMs = n;
    } else {
      throw new RangeError(
        `tapdisk2: unknown argument '${arg}' (known: --variant=xen-4.1|xapi, --reply-before-teardown, --latency-ms=N, --open-failure=2011-06|e403288, --control-exit=2012-07|2132029)`,
      );
    }
  }
  return out;
}
