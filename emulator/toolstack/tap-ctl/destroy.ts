/**
 * tap-ctl-destroy.c: close → detach → free, returning at the FIRST failure. A detach that times out
 * (tapdisk blocked in munmap, teardown §3) therefore never reaches FREE_TAP and the minor leaks.
 */
import { tapCtlClose } from './close.js';
import type { TapCtlContext } from './context.js';
import { tapCtlDetach } from './detach.js';
import { tapCtlFree } from './free.js';

export async function tapCtlDestroy(ctx: TapCtlContext, id: number, minor: number): Promise<number> {
  let err = await tapCtlClose(ctx, id, minor, false);
  if (err) return err;
  err = await tapCtlDetach(ctx, id, minor);
  if (err) return err;
  err = await tapCtlFree(ctx, minor);
  if (err) return err;
  return 0;
}
