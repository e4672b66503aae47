/**
 * The blkback control path (Linux drivers/block/xen-blkback/xenbus.c): probe, the physical-device watch
 * (backend_changed), the frontend state machine (frontend_changed) with the historical behaviour
 * switches, connect_ring, connect and remove. Everything here runs in dom0's xenwatch, so a callback that
 * sleeps (the 2012/2013 disconnect, C8) holds up every other device.
 */
import type { Holder } from '../../emulator/runtime/engine.js';
import { blkifAbiForProtocol, XEN_IO_PROTO_ABI_X86_32, XEN_IO_PROTO_ABI_X86_64 } from '../blkif.js';
import type { BackendBus } from '../xenbus/backend-bus.js';
import type { XenbusClient } from '../xenbus/client.js';
import type { XenbusDevice, XenbusDriver } from '../xenbus/device.js';
import { XenstoreError } from '../xenbus/errors.js';
import {
  devError,
  devFatal,
  joinPath,
  scanDecimal,
  switchState,
  XenbusState,
  type XenbusStateValue,
  xenbusStateName,
} from '../xenbus/state.js';
import type { XenbusWatch } from '../xenbus/xenwatch.js';
import {
  BLKBACK_KTHREAD_STOP_VERSIONS,
  BLKBACK_PERSISTENT_NEGOTIATION_VERSIONS,
  BLKBACK_RECONNECT_VERSIONS,
  type BlkbackKthreadStop,
  type BlkbackPersistentNegotiation,
  type BlkbackReconnect,
  type BlkbackVersion,
  DEFAULT_MAX_QUEUES,
  E,
  kstrtoul0,
  MAX_INDIRECT_SEGMENTS,
  MAX_PERSISTENT_GRANTS,
  scanMajorMinor,
  scanUnsigned,
  versionBehaviour,
  XENBUS_MAX_RING_GRANT_ORDER,
} from './common.js';
import { type BlkbackContext, DEFAULT_DISK_FEATURES, type DiskFeatures } from './context.js';
import { BlkifRing } from './ring-thread.js';
import { vbdHolder, XenVbd } from './vbd.js';
import { XenBlkif } from './xen-blkif.js';

/** The label a toolstack publishes (ctx.holders.publish) so blkback's held devices name it in stalls. */
export const TOOLSTACK_HOLDER_LABEL = 'toolstack';

export interface BlkbackOptions {
  env: BlkbackContext['env'];
  kernel: BlkbackContext['kernel'];
  hc: BlkbackContext['hc'];
  events: BlkbackContext['events'];
  /** dom0's kernel xenbus client (the same one the bus uses). */
  client: XenbusClient;
  bus: BackendBus;
  version?: BlkbackVersion;
  /** C6: teardown before (re)connect; default 'ef9e715c419c' (fixed). */
  reconnect?: BlkbackReconnect;
  /** C10: clearing ring->xenblkd after kthread_stop; default '1c728719a4da' (fixed). */
  kthreadStop?: BlkbackKthreadStop;
  /** C16: where the feature_persistent parameter is cached; default 'fc9be616bb8f' (fixed). */
  persistentNegotiation?: BlkbackPersistentNegotiation;
  /** Module parameters (defaults as Linux). */
  featurePersistent?: boolean;
  maxRingPageOrder?: number;
  maxQueues?: number;
  maxPersistentGrants?: number;
  /** Capabilities of a dom0 block device (default: write cache, no discard, 512-byte sectors). */
  diskFeatures?: (major: number, minor: number) => Partial<DiskFeatures>;
  /**
   * Who removes a backend directory, for the wait-for graph. Default: the holder published under
   * TOOLSTACK_HOLDER_LABEL in `holders` (when given), else nobody named.
   */
  removalHolders?: (nodename: string) => readonly Holder[];
  holders?: { ref(label: string): Holder };
}

/** struct backend_info. */
interface BackendInfo {
  readonly dev: XenbusDevice;
  blkif: XenBlkif | undefined;
  backendWatch: XenbusWatch | undefined;
  major: number;
  minor: number;
  mode: string | undefined;
}

