/**
 * blkfront's control path (Linux xen-blkfront.c: blkfront_probe, blkback_changed, talk_to_blkback,
 * blkfront_connect, blkfront_gather_backend_features, blkfront_closing, blkif_release, blkfront_remove).
 *
 * Handshake: backend InitWait while we are Initialising → allocate and grant the ring, one xenstore
 * transaction with ring-ref(s), event-channel, protocol and feature-persistent (redone on EAGAIN) →
 * Initialised. Backend Connected → (if we never got to Initialised: talk first, C14) read sectors,
 * info, sector-size (fatal when missing), the features, create the gendisk → Connected. Connected
 * again while connected is the resize signal.
 *
 * Close differs by version (teardown.md 1.1, C7): '2012' refuses to close while the disk is open
 * and lets the last release finish; '2016' marks the disk dead and goes Closed at once.
 */

import type { BlockDevice, BlockDriver } from '../../emulator/kernel/block-device.js';
import { isKernelError, KernelError } from '../../emulator/kernel/errno.js';
import { KernelOops } from '../../emulator/kernel/oops.js';
import type { Holder } from '../../emulator/runtime/engine.js';
import {
  BLKIF_ABI_X86_32,
  BLKIF_ABI_X86_64,
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_WRITE_BARRIER,
  blkifRingSize,
  VDISK_READONLY,
} from '../blkif.js';
import { DmaTag } from '../busdma/tag.js';
import { RING_MAX_PAGES } from '../ring.js';
import { frontendClosed } from '../xenbus/bus.js';
import type { XenbusClient } from '../xenbus/client.js';
import type { XenbusDevice, XenbusDriver } from '../xenbus/device.js';
import { XenstoreError } from '../xenbus/errors.js';
import {
  devError,
  devFatal,
  joinPath,
  scanInteger,
  switchState,
  XenbusState,
  type XenbusStateValue,
  xenbusStateName,
} from '../xenbus/state.js';
import { XS_ERRNO } from '../xenbus/xs-wire.js';
import { BlkfrontInfo, type BlkfrontKernel, type BlkfrontOptions } from './info.js';
import { PersistentGrants } from './persistent.js';
import { enterError, saveUncompleted, submitBio } from './request.js';
import { blkifFree, setupBlkring } from './ring.js';
import { decodeVdevice, XENVBD_MAJOR } from './vdevice.js';

/** Linux xen_blkif_max_segments default. */
export const DEFAULT_MAX_INDIRECT_SEGMENTS = 32;
/** XENBUS_MAX_RING_GRANT_ORDER */
export const XENBUS_MAX_RING_GRANT_ORDER = 4;

const registeredMajors = new WeakSet<object>();

export interface Blkfront {
  readonly driver: XenbusDriver;
  /** Devices bound now, by nodename. */
  readonly devices: Map<string, BlkfrontInfo>;
  /**
   * xenbus_dev_resume for one device after the domain was suspended and resumed (restore, migration):
   * the device goes back to Initialising and blkfront_resume renegotiates with the (new) backend; the
   * requests are resubmitted once it is Connected. False when talk_to_blkback failed.
   */
  resume(nodename: string): Promise<boolean>;
}

