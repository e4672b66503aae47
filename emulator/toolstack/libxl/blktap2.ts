/**
 * libxl_blktap2.c: find or create the tapdisk for a disk (libxl__blktap_devpath), and the three shapes
 * the tapdisk destroy took in history (teardown §3.6):
 * - 4.1 / July-2012 unstable: `libxl__device_destroy_tapdisk(be_path)`, void: reads
 *   `<be>/tapdisk-params` itself (nothing happens when the node is already gone: C1), errors ignored;
 * - 4.2 (4f6dda6a14): `libxl__device_destroy_tapdisk(params)` with params read before the delete,
 *   errors logged and returned;
 * - xend (Blktap2Controller / TapdiskController.destroy): by device node: list, match the minor,
 *   `destroy -p -m` (or `free -m` for a minor without a tapdisk).
 */
import { ioDevicePath } from '../../../drivers/blktap/abi.js';
import { tapCtlCreate } from '../tap-ctl/create.js';
import { tapCtlDestroy } from '../tap-ctl/destroy.js';
import { tapCtlFree } from '../tap-ctl/free.js';
import { tapCtlFind, tapCtlList } from '../tap-ctl/list.js';
import { type LibxlCtx, LibxlError } from './context.js';

/** libxl__blktap_devpath: the tapdev of an existing tapdisk serving `type:disk`, or a new one. */
export async function blktapDevpath(ctx: LibxlCtx, type: string, disk: string): Promise<string | undefined> {
  const found = await tapCtlFind(ctx.tap, type, disk);
  ctx.op(`tap_ctl_find ${type}:${disk}`, { err: found.err, minor: found.found?.minor });
  if (found.err === 0 && found.found) return ioDevicePath(found.found.minor);
  const created = await tapCtlCreate(ctx.tap, `${type}:${disk}`);
  ctx.op(`tap_ctl_create ${type}:${disk}`, { err: created.err, minor: created.minor, id: created.id });
  if (created.err === 0 && created.devname !== null) return created.devname;
  return undefined;
}

/** Splits "type:path" at the first colon, as the C code does with strchr. */
export function splitTapdiskParams(params: string): { type: string; disk: string } | undefined {
  const colon = params.indexOf(':');
  if (colon < 0) return undefined;
  return { type: params.slice(0, colon), disk: params.slice(colon + 1) };
}

/** 4.1 and July-2012 unstable: void, reads the params from the backend path given. */
export async function destroyTapdiskByBackend(ctx: LibxlCtx, bePath: string): Promise<void> {
  const params = await ctx.xs.tryRead(`${bePath}/tapdisk-params`);
  ctx.op(`xs_read ${bePath}/tapdisk-params`, { value: params ?? null });
  if (params === undefined) return;
  const p = splitTapdiskParams(params);
  if (p === undefined) return;
  const found = await tapCtlFind(ctx.tap, p.type, p.disk);
  ctx.op(`tap_ctl_find ${params}`, { err: found.err, minor: found.found?.minor });
  if (found.err < 0 || !found.found) return;
  const err = await tapCtlDestroy(ctx.tap, found.found.id, found.found.minor);
  ctx.op(`tap_ctl_destroy ${found.found.id} ${found.found.minor}`, { err });
}

/** 4.2: the params were read before the directories went; errors are logged and returned. */
export async function destroyTapdiskByParams(ctx: LibxlCtx, params: string): Promise<number> {
  const where = 'libxl_blktap2.c:libxl__device_destroy_tapdisk';
  const p = splitTapdiskParams(params);
  if (p === undefined) {
    ctx.log('error', where, `Unable to parse params ${params}`);
    return LibxlError.ERROR_INVAL;
  }
  const found = await tapCtlFind(ctx.tap, p.type, p.disk);
  ctx.op(`tap_ctl_find ${params}`, { err: found.err, minor: found.found?.minor });
  if (found.err < 0 || !found.found) {
    ctx.logErrno('error', where, -found.err, `Unable to find type ${p.type} disk ${p.disk}`);
    return LibxlError.ERROR_FAIL;
  }
  const { id, minor } = found.found;
  const err = await tapCtlDestroy(ctx.tap, id, minor);
  ctx.op(`tap_ctl_destroy ${id} ${minor}`, { err });
  // tap_ctl_destroy mixes signs (close gives a positive errno, detach -EIO, free -1): any non-zero fails.
  if (err !== 0) {
    ctx.logErrno('error', where, Math.abs(err), `Failed to destroy tap device id ${id} minor ${minor}`);
    return LibxlError.ERROR_FAIL;
  }
  return 0;
}

/** xend's TapdiskController.destroy(device): by the minor of the tapdev node. */
export async function destroyTapdiskByDevice(ctx: LibxlCtx, device: string): Promise<number> {
  const prefix = '/dev/xen/blktap-2/tapdev';
  if (!device.startsWith(prefix)) return 0;
  let minor: number;
  try {
    const node = ctx.kernel.ns.lookup(device);
    if (node.kind !== 'blk') return 0;
    minor = node.minor;
  } catch {
    return 0;
  }
  const listing = await tapCtlList(ctx.tap);
  ctx.op(`tap-ctl list`, { err: listing.err });
  const matches = listing.entries.filter((e) => e.minor === minor);
  if (matches.length !== 1) return 0;
  const e = matches[0]!;
  if (e.pid >= 0) {
    const probe = listing.probes.find((p) => p.pid === e.pid);
    const id = probe?.socketId ?? e.pid;
    const err = await tapCtlDestroy(ctx.tap, id, minor);
    ctx.op(`tap-ctl destroy -p${e.pid} -m${minor}`, { err });
    if (err !== 0) {
      ctx.log(
        'error',
        'BlktapController.py:TapdiskController.exc',
        `('destroy', '-p${e.pid}', '-m${minor}') failed (${Math.abs(err)})`,
      );
      return LibxlError.ERROR_FAIL;
    }
    return 0;
  }
  const err = await tapCtlFree(ctx.tap, minor);
  ctx.op(`tap-ctl free -m${minor}`, { err });
  return err === 0 ? 0 : LibxlError.ERROR_FAIL;
}
