/**
 * Removing disks, in the order each toolstack version used (teardown.md §1.8, §2, §3.1, §3.6, C1).
 * Nothing here knows what the rest of the system will do: each version performs its steps in program
 * order and whatever waits or stalls comes out of xenstore, blkback, blktap and tapdisk.
 *
 * - 4.1 (stable-4.1 + 8cc9dbccf0), libxl__device_destroy(be_path): backend not Connected →
 *   destroy the tapdisk (reads <be>/tapdisk-params), THEN xs_rm(be_path). Connected → write
 *   online=0/state=5 and watch the state; no tapdisk destroy (C1).
 * - 4.2-pre (July 2012 unstable), libxl__initiate_device_remove: transaction {online=0, state=5 unless
 *   6}, destroy the tapdisk at once, then wait ≤10 s for Closed (force on timeout), then delete the
 *   dirs. Its libxl__device_destroy deletes first and reads params after (read-after-delete).
 * - 4.2 (4f6dda6a14): transaction {online=0, state=5 unless 6}, wait ≤10 s for Closed (on timeout force:
 *   delete the frontend dir and wait again), hotplug remove, then one transaction that reads
 *   tapdisk-params and deletes both dirs, then destroy the tapdisk with the saved params.
 * - xend (xend-device.ts): online=0, state=5; a thread waits until udev's cleanup script removed the
 *   backend (after blkback's unregistration), then `tap-ctl destroy` of the tapdev's minor.
 */
import { XenbusState } from '../../../drivers/xenbus/state.js';
import { domainPath } from '../../xenstored/paths.js';
import { destroyTapdiskByBackend, destroyTapdiskByParams } from './blktap2.js';
import { LIBXL_DESTROY_TIMEOUT, type LibxlCtx, LibxlError } from './context.js';
import {
  backendPath,
  devstateWait,
  frontendPath,
  type LibxlDevice,
  libxlPath,
  parseBackendPath,
  xsPathCleanup,
} from './device.js';
import { runHotplug } from './hotplug-exec.js';
import { joinXendCleanups, type XendCleanup, xendDestroyDevice } from './xend-device.js';

// ---------------------------------------------------------------------------------------------------
// 4.1

/**
 * 4.1 libxl__device_destroy(be_path, force): 0 when done, 1 when a watch on the state was set and the
 * caller should wait for Closed.
 */
export async function destroy41(ctx: LibxlCtx, be: string, force: boolean): Promise<number> {
  const statePath = `${be}/state`;
  const state = await ctx.xs.tryRead(statePath);
  ctx.op(`xs_read ${statePath}`, { value: state ?? null });
  if (state === undefined) return 0;
  if (Number.parseInt(state, 10) !== XenbusState.Connected) {
    await destroyTapdiskByBackend(ctx, be);
    await ctx.xs.tryRm(be);
    ctx.op(`xs_rm ${be}`);
    return 0;
  }
  await ctx.xs.transaction(async (t) => {
    await ctx.xs.write(`${be}/online`, '0', t);
    await ctx.xs.write(statePath, String(XenbusState.Closing), t);
  });
  ctx.op(`xs_transaction online=0 state=5 ${be}`);
  if (force) {
    await ctx.xs.tryRm(be);
    ctx.op(`xs_rm ${be}`);
    return 0;
  }
  // The watch token is the backend path: wait_for_dev_destroy removes the token's path.
  await ctx.xs.watch(statePath, be);
  return 1;
}

/**
 * 4.1 wait_for_dev_destroy: one select() on the xenstore fd with the shared timeval (Linux decrements
 * it), one event. Closed or vanished → unwatch, xs_rm(token), 0. Anything else (the immediate event of
 * the new watch reads state 5) → 1, and the callers stop waiting.
 */
async function waitForDevDestroy41(ctx: LibxlCtx, deadline: number): Promise<number> {
  const remaining = deadline - ctx.now();
  if (remaining <= 0) return 1;
  const ev = await ctx.xs.readWatch({
    what: 'a backend state change (libxl wait_for_dev_destroy)',
    timeoutMs: remaining,
    timeoutName: `libxl destroy ${LIBXL_DESTROY_TIMEOUT} s select() timeout`,
  });
  if (ev === undefined) return 1;
  const state = await ctx.xs.tryRead(ev.path);
  if (state === undefined || Number.parseInt(state, 10) === XenbusState.Closed) {
    await ctx.xs.unwatch(ev.token);
    await ctx.xs.tryRm(ev.token);
    ctx.op(`xs_rm ${ev.token}`);
    ctx.log('debug', 'libxl_device.c:wait_for_dev_destroy', `Destroyed device backend at ${ev.token}`);
    return 0;
  }
  return 1;
}