/** The "vbd" frontend driver; register it with a FrontendBus. */
export function createBlkfront(kernel: BlkfrontKernel, options: BlkfrontOptions = {}): Blkfront {
  const opts: Required<BlkfrontOptions> = {
    version: options.version ?? '2016',
    grantRevoke: options.grantRevoke ?? 'try-end',
    connect: options.connect ?? 'handshake-first',
    resume: options.resume ?? 'save-in-resume',
    maxRingPageOrder: options.maxRingPageOrder ?? 0,
    maxIndirectSegments: options.maxIndirectSegments ?? DEFAULT_MAX_INDIRECT_SEGMENTS,
    featurePersistent: options.featurePersistent ?? true,
  };
  if (!['2012', '2016'].includes(opts.version)) {
    throw new RangeError(`blkfront: version must be '2012' or '2016', got ${JSON.stringify(opts.version)}`);
  }
  if (!['query-then-end', 'try-end'].includes(opts.grantRevoke)) {
    throw new RangeError(
      `blkfront: grantRevoke must be 'query-then-end' or 'try-end', got ${JSON.stringify(opts.grantRevoke)}`,
    );
  }
  if (!['direct', 'handshake-first'].includes(opts.connect)) {
    throw new RangeError(
      `blkfront: connect must be 'direct' or 'handshake-first', got ${JSON.stringify(opts.connect)}`,
    );
  }
  if (!['save-in-recover', 'save-in-resume'].includes(opts.resume)) {
    throw new RangeError(
      `blkfront: resume must be 'save-in-recover' or 'save-in-resume', got ${JSON.stringify(opts.resume)}`,
    );
  }
  if (
    !Number.isInteger(opts.maxRingPageOrder) ||
    opts.maxRingPageOrder < 0 ||
    opts.maxRingPageOrder > XENBUS_MAX_RING_GRANT_ORDER
  ) {
    throw new RangeError(
      `blkfront: maxRingPageOrder must be 0..${XENBUS_MAX_RING_GRANT_ORDER}, got ${opts.maxRingPageOrder}`,
    );
  }
  if (
    !Number.isInteger(opts.maxIndirectSegments) ||
    opts.maxIndirectSegments < 0 ||
    opts.maxIndirectSegments > 4096
  ) {
    throw new RangeError(`blkfront: maxIndirectSegments must be 0..4096, got ${opts.maxIndirectSegments}`);
  }
  const devices = new Map<string, BlkfrontInfo>();
  const driver: XenbusDriver = {
    name: 'vbd',
    deviceType: 'vbd',
    async probe(dev) {
      const info = await blkfrontProbe(kernel, dev, opts);
      devices.set(dev.nodename, info);
    },
    async otherendChanged(dev, state) {
      const info = devices.get(dev.nodename);
      if (info) await blkbackChanged(info, state);
    },
    async remove(dev) {
      const info = devices.get(dev.nodename);
      devices.delete(dev.nodename);
      if (info) await blkfrontRemove(info);
    },
  };
  const resume = async (nodename: string): Promise<boolean> => {
    const info = devices.get(nodename);
    if (!info) throw new Error(`blkfront resume: no device ${nodename}`);
    return blkfrontResume(info);
  };
  return { driver, devices, resume };
}

async function readOptional(client: XenbusClient, path: string): Promise<string | undefined> {
  try {
    return await client.tryRead(path);
  } catch (e) {
    if (e instanceof XenstoreError) return undefined;
    throw e;
  }
}

/** xenbus_read_unsigned: the value, or `dflt` when missing or unparsable. */
async function readUnsigned(client: XenbusClient, dir: string, node: string, dflt: number): Promise<number> {
  const text = await readOptional(client, joinPath(dir, node));
  if (text === undefined) return dflt;
  const v = scanInteger(text);
  return v === undefined || v < 0 ? dflt : v;
}

async function setState(info: BlkfrontInfo, to: XenbusStateValue): Promise<void> {
  const from = info.dev.state;
  await switchState(info.dev, to);
  if (from !== info.dev.state) emitState(info, from);
}

async function closed(info: BlkfrontInfo): Promise<void> {
  const from = info.dev.state;
  await frontendClosed(info.dev);
  if (from !== info.dev.state) emitState(info, from);
}

function emitState(info: BlkfrontInfo, from: number): void {
  info.env.trace.emit('blkfront', 'xenbus-state', {
    path: info.dev.nodename,
    from: xenbusStateName(from),
    to: xenbusStateName(info.dev.state),
  });
}

async function blkfrontProbe(
  kernel: BlkfrontKernel,
  dev: XenbusDevice,
  opts: Required<BlkfrontOptions>,
): Promise<BlkfrontInfo> {
  const client = dev.client;
  let text = await readOptional(client, joinPath(dev.nodename, 'virtual-device'));
  if (text === undefined) text = await readOptional(client, joinPath(dev.nodename, 'virtual-device-ext'));
  const vdevice = text === undefined ? undefined : scanInteger(text);
  if (vdevice === undefined) {
    await devFatal(dev, XS_ERRNO.ENOENT, 'reading virtual-device');
    throw new XenstoreError('ENOENT', 'READ', joinPath(dev.nodename, 'virtual-device'), 'blkfront probe');
  }
  const decoded = decodeVdevice(vdevice >>> 0);
  if ('error' in decoded) {
    await devFatal(dev, XS_ERRNO.EINVAL, decoded.error);
    throw new XenstoreError('EINVAL', 'READ', joinPath(dev.nodename, 'virtual-device'), decoded.error);
  }
  const info = new BlkfrontInfo(kernel, dev, opts);
  info.vdevice = vdevice >>> 0;
  info.name = decoded.name;
  info.minor = decoded.minor;
  info.handle = Number(dev.devid) & 0xffff;
  dev.driverData = info;
  return info;
}

