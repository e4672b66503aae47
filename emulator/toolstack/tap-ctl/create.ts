/**
 * tap-ctl-create.c: allocate → spawn → attach → open. Rollback: a failed OPEN detaches and frees the
 * minor; a failed spawn or ATTACH only frees it. The spawned tapdisk is never killed, so after a failed
 * ATTACH it idles with no VBD ("orphaned tapdisk", teardown C18). Rollback results are ignored.
 * Models the later copy that returns the spawn error (the first one returned 0 when spawn failed).
 */
import { tapCtlAllocate } from './allocate.js';
import { tapCtlAttach } from './attach.js';
import type { TapCtlContext } from './context.js';
import { tapCtlDetach } from './detach.js';
import { tapCtlFree } from './free.js';
import { tapCtlOpen } from './open.js';
import { tapCtlSpawn } from './spawn.js';

export interface TapCtlCreated {
  /** 0, or the error of the step that failed (sign as that step returns it). */
  err: number;
  /** The I/O device path: `/dev/xen/blktap-2/tapdevN` or the name given. */
  devname: string | null;
  /** Set when allocation succeeded (even if a later step failed and the minor was freed again). */
  minor: number;
  /** The spawned tapdisk's id, when spawn succeeded. */
  id: number;
}

export async function tapCtlCreate(
  ctx: TapCtlContext,
  params: string,
  devname: string | null = null,
): Promise<TapCtlCreated> {
  const a = await tapCtlAllocate(ctx, devname);
  if (a.err) return { err: a.err, devname: a.devname, minor: -1, id: -1 };
  const minor = a.minor;
  const id = await tapCtlSpawn(ctx);
  if (id < 0) {
    await tapCtlFree(ctx, minor);
    return { err: id, devname: a.devname, minor, id };
  }
  let err = await tapCtlAttach(ctx, id, minor);
  if (err) {
    await tapCtlFree(ctx, minor);
    return { err, devname: a.devname, minor, id };
  }
  err = await tapCtlOpen(ctx, id, minor, params);
  if (err) {
    await tapCtlDetach(ctx, id, minor);
    await tapCtlFree(ctx, minor);
    return { err, devname: a.devname, minor, id };
  }
  return { err: 0, devname: a.devname, minor, id };
}