/** 4.1 libxl__devices_destroy(domid, force=0). */
async function devicesDestroy41(ctx: LibxlCtx, domid: number): Promise<number> {
  const devPath = `${domainPath(domid)}/device`;
  const kinds = await ctx.xs.tryDirectory(devPath);
  if (kinds === undefined) {
    ctx.log('error', 'libxl_device.c:libxl__devices_destroy', `${devPath} is empty`);
    return 0;
  }
  const toRemove: string[] = [];
  let watches = 0;
  for (const kind of kinds) {
    if (kind === 'vfs') continue;
    const kindPath = `${devPath}/${kind}`;
    const devs = await ctx.xs.tryDirectory(kindPath);
    if (devs === undefined) continue;
    for (const d of devs) {
      const be = await ctx.xs.tryRead(`${kindPath}/${d}/backend`);
      if (be !== undefined) {
        if ((await destroy41(ctx, be, false)) > 0) watches++;
        toRemove.push(be.slice(0, be.lastIndexOf('/')));
      } else {
        await ctx.xs.tryRm(kindPath);
      }
    }
  }
  // 8cc9dbccf0's call after the loop uses the last backend path computed: the console's (C1).
  const consoleBe = await ctx.xs.tryRead(`${domainPath(domid)}/console/backend`);
  if (consoleBe !== undefined && consoleBe !== '') await destroyTapdiskByBackend(ctx, consoleBe);
  const deadline = ctx.now() + LIBXL_DESTROY_TIMEOUT * 1000;
  while (watches > 0) {
    if (await waitForDevDestroy41(ctx, deadline)) break;
    watches--;
  }
  for (const p of toRemove) {
    await ctx.xs.tryRm(p);
    ctx.op(`xs_rm ${p}`);
  }
  return 0;
}