export interface BackendSnapshot {
  node: string;
  state: number;
  major: number;
  minor: number;
  vbdOpen: boolean;
  refcnt: number;
  rings: Array<{
    port: number;
    active: boolean;
    halted: boolean;
    thread: string | undefined;
    /** xenblkd threads running on the ring (more than one only after a C6 leak). */
    threads: number;
    inflight: number;
    consumed: number;
    answered: number;
    persistentGrants: number;
  }>;
}

export class Blkback {
  readonly ctx: BlkbackContext;
  private readonly backends = new Map<string, BackendInfo>();
  /** Every blkif created, including ones whose device is gone but which are not freed yet. */
  private readonly blkifs = new Set<XenBlkif>();
  readonly driver: XenbusDriver;

  constructor(private readonly opts: BlkbackOptions) {
    const version = opts.version ?? '2017';
    const behaviour = versionBehaviour(version);
    const order = opts.maxRingPageOrder ?? XENBUS_MAX_RING_GRANT_ORDER;
    if (!Number.isInteger(order) || order < 0 || order > XENBUS_MAX_RING_GRANT_ORDER) {
      throw new RangeError(
        `blkback maxRingPageOrder: ${order} is not an integer in 0..${XENBUS_MAX_RING_GRANT_ORDER}`,
      );
    }
    const queues = opts.maxQueues ?? DEFAULT_MAX_QUEUES;
    if (!Number.isInteger(queues) || queues < 1)
      throw new RangeError(`blkback maxQueues: ${queues} is not a positive integer`);
    const pgrants = opts.maxPersistentGrants ?? MAX_PERSISTENT_GRANTS;
    if (!Number.isInteger(pgrants) || pgrants < 0) {
      throw new RangeError(`blkback maxPersistentGrants: ${pgrants} is not a non-negative integer`);
    }
    const reconnect = opts.reconnect ?? 'ef9e715c419c';
    if (!BLKBACK_RECONNECT_VERSIONS.includes(reconnect)) {
      throw new RangeError(
        `blkback reconnect: ${JSON.stringify(reconnect)} is not one of ${BLKBACK_RECONNECT_VERSIONS.map((x) => `'${x}'`).join(', ')}`,
      );
    }
    const kthreadStop = opts.kthreadStop ?? '1c728719a4da';
    if (!BLKBACK_KTHREAD_STOP_VERSIONS.includes(kthreadStop)) {
      throw new RangeError(
        `blkback kthreadStop: ${JSON.stringify(kthreadStop)} is not one of ${BLKBACK_KTHREAD_STOP_VERSIONS.map((x) => `'${x}'`).join(', ')}`,
      );
    }
    const persistentNegotiation = opts.persistentNegotiation ?? 'fc9be616bb8f';
    if (!BLKBACK_PERSISTENT_NEGOTIATION_VERSIONS.includes(persistentNegotiation)) {
      throw new RangeError(
        `blkback persistentNegotiation: ${JSON.stringify(persistentNegotiation)} is not one of ${BLKBACK_PERSISTENT_NEGOTIATION_VERSIONS.map((x) => `'${x}'`).join(', ')}`,
      );
    }
    const env = opts.env;
    const removal =
      opts.removalHolders ??
      ((): readonly Holder[] => (opts.holders ? [opts.holders.ref(TOOLSTACK_HOLDER_LABEL)] : []));
    this.ctx = {
      env,
      kernel: opts.kernel,
      hc: opts.hc,
      events: opts.events,
      version,
      behaviour,
      reconnect,
      kthreadStop,
      persistentNegotiation,
      featurePersistent: opts.featurePersistent ?? true,
      maxRingPageOrder: behaviour.multiPageRing ? order : 0,
      maxQueues: behaviour.multiQueue ? queues : 1,
      maxPersistentGrants: pgrants,
      diskFeatures: (major, minor) => ({
        ...DEFAULT_DISK_FEATURES,
        ...(opts.diskFeatures?.(major, minor) ?? {}),
      }),
      removalHolders: removal,
      log: (m) => env.trace.log('blkback', `xen-blkback: ${m}`),
    };
    this.driver = {
      name: 'vbd',
      deviceType: 'vbd',
      // Linux set allow_rebind for blkback only in 2019, after every version modelled here.
      allowRebind: false,
      probe: (dev) => this.probe(dev),
      otherendChanged: (dev, state) => this.frontendChanged(dev, state),
      remove: (dev) => this.remove(dev),
    };
  }

