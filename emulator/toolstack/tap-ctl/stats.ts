/**
 * xapi tap-ctl-stats.c: STATS request, then a raw text stream. The message codec we share with tapdisk
 * is Xen's, which has no STATS type, so there is nothing faithful to send.
 */
import type { TapCtlContext } from './context.js';

export function tapCtlStats(_ctx: TapCtlContext, _pid: number, _minor: number): Promise<number> {
  throw new Error(
    'not implemented: tap-ctl stats (xapi TAPDISK_MESSAGE_STATS is not in the Xen message codec)',
  );
}
