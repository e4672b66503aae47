/**
 * libxl_device.c basics: device paths, libxl__device_generic_add (frontend and backend directories with
 * their permissions in one transaction), libxl__xs_path_cleanup, and libxl__ev_devstate_wait (wait for a
 * backend's state node to reach a value, with a timeout), made synchronous as in libxl 4.1.
 */
import { XenbusState, xenbusStateName } from '../../../drivers/xenbus/state.js';
import { xenwatchHolderLabel } from '../../../drivers/xenbus/xenwatch.js';
import type { Holder } from '../../runtime/engine.js';
import { domainPath } from '../../xenstored/paths.js';
import type { LibxlCtx } from './context.js';
import type { XsTransaction } from './xs-handle.js';

export type DeviceKind = 'vbd';

/** libxl__device */
export interface LibxlDevice {
  backendDevid: number;
  backendDomid: number;
  devid: number;
  domid: number;
  kind: DeviceKind;
  backendKind: DeviceKind;
}

export function backendPath(d: LibxlDevice): string {
  return `${domainPath(d.backendDomid)}/backend/${d.backendKind}/${d.domid}/${d.devid}`;
}

export function frontendPath(d: LibxlDevice): string {
  return `${domainPath(d.domid)}/device/${d.kind}/${d.devid}`;
}

/** /libxl/<domid>/device/<kind>/<devid>: libxl's own copy of what it asked for. */
export function libxlPath(d: LibxlDevice): string {
  return `/libxl/${d.domid}/device/${d.kind}/${d.devid}`;
}

/** "/local/domain/0/backend/vbd/3/51712" → the device, or undefined (libxl__parse_backend_path). */
export function parseBackendPath(path: string, domid: number, devid: number): LibxlDevice | undefined {
  const m = /^\/local\/domain\/(\d+)\/backend\/([a-z0-9]+)\/(\d+)\/(\d+)$/.exec(path);
  if (m?.[2] !== 'vbd') return undefined;
  return {
    backendDomid: Number(m[1]),
    backendKind: 'vbd',
    backendDevid: Number(m[4]),
    domid,
    devid,
    kind: 'vbd',
  };
}

/** Ordered key/value pairs (libxl's flexarray of alternating keys and values). */
export type Entries = ReadonlyArray<readonly [string, string]>;

/**
 * libxl__device_generic_add: in one transaction (redone on EAGAIN), remove and recreate the frontend
 * directory (owner the guest, backend domain may read), write `backend` and the frontend entries, then
 * the same for the backend directory (owner the backend domain, guest may read) with `frontend`, and
 * libxl's own copy under /libxl.
 */
export async function deviceGenericAdd(
  ctx: LibxlCtx,
  dev: LibxlDevice,
  back: Entries,
  front: Entries,
): Promise<void> {
  const fe = frontendPath(dev);
  const be = backendPath(dev);
  const lx = libxlPath(dev);
  const frontendPerms = [`n${dev.domid}`, `r${dev.backendDomid}`];
  const backendPerms = [`n${dev.backendDomid}`, `r${dev.domid}`];
  await ctx.xs.transaction(async (t) => {
    await ctx.xs.tryRm(fe, t);
    await ctx.xs.mkdir(fe, t);
    await ctx.xs.setPerms(fe, frontendPerms, t);
    await ctx.xs.write(`${fe}/backend`, be, t);
    for (const [k, v] of front) await ctx.xs.write(`${fe}/${k}`, v, t);

    await ctx.xs.tryRm(be, t);
    await ctx.xs.mkdir(be, t);
    await ctx.xs.setPerms(be, backendPerms, t);
    await ctx.xs.write(`${be}/frontend`, fe, t);
    for (const [k, v] of back) await ctx.xs.write(`${be}/${k}`, v, t);

    await ctx.xs.tryRm(lx, t);
    await ctx.xs.write(`${lx}/frontend`, fe, t);
    await ctx.xs.write(`${lx}/backend`, be, t);
    for (const [k, v] of back) await ctx.xs.write(`${lx}/${k}`, v, t);
  });
  ctx.op(`xs_transaction generic_add ${fe} ${be}`);
}