  /** xen_blkif_xenbus_init: register with the backend bus (binds existing vbd devices at once). */
  async register(): Promise<void> {
    await this.opts.bus.registerDriver(this.driver);
  }

  /** What tests and the teaching views look at. */
  snapshot(): BackendSnapshot[] {
    const out: BackendSnapshot[] = [];
    for (const be of this.backends.values()) out.push(this.snap(be.dev.nodename, be.dev.state, be, be.blkif));
    return out;
  }

  /** Blkifs whose xenbus device is gone but which still hold resources (2014/2017 deferred free). */
  lingering(): Array<{ dev: string; refcnt: number; inflight: number; vbdOpen: boolean }> {
    return [...this.blkifs]
      .filter((b) => !b.freed && ![...this.backends.values()].some((be) => be.blkif === b))
      .map((b) => ({
        dev: b.label,
        refcnt: b.refcnt,
        inflight: b.inflight(),
        vbdOpen: !!b.vbd && !b.vbd.isClosed,
      }));
  }

  /** The rings of a device (tests drive them directly). */
  rings(nodename: string): BlkifRing[] {
    return this.backends.get(nodename)?.blkif?.rings ?? [];
  }

  private snap(node: string, state: number, be: BackendInfo, b: XenBlkif | undefined): BackendSnapshot {
    return {
      node,
      state,
      major: be.major,
      minor: be.minor,
      vbdOpen: !!b?.vbd && !b.vbd.isClosed,
      refcnt: b?.refcnt ?? 0,
      rings: (b?.rings ?? []).map((r) => ({
        port: r.port,
        active: r.active,
        halted: r.halted,
        thread: r.thread?.name,
        threads: r.threads.size,
        inflight: r.inflight,
        consumed: r.consumed,
        answered: r.answered,
        persistentGrants: r.persistent.count,
      })),
    };
  }

  private async setState(dev: XenbusDevice, to: XenbusStateValue): Promise<void> {
    const from = dev.state;
    await switchState(dev, to);
    if (dev.state !== from) {
      this.ctx.env.trace.emit('blkback', 'xenbus-state', {
        path: dev.nodename,
        from: xenbusStateName(from),
        to: xenbusStateName(dev.state),
      });
    }
  }

  private async write(dev: XenbusDevice, key: string, value: string): Promise<boolean> {
    try {
      await dev.client.write(joinPath(dev.nodename, key), value);
      return true;
    } catch (e) {
      if (!(e instanceof XenstoreError)) throw e;
      this.ctx.log(`${dev.nodename}: writing ${key} (${e.code})`);
      return false;
    }
  }

  // ---- probe / remove ------------------------------------------------------------------------

  /** xen_blkbk_probe. */
  private async probe(dev: XenbusDevice): Promise<void> {
    const be: BackendInfo = {
      dev,
      blkif: undefined,
      backendWatch: undefined,
      major: 0,
      minor: 0,
      mode: undefined,
    };
    this.backends.set(dev.nodename, be);
    dev.driverData = be;
    be.blkif = new XenBlkif(this.ctx, dev.otherendId!, dev);
    this.blkifs.add(be.blkif);
    const beh = this.ctx.behaviour;
    if (beh.indirect) await this.write(dev, 'feature-max-indirect-segments', String(MAX_INDIRECT_SEGMENTS));
    if (beh.multiQueue) await this.write(dev, 'multi-queue-max-queues', String(this.ctx.maxQueues));
    try {
      be.backendWatch = await dev.client.watch(joinPath(dev.nodename, 'physical-device'), () =>
        this.backendChanged(be),
      );
    } catch (e) {
      if (!(e instanceof XenstoreError)) throw e;
      await devFatal(dev, e.errno, `adding watch on ${dev.nodename}/physical-device`);
      this.ctx.log('xen_blkbk_probe failed');
      await this.remove(dev);
      throw e;
    }
    if (beh.multiPageRing) await this.write(dev, 'max-ring-page-order', String(this.ctx.maxRingPageOrder));
    await this.setState(dev, XenbusState.InitWait);
  }

