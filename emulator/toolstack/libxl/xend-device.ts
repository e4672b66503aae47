/**
 * xend's device removal (stable-4.1 tools/python/xen/xend: XendDomainInfo.destroyDevice,
 * DevController.destroyDevice / waitForBackend_destroy, Blktap2Controller.finishDeviceCleanup,
 * TapdiskController.destroy), teardown.md §1.8:
 * - for a tap2 vbd, read the backend's `params` (the tapdev) and start finishDeviceCleanup in a thread;
 * - DevController.destroyDevice(force): write `online = 0`, then `state = 5` (two writes, online first
 *   because drivers watch the state); with force also remove the backend and frontend directories;
 * - the thread waits (≤ DEVICE_DESTROY_TIMEOUT) until `<be>/hotplug-status` is gone, then runs
 *   `tap-ctl destroy` for the tapdev's minor, whatever the wait's outcome.
 * `hotplug-status` goes only when udev's xen-hotplug-cleanup removes the backend directory, which it
 * does on the `remove` uevent that blkback's unregistration (in xenwatch) sends: so the tapdisk is
 * asked to unmap its ring only after blkback let go of the tapdev, and a slow xenwatch only delays it.
 * On domain destroy xend passes force=False and removes /local/domain/<domid> afterwards
 * (cleanupDomain → _releaseDevices, _removeDom); the frontend's state node vanishing makes blkback
 * unregister (frontend Unknown).
 * Simplification: xend's threads outlive the request; here the request joins them before it returns,
 * as the xl process standing in for xend would otherwise exit under them.
 */
import { XenbusState } from '../../../drivers/xenbus/state.js';
import type { Task, WaitQueue } from '../../runtime/engine.js';
import { destroyTapdiskByDevice } from './blktap2.js';
import { type LibxlCtx, XEND_DEVICE_DESTROY_TIMEOUT } from './context.js';
import { backendPath, backendStateHolders, frontendPath, type LibxlDevice } from './device.js';
import { isTapdevPath } from './device-disk.js';
import { XsHandle } from './xs-handle.js';

/** A started finishDeviceCleanup thread. */
export interface XendCleanup {
  readonly backend: string;
  readonly task: Task;
  readonly finished: WaitQueue;
  done: boolean;
}

/**
 * XendDomainInfo.destroyDevice('tap2', devid, force): start the cleanup thread for a tapdev backend,
 * then DevController.destroyDevice. Returns the thread (undefined for a backend that is no tapdev).
 */
export async function xendDestroyDevice(
  ctx: LibxlCtx,
  dev: LibxlDevice,
  force: boolean,
): Promise<XendCleanup | undefined> {
  const be = backendPath(dev);
  const fe = frontendPath(dev);
  const params = await ctx.xs.tryRead(`${be}/params`);
  ctx.op(`xs_read ${be}/params`, { value: params ?? null });
  const cleanup =
    params !== undefined && isTapdevPath(params) ? startFinishDeviceCleanup(ctx, be, params) : undefined;
  // Modify online status /before/ updating state (DevController.destroyDevice's comment).
  await ctx.xs.write(`${be}/online`, '0');
  ctx.op(`xs_write ${be}/online 0`);
  await ctx.xs.write(`${be}/state`, String(XenbusState.Closing));
  ctx.op(`xs_write ${be}/state 5`);
  if (force) {
    await ctx.xs.tryRm(be);
    await ctx.xs.tryRm(fe);
    ctx.op(`xs_rm ${be} ${fe}`);
  }
  return cleanup;
}

/** Blktap2Controller.finishDeviceCleanup(backpath, path) in a thread of the calling process. */
function startFinishDeviceCleanup(ctx: LibxlCtx, be: string, tapdev: string): XendCleanup {
  const finished = ctx.kernel.env.waitQueue(`xend finishDeviceCleanup ${be}`);
  const cleanup: { done: boolean; task?: Task } = { done: false };
  const task = ctx.proc.spawnThread('finishDeviceCleanup', async () => {
    // xswatch runs on xend's own connection, apart from the requests of the main thread.
    const xs = new XsHandle(ctx.proc, ctx.kernel, ctx.host.xenstored, {
      ...(ctx.host.xenstoredHolder ? { server: ctx.host.xenstoredHolder } : {}),
    });
    try {
      const gone = await waitForBackendDestroy(ctx, xs, be);
      if (!gone) {
        ctx.log(
          'warning',
          'DevController.py:waitForBackend_destroy',
          `${be}/hotplug-status still there after ${XEND_DEVICE_DESTROY_TIMEOUT} s`,
        );
      }
      await destroyTapdiskByDevice(ctx, tapdev);
    } finally {
      cleanup.done = true;
      finished.wakeAll();
      await xs.close();
    }
  });
  return Object.assign(cleanup, { backend: be, task, finished }) as XendCleanup;
}

let watchTokens = 0;

/**
 * DevController.waitForBackend_destroy: xswatch on `<be>/hotplug-status` with deviceDestroyCallback
 * (done once the node reads as missing), ev.wait(DEVICE_DESTROY_TIMEOUT). True when it went.
 */
export async function waitForBackendDestroy(ctx: LibxlCtx, xs: XsHandle, be: string): Promise<boolean> {
  const statusPath = `${be}/hotplug-status`;
  const timeoutMs = XEND_DEVICE_DESTROY_TIMEOUT * 1000;
  const token = `xend-destroy-${++watchTokens}`;
  const deadline = ctx.now() + timeoutMs;
  ctx.op(`wait ${statusPath} gone`, { timeoutMs });
  await xs.watch(statusPath, token);
  try {
    for (;;) {
      if ((await xs.tryRead(statusPath)) === undefined) return true;
      const remaining = deadline - ctx.now();
      if (remaining <= 0) return false;
      const ev = await xs.readWatch({
        what: `${statusPath} to be removed (udev's xen-hotplug-cleanup, after blkback let go of ${be})`,
        timeoutMs: remaining,
        timeoutName: `xend DEVICE_DESTROY_TIMEOUT ${XEND_DEVICE_DESTROY_TIMEOUT} s`,
        holders: () => backendStateHolders(ctx, `${be}/state`),
      });
      if (ev === undefined) return false;
    }
  } finally {
    await xs.unwatch(token);
  }
}

/** Waits for the cleanup threads to finish (see the simplification above). */
export async function joinXendCleanups(ctx: LibxlCtx, cleanups: ReadonlyArray<XendCleanup | undefined>) {
  for (const c of cleanups) {
    if (c === undefined || c.done) continue;
    await ctx.kernel.waits.waitInterruptible(c.finished, () => c.done, {
      what: `xend's finishDeviceCleanup of ${c.backend}`,
      holders: () => [c.task],
    });
  }
}