/** blkback_changed: the backend's state changed (states may be skipped or repeated). */
async function blkbackChanged(info: BlkfrontInfo, state: XenbusStateValue): Promise<void> {
  const dev = info.dev;
  info.env.trace.emit('blkfront', 'backend-state', { path: dev.nodename, state: xenbusStateName(state) });
  switch (state) {
    case XenbusState.InitWait:
      if (dev.state !== XenbusState.Initialising) break;
      await talkToBlkback(info);
      break;
    case XenbusState.Initialising:
    case XenbusState.Initialised:
    case XenbusState.Reconfiguring:
    case XenbusState.Reconfigured:
    case XenbusState.Unknown:
      break;
    case XenbusState.Connected:
      // C14 (c31ecf6c126d): a backend that jumps to Connected (or whose InitWait we never saw because
      // the watch events coalesced) still gets the handshake first. Before the fix ('direct') connect
      // ran on whatever talk_to_blkback had (not) set up.
      if (
        info.options.connect === 'handshake-first' &&
        dev.state !== XenbusState.Initialised &&
        dev.state !== XenbusState.Connected
      ) {
        if (!(await talkToBlkback(info))) break;
      }
      await blkfrontConnect(info);
      break;
    case XenbusState.Closed:
      if (dev.state === XenbusState.Closed) break;
      await blkfrontClosing(info);
      break;
    case XenbusState.Closing:
      await blkfrontClosing(info);
      break;
    default:
      break;
  }
}

/** talk_to_blkback. True when the frontend reached Initialised. */
async function talkToBlkback(info: BlkfrontInfo): Promise<boolean> {
  const dev = info.dev;
  const k = info.kernel;
  const client = dev.client;
  const otherend = dev.otherend!;
  info.trusted = (await readUnsigned(client, dev.nodename, 'trusted', 1)) !== 0;
  const maxOrder = await readUnsigned(client, otherend, 'max-ring-page-order', 0);
  info.ringPageOrder = Math.min(info.options.maxRingPageOrder, maxOrder, XENBUS_MAX_RING_GRANT_ORDER);
  info.nrRingPages = 1 << info.ringPageOrder;
  if (info.nrRingPages > RING_MAX_PAGES) throw new Error('unreachable: ring order capped above');
  info.abi = k.hc.startInfo().abi === 'x86_64' ? BLKIF_ABI_X86_64 : BLKIF_ABI_X86_32;
  info.tag = DmaTag.create(info.env, k.gnttab, k.memory, {
    name: `${info.diskName} io`,
    domid: dev.otherendId!,
    maxSegments: Math.max(BLKIF_MAX_SEGMENTS_PER_REQUEST, info.options.maxIndirectSegments),
    alignment: 512,
    revoke: info.options.grantRevoke,
  });
  let ring: ReturnType<typeof setupBlkring>;
  try {
    ring = setupBlkring(info);
  } catch (e) {
    await devFatal(dev, XS_ERRNO.ENOMEM, `setting up ring: ${(e as Error).message}`);
    blkifFree(info);
    return false;
  }
  let what = 'starting transaction';
  try {
    await client.withTransaction(async (tx) => {
      if (info.nrRingPages === 1) {
        what = 'writing ring-ref';
        await client.write(joinPath(dev.nodename, 'ring-ref'), String(ring.ringRefs[0]), tx);
      } else {
        what = 'writing ring-page-order';
        await client.write(joinPath(dev.nodename, 'ring-page-order'), String(info.ringPageOrder), tx);
        for (let i = 0; i < info.nrRingPages; i++) {
          what = `writing ring-ref${i}`;
          await client.write(joinPath(dev.nodename, `ring-ref${i}`), String(ring.ringRefs[i]), tx);
        }
      }
      what = 'writing event-channel';
      await client.write(joinPath(dev.nodename, 'event-channel'), String(ring.port), tx);
      what = 'writing protocol';
      await client.write(joinPath(dev.nodename, 'protocol'), info.abi!.protocol, tx);
      what = 'writing feature-persistent';
      await client.write(
        joinPath(dev.nodename, 'feature-persistent'),
        info.options.featurePersistent ? '1' : '0',
        tx,
      );
      what = 'completing transaction';
    });
  } catch (e) {
    if (!(e instanceof XenstoreError)) throw e;
    await devFatal(dev, e.errno, what);
    blkifFree(info);
    return false;
  }
  await setState(info, XenbusState.Initialised);
  return true;
}