  /** xen_blkbk_remove: disconnect, then drop the initial reference (the free closes the device). */
  private async remove(dev: XenbusDevice): Promise<void> {
    const be = this.backends.get(dev.nodename);
    if (!be) return;
    this.backends.delete(dev.nodename);
    if (be.backendWatch) {
      const w = be.backendWatch;
      be.backendWatch = undefined;
      await dev.client.unwatch(w);
    }
    dev.driverData = undefined;
    const blkif = be.blkif;
    be.blkif = undefined;
    if (!blkif) return;
    if (this.ctx.behaviour.disconnect === 'wait') {
      // 2012/2013: disconnect (sleeping until I/O drained), xen_vbd_free, xen_blkif_free, in xenwatch.
      await blkif.free();
      this.blkifs.delete(blkif);
      return;
    }
    await blkif.disconnect();
    blkif.put();
    if (blkif.freed) this.blkifs.delete(blkif);
  }

  // ---- physical-device -----------------------------------------------------------------------

  /** backend_changed: the hotplug script wrote physical-device. */
  private async backendChanged(be: BackendInfo): Promise<void> {
    const dev = be.dev;
    if (this.backends.get(dev.nodename) !== be || !be.blkif) return;
    let text: string | undefined;
    try {
      text = await dev.client.tryRead(joinPath(dev.nodename, 'physical-device'));
    } catch (e) {
      if (!(e instanceof XenstoreError)) throw e;
      await devFatal(dev, e.errno, 'reading physical-device');
      return;
    }
    // The watch fires once when registered; the node appears only after the hotplug script ran.
    if (text === undefined) return;
    const mm = scanMajorMinor(text);
    if (mm.count !== 2) {
      await devFatal(dev, mm.count === 0 ? E.ERANGE : mm.count, 'reading physical-device');
      return;
    }
    if (be.major !== 0 || be.minor !== 0) {
      if (be.major !== mm.major || be.minor !== mm.minor) {
        this.ctx.log(
          `changing physical device (from ${be.major.toString(16)}:${be.minor.toString(16)} to ${mm.major.toString(16)}:${mm.minor.toString(16)}) not supported.`,
        );
      }
      return;
    }
    let mode: string;
    try {
      mode = await dev.client.read(joinPath(dev.nodename, 'mode'));
    } catch (e) {
      if (!(e instanceof XenstoreError)) throw e;
      await devFatal(dev, e.errno, 'reading mode');
      return;
    }
    let cdrom = false;
    try {
      const dt = await dev.client.tryRead(joinPath(dev.otherend!, 'device-type'));
      cdrom = dt === 'cdrom';
    } catch (e) {
      if (!(e instanceof XenstoreError)) throw e;
    }
    // The frontend directory's name is the vbd handle.
    const handle = kstrtoul0(dev.otherend!.slice(dev.otherend!.lastIndexOf('/') + 1));
    if (handle === undefined) return;
    const blkif = be.blkif;
    if (this.backends.get(dev.nodename) !== be || !blkif) return;
    be.major = mm.major;
    be.minor = mm.minor;
    be.mode = mode;
    const vbd = await XenVbd.create(this.ctx, {
      handle,
      major: mm.major,
      minor: mm.minor,
      readonly: !mode.includes('w'),
      cdrom,
      holder: vbdHolder(this.ctx, dev.busId, dev.nodename, {
        releasing: () => blkif.drainWait,
        removal: () => this.opts.bus.removalWait(dev.nodename),
      }),
    });
    if (typeof vbd === 'number') {
      be.major = 0;
      be.minor = 0;
      be.mode = undefined;
      await devFatal(dev, vbd, 'creating vbd structure');
      return;
    }
    if (this.backends.get(dev.nodename) !== be || !be.blkif) {
      // Removed while the device was being opened: nothing will free it but us.
      await vbd.free();
      return;
    }
    be.blkif.vbd = vbd;
    // xen_vbd_create before fc9be616bb8f: the parameter lands in the negotiated field, whatever
    // connect_ring (if it already ran) decided.
    if (this.ctx.persistentNegotiation === 'aac8a70db24b') {
      be.blkif.featureGntPersistent = this.ctx.behaviour.persistentGrants && this.ctx.featurePersistent;
    }
    await this.updateStatus(be.blkif);
  }