/**
 * libxl__xs_path_cleanup: remove `path`, then each parent that has an empty value and no children,
 * stopping at the first that does not. Returns false when the first rm failed.
 */
export async function xsPathCleanup(ctx: LibxlCtx, t: XsTransaction, path: string): Promise<boolean> {
  if (!(await ctx.xs.tryRm(path, t))) return false;
  let p = path;
  for (;;) {
    const slash = p.lastIndexOf('/');
    if (slash <= 0) break;
    p = p.slice(0, slash);
    const val = await ctx.xs.tryRead(p, t);
    if (val === undefined || val.length !== 0) break;
    const children = await ctx.xs.tryDirectory(p, t);
    if (children === undefined || children.length !== 0) break;
    if (!(await ctx.xs.tryRm(p, t))) return false;
  }
  return true;
}

export type DevstateResult = 'ok' | 'timeout' | 'removed';

/**
 * Who must act for a backend's state node to change: the backend driver, whose every state switch
 * (probe, the frontend state machine, connect) runs in its domain's xenwatch. Named through the holder
 * directory, so a stall chain continues into xenwatch's own wait (a callback sleeping, say). The
 * backend domain is dom0, engine domain 0 (simplification: driver domains are not modelled).
 */
export function backendStateHolders(ctx: LibxlCtx, statePath: string): readonly Holder[] {
  const dir = ctx.host.holders;
  const m = /^\/local\/domain\/(\d+)\/backend\//.exec(statePath);
  if (dir === undefined || m === null || Number(m[1]) !== 0) return [];
  return [dir.ref(xenwatchHolderLabel(0))];
}

let devstateTokens = 0;

/**
 * libxl__ev_devstate_wait: watch `statePath` until it reads `wanted` (ok), disappears (removed) or
 * `timeoutMs` passes (timeout). The wait is a declared, killable sleep of the xl process.
 */
export async function devstateWait(
  ctx: LibxlCtx,
  statePath: string,
  wanted: number,
  timeoutMs: number,
): Promise<DevstateResult> {
  const token = `devstate-${++devstateTokens}`;
  const deadline = ctx.now() + timeoutMs;
  const be = statePath.slice(0, statePath.lastIndexOf('/'));
  ctx.op(`wait ${statePath} == ${wanted}`, { timeoutMs });
  await ctx.xs.watch(statePath, token);
  try {
    for (;;) {
      const remaining = deadline - ctx.now();
      const ev =
        remaining > 0
          ? await ctx.xs.readWatch({
              what: `backend ${be} to reach state ${wanted} (${xenbusStateName(wanted)})`,
              timeoutMs: remaining,
              timeoutName: `libxl devstate ${timeoutMs / 1000} s timeout`,
              holders: () => backendStateHolders(ctx, statePath),
            })
          : undefined;
      if (ev === undefined) {
        ctx.log('debug', 'libxl_event.c:devstate_timeout', `backend ${be} wanted state ${wanted}  timed out`);
        return 'timeout';
      }
      if (ev.token !== token) continue;
      const s = await ctx.xs.tryRead(statePath);
      if (s === undefined) {
        ctx.log(
          'debug',
          'libxl_event.c:devstate_watch_callback',
          `backend ${be} wanted state ${wanted} but it was removed`,
        );
        return 'removed';
      }
      const got = Number.parseInt(s, 10);
      if (got === wanted) {
        ctx.log('debug', 'libxl_event.c:devstate_watch_callback', `backend ${be} wanted state ${wanted} ok`);
        return 'ok';
      }
      ctx.log(
        'debug',
        'libxl_event.c:devstate_watch_callback',
        `backend ${be} wanted state ${wanted} still waiting state ${got}`,
      );
    }
  } finally {
    await ctx.xs.unwatch(token);
  }
}

export { XenbusState };