/** blkfront_connect: the backend is Connected. */
async function blkfrontConnect(info: BlkfrontInfo): Promise<void> {
  const dev = info.dev;
  const client = dev.client;
  const otherend = dev.otherend!;
  if (info.connected === 'connected') {
    // Connected again: the backend announces a new size.
    const sectors = await readUnsigned(client, otherend, 'sectors', -1);
    if (sectors < 0) return;
    info.env.trace.log('blkfront', `Setting capacity to ${sectors}`);
    info.sectors = sectors;
    if (info.gd) info.gd.capacitySectors = sectors;
    return;
  }
  if (info.connected === 'error') return;
  if (info.connected === 'suspended') {
    // Recovering from a suspend: the backend has announced its features; the disk already exists.
    await gatherBackendFeatures(info);
    const fault = blkfrontSetupIndirect(info);
    if (fault !== undefined) await raiseOops(info, fault.bug, fault.detail);
    await blkifRecover(info);
    return;
  }
  const fields: Record<string, number> = {};
  for (const key of ['sectors', 'info', 'sector-size']) {
    const text = await readOptional(client, joinPath(otherend, key));
    const v = text === undefined ? undefined : scanInteger(text);
    if (v === undefined) {
      await devFatal(dev, XS_ERRNO.ENOENT, `reading backend fields at ${otherend}`);
      return;
    }
    fields[key] = v;
  }
  info.sectors = fields.sectors;
  info.vdiskInfo = fields.info;
  info.sectorSize = fields['sector-size'];
  info.physicalSectorSize = await readUnsigned(client, otherend, 'physical-sector-size', info.sectorSize);
  await gatherBackendFeatures(info);
  const fault = blkfrontSetupIndirect(info);
  if (fault !== undefined) await raiseOops(info, fault.bug, fault.detail);
  // xlvbd_alloc_gendisk reserves the minors (EBUSY when taken) before anything is announced...
  const taken = info.kernel.blocks.lookup(XENVBD_MAJOR, info.minor);
  if (taken !== undefined) {
    await devFatal(dev, XS_ERRNO.EBUSY, `xlvbd_add at ${otherend}: minor ${info.minor} is ${taken.name}`);
    return;
  }
  await setState(info, XenbusState.Connected);
  info.connected = 'connected';
  // ...and add_disk comes last: the disk is visible only once requests can go to the ring.
  try {
    xlvbdAllocGendisk(info);
  } catch (e) {
    if (!isKernelError(e)) throw e;
    await devFatal(dev, e.errno, `xlvbd_add at ${otherend}`);
    return;
  }
  info.env.trace.log(
    'blkfront',
    `blkfront: ${info.name}: ${flushInfo(info)} persistent grants: ${info.featurePersistent ? 'enabled;' : 'disabled;'} ` +
      `indirect descriptors: ${info.maxIndirectSegments ? 'enabled;' : 'disabled;'} bounce buffer: ${info.bounce ? 'enabled' : 'disabled;'}`,
  );
  info.ring?.wake.wakeAll();
}

function flushInfo(info: BlkfrontInfo): string {
  if (info.featureFlush && info.featureFua) return 'barrier: enabled;';
  if (info.featureFlush) return 'flush diskcache: enabled;';
  return 'barrier or flush: disabled;';
}