  // ---- frontend state ------------------------------------------------------------------------

  /** frontend_changed. */
  private async frontendChanged(dev: XenbusDevice, state: XenbusStateValue): Promise<void> {
    const be = this.backends.get(dev.nodename);
    if (!be?.blkif) return;
    const blkif = be.blkif;
    const beh = this.ctx.behaviour;
    switch (state) {
      case XenbusState.Initialising:
        if (dev.state === XenbusState.Closed) {
          this.ctx.env.trace.log('blkback', `xen-blkback: ${dev.nodename}: prepare for reconnect`);
          await this.setState(dev, XenbusState.InitWait);
        }
        return;
      case XenbusState.Initialised:
      case XenbusState.Connected: {
        // Two watches firing close together may skip the intermediate value: connect once.
        if (dev.state === XenbusState.Connected) return;
        // Enforce the precondition before the potential leak point (C6, ef9e715c419c): disconnect is
        // idempotent. 2.6.18 went straight to connect_ring.
        if (this.ctx.reconnect === 'ef9e715c419c') {
          const err = await blkif.disconnect();
          if (err !== 0) {
            await devFatal(dev, err, 'pending I/O');
            return;
          }
        }
        if ((await this.connectRing(be, blkif)) !== 0) {
          await blkif.disconnect();
          return;
        }
        await this.updateStatus(blkif);
        return;
      }
      case XenbusState.Closing:
        // Before 2013 the rings went away here, under a guest that may still use the disk (C7).
        if (beh.disconnectOnClosing) await blkif.disconnect();
        await this.setState(dev, XenbusState.Closing);
        return;
      case XenbusState.Closed:
        if (beh.disconnectOnClosed) await blkif.disconnect();
        await this.setState(dev, XenbusState.Closed);
        if (await this.isOnline(dev)) return;
        // Not online: the toolstack wants it gone; this also frees the vbd.
        await this.opts.bus.unregisterDevice(dev);
        return;
      default:
        await devFatal(dev, -E.EINVAL, `saw state ${state} at frontend`);
    }
  }

  /** xenbus_dev_is_online: `online` read with %d, 0 when absent. */
  private async isOnline(dev: XenbusDevice): Promise<boolean> {
    try {
      const v = await dev.client.tryRead(joinPath(dev.nodename, 'online'));
      return (v === undefined ? 0 : (scanDecimal(v) ?? 0)) !== 0;
    } catch (e) {
      if (!(e instanceof XenstoreError)) throw e;
      return false;
    }
  }

  /** xenbus_read_unsigned: the value, or `def` when absent or unparsable. */
  private async readUnsigned(path: string, def: number): Promise<number> {
    try {
      return scanUnsigned(await this.opts.client.tryRead(path)) ?? def;
    } catch (e) {
      if (!(e instanceof XenstoreError)) throw e;
      return def;
    }
  }