/** 4.1 libxl_device_disk_del(wait=1) as xl block-detach calls it. */
async function deviceDel41(ctx: LibxlCtx, dev: LibxlDevice): Promise<number> {
  const be = backendPath(dev);
  const rc = await destroy41(ctx, be, false);
  if (rc > 0) await waitForDevDestroy41(ctx, ctx.now() + LIBXL_DESTROY_TIMEOUT * 1000);
  for (const p of [frontendPath(dev), be]) {
    await ctx.xs.tryRm(p);
    ctx.op(`xs_rm ${p}`);
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------------
// 4.2-pre and 4.2: libxl__initiate_device_remove and the callbacks that follow it

/** The transaction that asks the backend to close; with `force` the frontend dir goes too. */
async function askBackendToClose(ctx: LibxlCtx, dev: LibxlDevice, force: boolean): Promise<number> {
  const be = backendPath(dev);
  const statePath = `${be}/state`;
  try {
    await ctx.xs.transaction(async (t) => {
      if (force) await xsPathCleanup(ctx, t, frontendPath(dev));
      const state = await ctx.xs.tryRead(statePath, t);
      // An already Closed backend is left alone.
      if (state !== undefined && Number.parseInt(state, 10) !== XenbusState.Closed) {
        await ctx.xs.write(`${be}/online`, '0', t);
        await ctx.xs.write(statePath, String(XenbusState.Closing), t);
      }
    });
  } catch (e) {
    ctx.log(
      'error',
      'libxl_device.c:libxl__initiate_device_remove',
      `unable to start transaction: ${(e as Error).message}`,
    );
    return LibxlError.ERROR_FAIL;
  }
  ctx.op(`xs_transaction ${force ? 'rm frontend, ' : ''}online=0 state=5 ${be}`);
  return 0;
}

/** libxl__initiate_device_remove + device_backend_callback: 0 when Closed, else the error. */
async function initiateRemove(ctx: LibxlCtx, dev: LibxlDevice): Promise<number> {
  const be = backendPath(dev);
  let force = false;
  for (;;) {
    const rc = await askBackendToClose(ctx, dev, force);
    if (rc) return rc;
    if (ctx.version === '4.2-pre') await destroyTapdiskByBackend(ctx, be);
    const st = await devstateWait(ctx, `${be}/state`, XenbusState.Closed, LIBXL_DESTROY_TIMEOUT * 1000);
    if (st === 'ok') return 0;
    if (st === 'timeout' && !force) {
      force = true;
      continue;
    }
    ctx.log('error', 'libxl_device.c:device_backend_callback', `unable to remove device with path ${be}`);
    return st === 'timeout' ? LibxlError.ERROR_TIMEDOUT : LibxlError.ERROR_INVAL;
  }
}

/**
 * libxl__device_destroy. 4.2: read tapdisk-params and delete both dirs in one transaction, then
 * destroy the tapdisk with the saved params. 4.2-pre: delete, then destroy by the (deleted) path.
 */
export async function deviceDestroy(ctx: LibxlCtx, dev: LibxlDevice): Promise<number> {
  const be = backendPath(dev);
  const fe = frontendPath(dev);
  if (ctx.version === '4.2') {
    let params: string | undefined;
    await ctx.xs.transaction(async (t) => {
      params = await ctx.xs.tryRead(`${be}/tapdisk-params`, t);
      await xsPathCleanup(ctx, t, fe);
      await xsPathCleanup(ctx, t, be);
      await xsPathCleanup(ctx, t, libxlPath(dev));
    });
    ctx.op(`xs_transaction read tapdisk-params, rm ${fe} ${be}`, { params: params ?? null });
    if (params !== undefined) return destroyTapdiskByParams(ctx, params);
    return 0;
  }
  await ctx.xs.transaction(async (t) => {
    await xsPathCleanup(ctx, t, fe);
    await xsPathCleanup(ctx, t, be);
  });
  ctx.op(`xs_transaction rm ${fe} ${be}`);
  await destroyTapdiskByBackend(ctx, be);
  return 0;
}

/** The whole removal of one device in 4.2-pre / 4.2. */
async function deviceRemove42(ctx: LibxlCtx, dev: LibxlDevice): Promise<number> {
  let rc = await initiateRemove(ctx, dev);
  if (ctx.version === '4.2') {
    // device_hotplug: on remove errors are reported and the removal goes on.
    if (rc === 0) await runHotplug(ctx, backendPath(dev), 'remove');
    const drc = await deviceDestroy(ctx, dev);
    if (rc === 0) rc = drc;
    return rc;
  }
  // 4.2-pre device_hotplug_done: the dirs go, the tapdisk was already asked to go.
  await ctx.xs.transaction(async (t) => {
    await xsPathCleanup(ctx, t, frontendPath(dev));
    await xsPathCleanup(ctx, t, backendPath(dev));
  });
  ctx.op(`xs_transaction rm ${frontendPath(dev)} ${backendPath(dev)}`);
  return rc;
}

// ---------------------------------------------------------------------------------------------------
// xend

/** XendDomainInfo._releaseDevices: destroyDevice(force=False) for every vbd; the threads it started. */
export async function xendReleaseDevices(ctx: LibxlCtx, domid: number): Promise<XendCleanup[]> {
  const out: XendCleanup[] = [];
  for (const dev of await domainVbds(ctx, domid)) {
    const c = await xendDestroyDevice(ctx, dev, false);
    if (c) out.push(c);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// entry points

/** The vbd devices of a domain, from its frontend directories (libxl__devices_destroy's listing). */
export async function domainVbds(ctx: LibxlCtx, domid: number): Promise<LibxlDevice[]> {
  const out: LibxlDevice[] = [];
  const path = `${domainPath(domid)}/device/vbd`;
  for (const d of (await ctx.xs.tryDirectory(path)) ?? []) {
    const be = await ctx.xs.tryRead(`${path}/${d}/backend`);
    const dev = be === undefined ? undefined : parseBackendPath(be, domid, Number(d));
    if (dev) out.push(dev);
  }
  return out;
}

/** Every device of a dying domain (libxl_domain_destroy's device step). */
export async function devicesDestroy(ctx: LibxlCtx, domid: number): Promise<number> {
  if (ctx.version === '4.1') return devicesDestroy41(ctx, domid);
  if (ctx.version === 'xend') {
    throw new Error(
      `devicesDestroy(${domid}): xend's cleanup threads finish only after the domain's directory is gone; call xendReleaseDevices, remove it, then joinXendCleanups (domain.ts)`,
    );
  }
  let rc = 0;
  // Simplification: 4.2 removes the devices in parallel (one ao each); here one after the other.
  for (const dev of await domainVbds(ctx, domid)) {
    const r = await deviceRemove42(ctx, dev);
    if (r && !rc) rc = r;
  }
  return rc;
}

/** One device of a live domain (xl block-detach: libxl_device_disk_remove / _del). */
export function deviceRemove(ctx: LibxlCtx, dev: LibxlDevice): Promise<number> {
  return ctx.teardown('device-remove', backendPath(dev), () => {
    switch (ctx.version) {
      case '4.1':
        return deviceDel41(ctx, dev);
      case 'xend':
        return xendDestroyDevice(ctx, dev, false).then(async (c) => {
          await joinXendCleanups(ctx, [c]);
          return 0;
        });
      default:
        return deviceRemove42(ctx, dev);
    }
  });
}