/** blkfront_gather_backend_features. */
async function gatherBackendFeatures(info: BlkfrontInfo): Promise<void> {
  const client = info.dev.client;
  const be = info.dev.otherend!;
  info.featureFlush = false;
  info.featureFua = false;
  if ((await readUnsigned(client, be, 'feature-barrier', 0)) !== 0) {
    info.featureFlush = true;
    info.featureFua = true;
    info.flushOp = BLKIF_OP_WRITE_BARRIER;
  }
  // feature-flush-cache overrides a barrier: flushes without FUA.
  if ((await readUnsigned(client, be, 'feature-flush-cache', 0)) !== 0) {
    info.featureFlush = true;
    info.featureFua = false;
    info.flushOp = BLKIF_OP_FLUSH_DISKCACHE;
  }
  if ((await readUnsigned(client, be, 'feature-discard', 0)) !== 0) {
    info.featureDiscard = true;
    info.discardGranularity = await readUnsigned(client, be, 'discard-granularity', 0);
    info.discardAlignment = await readUnsigned(client, be, 'discard-alignment', 0);
    info.featureSecDiscard = (await readUnsigned(client, be, 'discard-secure', 0)) !== 0;
  }
  info.featurePersistent =
    info.options.featurePersistent && (await readUnsigned(client, be, 'feature-persistent', 0)) !== 0;
  let indirect = await readUnsigned(client, be, 'feature-max-indirect-segments', 0);
  if (indirect > info.options.maxIndirectSegments) indirect = info.options.maxIndirectSegments;
  if (indirect <= BLKIF_MAX_SEGMENTS_PER_REQUEST) indirect = 0;
  info.maxIndirectSegments = indirect;
  info.bounce = !info.trusted || info.featurePersistent;
  if (info.featurePersistent) {
    info.persistent = new PersistentGrants(info.kernel.gnttab, info.kernel.memory, info.dev.otherendId!);
  }
}

/**
 * blkfront_setup_indirect: size the per-request grant arrays of every shadow slot by BLK_RING_SIZE(info),
 * which talk_to_blkback fixed with nr_ring_pages. Reached without the handshake (C14 before
 * c31ecf6c126d) nr_ring_pages is still 0, BLK_RING_SIZE underflows and rinfo->shadow was never
 * allocated: the access faults, modelled as the oops Linux took (returned for the caller to raise).
 */
function blkfrontSetupIndirect(info: BlkfrontInfo): { bug: string; detail: string } | undefined {
  const ring = info.ring;
  if (info.nrRingPages === 0 || ring === undefined) {
    return {
      bug: 'unable to handle kernel NULL pointer dereference',
      detail:
        `blkfront_setup_indirect: ${info.diskName}: rinfo->shadow is not allocated ` +
        `(nr_ring_pages ${info.nrRingPages}: talk_to_blkback never ran)`,
    };
  }
  const size = blkifRingSize(info.abi!, info.ringPageOrder);
  if (ring.shadow.size !== size) {
    throw new Error(`blkfront: ${info.diskName}: shadow of ${ring.shadow.size} slots, ring of ${size}`);
  }
  return undefined;
}

/** Report an oops through the guest kernel (which does not return), or throw one without it. */
function raiseOops(info: BlkfrontInfo, bug: string, detail: string): Promise<never> {
  if (info.kernel.oops) return info.kernel.oops(bug, detail);
  throw new KernelOops(bug, detail);
}

/** xlvbd_alloc_gendisk: the guest's xvdX. */
function xlvbdAllocGendisk(info: BlkfrontInfo): void {
  const blocks = info.kernel.blocks;
  if (!registeredMajors.has(blocks)) {
    blocks.registerBlkdev(XENVBD_MAJOR, 'xvd');
    registeredMajors.add(blocks);
  }
  const driver: BlockDriver = {
    open(_bdev: BlockDevice, _holder: Holder) {
      if (info.removed || info.diskDead || !info.gd) {
        throw new KernelError('ENXIO', `${info.name}: device is gone`);
      }
    },
    release: (bdev: BlockDevice) => blkifRelease(info, bdev),
    submit: (_bdev: BlockDevice, bio) => submitBio(info, bio),
  };
  info.gd = blocks.addDisk({
    name: info.name,
    major: XENVBD_MAJOR,
    minor: info.minor,
    capacitySectors: info.sectors,
    readOnly: (info.vdiskInfo & VDISK_READONLY) !== 0,
    driver,
    private: info,
  });
}

/**
 * xlvbd_release_gendisk: no more requests, then del_gendisk. Our block layer deletes a disk under
 * bd_mutex, which a release callback already holds, so the deletion runs in its own task.
 */