  /** connect_ring: protocol, features, queues, ring order, then each ring's refs and channel. */
  private async connectRing(be: BackendInfo, blkif: XenBlkif): Promise<number> {
    const dev = be.dev;
    // 2.6.18 blkif_map: "Already connected through?" - an irq still bound means nothing to do.
    if (this.ctx.reconnect === '2.6.18' && blkif.rings.some((r) => r.port !== 0)) return 0;
    const fe = dev.otherend!;
    const client = dev.client;
    let protocol: string | undefined;
    try {
      protocol = await client.tryRead(joinPath(fe, 'protocol'));
    } catch (e) {
      if (!(e instanceof XenstoreError)) throw e;
    }
    // "%63s": the first word.
    const word = protocol
      ?.trim()
      .split(/[ \t\n\v\f\r]+/)[0]
      ?.slice(0, 63);
    if (!word) {
      // x86 Linux assumes the 32-bit ABI when the frontend says nothing (protocol.md 7.1).
      blkif.abi = blkifAbiForProtocol(XEN_IO_PROTO_ABI_X86_32);
      protocol = 'unspecified, assuming default';
    } else if (word === XEN_IO_PROTO_ABI_X86_32 || word === XEN_IO_PROTO_ABI_X86_64) {
      blkif.abi = blkifAbiForProtocol(word);
      protocol = word;
    } else {
      // Linux passes the scanf count (1) as the error here.
      await devFatal(dev, 1, `unknown fe protocol ${word}`);
      return -E.ENOSYS;
    }
    const beh = this.ctx.behaviour;
    if (!beh.persistentGrants) {
      blkif.featureGntPersistent = false;
    } else if (this.ctx.persistentNegotiation === 'aac8a70db24b') {
      // Asks the frontend only if the field is set: 0 when xen_vbd_create has not run yet (C16).
      if (blkif.featureGntPersistent)
        blkif.featureGntPersistent = (await this.readUnsigned(joinPath(fe, 'feature-persistent'), 0)) !== 0;
    } else {
      // Simplification: the end state of the July-Sept 2022 series (fc9be616bb8f, e94c6101e151,
      // 06ba5d2e943e): the parameter cached at connect in a field of its own, advertised from there.
      blkif.featureGntPersistentParm = this.ctx.featurePersistent;
      blkif.featureGntPersistent =
        blkif.featureGntPersistentParm &&
        (await this.readUnsigned(joinPath(fe, 'feature-persistent'), 0)) !== 0;
    }
    const vbdPersistent = blkif.featureGntPersistent;

    const queues = beh.multiQueue ? await this.readUnsigned(joinPath(fe, 'multi-queue-num-queues'), 1) : 1;
    if (queues > this.ctx.maxQueues || queues === 0) {
      await devFatal(
        dev,
        word ? 1 : -E.ENOENT,
        `guest requested ${queues} queues, exceeding the maximum of ${this.ctx.maxQueues}.`,
      );
      return -E.ENOSYS;
    }
    this.ctx.env.trace.log(
      'blkback',
      `xen-blkback: ${dev.nodename}: using ${queues} queues, protocol ${blkif.abi.name === 'x86_32' ? 2 : 3} (${protocol}) ${vbdPersistent ? 'persistent grants' : ''}`,
    );

    let nrPages = 1;
    let multiRef = false;
    if (beh.multiPageRing) {
      let orderText: string | undefined;
      try {
        orderText = await client.tryRead(joinPath(fe, 'ring-page-order'));
      } catch (e) {
        if (!(e instanceof XenstoreError)) throw e;
      }
      const order = scanUnsigned(orderText);
      if (order !== undefined) {
        if (order > this.ctx.maxRingPageOrder) {
          await devFatal(
            dev,
            -E.EINVAL,
            `requested ring page order ${order} exceed max:${this.ctx.maxRingPageOrder}`,
          );
          return -E.EINVAL;
        }
        nrPages = 1 << order;
        multiRef = true;
      }
    }
    blkif.nrRingPages = nrPages;
    blkif.rings = [];
    for (let i = 0; i < queues; i++) blkif.rings.push(new BlkifRing(blkif, i));
    for (let i = 0; i < queues; i++) {
      const dir = queues === 1 ? fe : `${fe}/queue-${i}`;
      const err = await this.readPerRingRefs(dev, blkif.rings[i]!, dir, nrPages, multiRef);
      if (err !== 0) return err;
    }
    return 0;
  }

  /** read_per_ring_refs. */
  private async readPerRingRefs(
    dev: XenbusDevice,
    ring: BlkifRing,
    dir: string,
    nrPages: number,
    multiRef: boolean,
  ): Promise<number> {
    const evtchn = scanUnsigned(await this.tryReadAny(joinPath(dir, 'event-channel')));
    if (evtchn === undefined) {
      await devFatal(dev, -E.EINVAL, `reading ${dir}/event-channel`);
      return -E.EINVAL;
    }
    const refs: number[] = [];
    for (let i = 0; i < nrPages; i++) {
      const name = multiRef ? `ring-ref${i}` : 'ring-ref';
      const ref = scanUnsigned(await this.tryReadAny(joinPath(dir, name)));
      if (ref === undefined) {
        await devFatal(dev, -E.EINVAL, `reading ${dir}/${name}`);
        return -E.EINVAL;
      }
      refs.push(ref);
    }
    const err = ring.map(refs, evtchn);
    if (err !== 0) {
      await devFatal(dev, err, `mapping ring-ref port ${evtchn}`);
      return err;
    }
    return 0;
  }

  private async tryReadAny(path: string): Promise<string | undefined> {
    try {
      return await this.opts.client.tryRead(path);
    } catch (e) {
      if (!(e instanceof XenstoreError)) throw e;
      return undefined;
    }
  }

  /** xen_update_blkif_status: connect when both ring and vbd are ready, then start one thread per ring. */
  private async updateStatus(blkif: XenBlkif): Promise<void> {
    const dev = blkif.dev;
    const vbd = blkif.vbd;
    if (blkif.rings.length === 0 || blkif.rings[0]!.port === 0 || !vbd) return;
    if (dev.state === XenbusState.Connected) return;
    await this.connect(blkif, vbd);
    if (dev.state !== XenbusState.Connected) return;
    let name: string | undefined;
    try {
      const devpath = await dev.client.read(joinPath(dev.nodename, 'dev'));
      const at = devpath.indexOf('/dev/');
      name = `blkback.${blkif.domid}.${at >= 0 ? devpath.slice(at + 5) : devpath}`;
    } catch (e) {
      if (!(e instanceof XenstoreError)) throw e;
      await devError(dev, e.errno, 'get blkback dev name');
      return;
    }
    // Simplification: no sync_blockdev/invalidate here; the model has no dom0 page cache.
    for (const ring of blkif.rings) ring.start(`${name}-${ring.index}`);
  }

  /** connect(): the device's details in one transaction, then Connected. */
  private async connect(blkif: XenBlkif, vbd: XenVbd): Promise<void> {
    const dev = blkif.dev;
    const client = dev.client;
    const node = dev.nodename;
    const f = vbd.features;
    const discardEnable = (await this.readUnsigned(joinPath(node, 'discard-enable'), 1)) !== 0;
    try {
      await client.withTransaction(async (tx) => {
        await client.write(joinPath(node, 'feature-flush-cache'), vbd.flushSupport ? '1' : '0', tx);
        let discard = 0;
        if (discardEnable && f.discard) {
          await client.write(joinPath(node, 'discard-granularity'), String(f.discardGranularity), tx);
          await client.write(joinPath(node, 'discard-alignment'), String(f.discardAlignment), tx);
          await client.write(joinPath(node, 'discard-secure'), f.discardSecure ? '1' : '0', tx);
          discard = 1;
        }
        await client.write(joinPath(node, 'feature-discard'), String(discard), tx);
        vbd.discardAdvertised = discard === 1;
        await client.write(joinPath(node, 'feature-barrier'), vbd.flushSupport ? '1' : '0', tx);
        if (this.ctx.behaviour.persistentGrants) {
          // Before 06ba5d2e943e the advertisement was the negotiated field (C16's overwrite shows here).
          const advertised =
            this.ctx.persistentNegotiation === 'aac8a70db24b'
              ? blkif.featureGntPersistent
              : blkif.featureGntPersistentParm;
          await client.write(joinPath(node, 'feature-persistent'), advertised ? '1' : '0', tx);
        }
        await client.write(joinPath(node, 'sectors'), String(vbd.sectors), tx);
        await client.write(joinPath(node, 'info'), String(vbd.info), tx);
        await client.write(joinPath(node, 'sector-size'), String(f.logicalBlockSize), tx);
        await client.write(joinPath(node, 'physical-sector-size'), String(f.physicalBlockSize), tx);
      });
    } catch (e) {
      if (!(e instanceof XenstoreError)) throw e;
      await devFatal(dev, e.errno, `writing ${node} connect details`);
      return;
    }
    await this.setState(dev, XenbusState.Connected);
  }
}