function xlvbdReleaseGendisk(info: BlkfrontInfo): void {
  const gd = info.gd;
  if (!gd) return;
  info.gd = undefined;
  info.diskDead = true;
  info.env.spawn(
    `xlvbd_release_gendisk ${gd.name}`,
    async () => {
      try {
        await info.kernel.blocks.destroy(gd);
      } catch (e) {
        if (!isKernelError(e)) throw e;
        info.env.trace.log('blkfront', `${gd.name}: del_gendisk: ${e.message}`);
      }
    },
    { component: 'blkfront' },
  );
}

/**
 * blkfront_resume. xenbus_dev_resume has put the device back to Initialising; the old backend is gone
 * with the old host. After d8b31d834629 the uncompleted requests are taken out of the shadow first;
 * blkif_free(suspend) then frees the ring (ending grants, failing nothing) and talk_to_blkback sets up
 * a new one.
 */
async function blkfrontResume(info: BlkfrontInfo): Promise<boolean> {
  const dev = info.dev;
  info.env.trace.emit('blkfront', 'resume', { path: dev.nodename, save: info.options.resume });
  if (info.options.resume === 'save-in-resume') info.requeue.push(...saveUncompleted(info));
  blkifFree(info, info.connected === 'connected');
  const from = dev.state;
  dev.state = XenbusState.Initialising;
  if (from !== dev.state) emitState(info, from);
  return talkToBlkback(info);
}

/**
 * blkif_recover, once the backend is Connected after a resume. Before d8b31d834629 this is where the
 * shadow was copied — the new ring's, empty: what was in flight at the suspend is not found again.
 */
async function blkifRecover(info: BlkfrontInfo): Promise<void> {
  const ring = info.ring!;
  if (info.options.resume === 'save-in-recover') info.requeue.push(...saveUncompleted(info));
  await setState(info, XenbusState.Connected);
  info.connected = 'connected';
  const items = info.requeue.splice(0);
  info.env.trace.log('blkfront', `${info.diskName}: recovered ${items.length} request(s) after resume`);
  ring.queue.unshift(...items);
  ring.wake.wakeAll();
}

/** blkfront_closing. */
async function blkfrontClosing(info: BlkfrontInfo): Promise<void> {
  const dev = info.dev;
  if (dev.state === XenbusState.Closing) return;
  if (info.options.version === '2016') {
    // No more requests; pending grant waits are cancelled (their requests fail).
    if (info.gd) info.diskDead = true;
    if (info.ring)
      for (const id of info.ring.shadow.outstanding()) {
        const e = info.ring.shadow.entries[id];
        for (const m of [e.dataMap, e.indirectMap]) if (m?.state === 'deferred') m.unload();
      }
    info.ring?.wake.wakeAll();
    await closed(info);
    return;
  }
  const gd = info.gd;
  if (!gd) {
    await closed(info);
    return;
  }
  await gd.bdMutex.lock(`bd_mutex of ${gd.name} (blkfront_closing)`);
  try {
    if (gd.bdOpeners > 0) {
      await devError(dev, XS_ERRNO.EBUSY, 'Device in use; refusing to close');
      await setState(info, XenbusState.Closing);
    } else {
      xlvbdReleaseGendisk(info);
      await closed(info);
    }
  } finally {
    gd.bdMutex.unlock();
  }
}

/** blkif_release: runs at every close with bd_mutex held; acts on the last one. */
async function blkifRelease(info: BlkfrontInfo, bdev: BlockDevice): Promise<void> {
  if (bdev.bdOpeners > 0) return;
  if (!info.removed && info.dev.state === XenbusState.Closing) {
    // The close we deferred because the disk was open.
    info.env.trace.log('blkfront', `${bdev.name}: releasing disk`);
    xlvbdReleaseGendisk(info);
    await closed(info);
    return;
  }
  if (info.removed) {
    // Sudden device removal while open: the disk goes with its last user.
    info.env.trace.log('blkfront', `${bdev.name}: releasing disk`);
    xlvbdReleaseGendisk(info);
  }
}

/** blkfront_remove. */
async function blkfrontRemove(info: BlkfrontInfo): Promise<void> {
  blkifFree(info);
  info.removed = true;
  const gd = info.gd;
  if (!gd) return;
  info.env.trace.log('blkfront', `${info.dev.nodename} was hot-unplugged, ${gd.bdOpeners} stale handles`);
  if (gd.bdOpeners === 0) xlvbdReleaseGendisk(info);
  else info.diskDead = true;
}

export { enterError };
