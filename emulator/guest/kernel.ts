/**
 * A PV guest kernel as the block path needs it: its grant table (deferred revocation on the engine's
 * timer), event channels on the domain's upcall, a page allocator over its frames, the kernel model's
 * block layer, xenstore over its ring with a xenwatch, the frontend bus with blkfront registered, and
 * the guest block layer and workload on top.
 */

import type { BlkfrontOptions } from '../../drivers/blkfront/info.js';
import { type Blkfront, createBlkfront } from '../../drivers/blkfront/xenbus.js';
import { GuestMemory } from '../../drivers/busdma/guest-memory.js';
import { GuestEvents } from '../../drivers/events.js';
import { GrantTable } from '../../drivers/grant-table.js';
import { XenbusClient } from '../../drivers/xenbus/client.js';
import type { XenbusDevice } from '../../drivers/xenbus/device.js';
import { FrontendBus } from '../../drivers/xenbus/frontend-bus.js';
import { Xenwatch } from '../../drivers/xenbus/xenwatch.js';
import { XsRingClientTransport } from '../../drivers/xenbus/xs-ring.js';
import type { Hypercalls } from '../../hypervisor/hypercall.js';
import { BlockLayer } from '../kernel/block-device.js';
import { KernelWaits } from '../kernel/waits.js';
import type { Env, Holder, Millis, WaitQueue, WaitResult } from '../runtime/engine.js';
import { vbdDeviceId } from '../xenstored/layout.js';
import { GuestBlockLayer } from './block-layer.js';
import { guestOopsReporter, reportPoisonCorruption } from './oops.js';
import { Workload } from './workload.js';

export interface GuestKernelOptions {
  env: Env;
  hc: Hypercalls;
  /** The xenstore ring page shared with xenstored, and how to signal it. */
  xenstore: { page: Uint8Array; notify: () => void; server?: Holder };
  blkfront?: BlkfrontOptions;
  /** Reuse the kernel's own grant table / event layer when the caller already built them. */
  gnttab?: GrantTable;
  events?: GuestEvents;
  /**
   * Register the domain's (single) upcall handler here (default). Pass false when the caller owns it;
   * it must then call `upcall()` from its handler.
   */
  registerUpcall?: boolean;
  /** page_poison=1 (default on): freed frames are poisoned and checked when handed out again. */
  pagePoison?: boolean;
}

/**
 * The frontend bus, telling when a device_unregister has run to its end: the driver's remove and the
 * final switch to Closed (xenbus_dev_remove), both inside xenwatch. Until then a re-created device
 * directory can still be written Closed by the old device (the C14 scenario's barrier waits for this).
 */
class GuestFrontendBus extends FrontendBus {
  /** Nodenames whose unregistration has started and not finished. */
  private readonly unregistering = new Set<string>();
  readonly unregistered: WaitQueue;

  constructor(env: Env, client: XenbusClient) {
    super(env, client);
    this.unregistered = env.waitQueue('xenbus device unregistered');
  }

  override async unregisterDevice(dev: XenbusDevice): Promise<void> {
    if (!dev.registered) return;
    this.unregistering.add(dev.nodename);
    try {
      await super.unregisterDevice(dev);
    } finally {
      this.unregistering.delete(dev.nodename);
      this.unregistered.wakeAll();
    }
  }

  /** No device registered at `nodename` and none being unregistered there. */
  hasNoDevice(nodename: string): boolean {
    return this.find(nodename) === undefined && !this.unregistering.has(nodename);
  }
}

export class GuestKernel {
  readonly env: Env;
  readonly hc: Hypercalls;
  readonly gnttab: GrantTable;
  readonly events: GuestEvents;
  readonly memory: GuestMemory;
  readonly blocks: BlockLayer;
  readonly xenwatch: Xenwatch;
  readonly xs: XenbusClient;
  readonly bus: GuestFrontendBus;
  readonly blkfront: Blkfront;
  readonly disks: GuestBlockLayer;
  readonly workload: Workload;
  private readonly xsRing: XsRingClientTransport;

  constructor(o: GuestKernelOptions) {
    this.env = o.env;
    this.hc = o.hc;
    this.gnttab = o.gnttab ?? new GrantTable(o.hc, { env: o.env });
    this.events = o.events ?? new GuestEvents(o.hc, { env: o.env });
    this.memory = new GuestMemory(
      o.hc,
      (o.pagePoison ?? true) ? { onPoisonCorruption: (c) => reportPoisonCorruption(o.env, c) } : {},
    );
    this.blocks = new BlockLayer(o.env, new KernelWaits(o.env));
    this.xsRing = new XsRingClientTransport(o.env, {
      page: o.xenstore.page,
      notify: o.xenstore.notify,
      ...(o.xenstore.server ? { server: o.xenstore.server } : {}),
    });
    // One upcall handler per domain: the xenstore ring and every bound event channel.
    if (o.registerUpcall ?? true) o.env.onUpcall(() => this.upcall());
    this.xenwatch = new Xenwatch(o.env);
    this.xenwatch.start();
    this.xs = new XenbusClient(o.env, this.xsRing, { xenwatch: this.xenwatch });
    this.bus = new GuestFrontendBus(o.env, this.xs);
    this.blkfront = createBlkfront(
      {
        env: o.env,
        hc: o.hc,
        gnttab: this.gnttab,
        events: this.events,
        memory: this.memory,
        blocks: this.blocks,
        oops: guestOopsReporter(o.env, o.hc, 'blkfront'),
      },
      o.blkfront,
    );
    this.disks = new GuestBlockLayer(o.env, this.blocks);
    this.workload = new Workload(o.env, this.memory, this.blocks);
  }

  /** The upcall: the xenstore ring and every bound event channel. */
  upcall(): void {
    this.xsRing.onEvent();
    this.events.handleUpcall();
  }

  /** Enumerate devices and bind blkfront (call from a task once xenstored serves the ring). */
  async start(): Promise<void> {
    await this.bus.start();
    await this.bus.registerDriver(this.blkfront.driver);
  }

  /**
   * Wait until the guest has no block device `vdev` ("xvda"): no xenbus device at its
   * device/vbd/<id>, none being unregistered there (remove and the final switch to Closed run in
   * xenwatch after the gendisk is gone), and no gendisk of that name. A scenario barrier: a test
   * harness's look at the guest, not something a toolstack could see.
   */
  async waitNoDevice(vdev: string, timeoutMs?: Millis): Promise<WaitResult> {
    const nodename = `device/vbd/${vbdDeviceId(vdev)}`;
    const deadline = timeoutMs === undefined ? undefined : this.env.now() + timeoutMs;
    const limit = () =>
      deadline === undefined
        ? {}
        : { timeoutMs: Math.max(0, deadline - this.env.now()), timeoutName: `wait for no ${vdev} timeout` };
    for (;;) {
      const unregistered = await this.env.wait(this.bus.unregistered, () => this.bus.hasNoDevice(nodename), {
        what: `${nodename} to be unregistered`,
        holders: () => (this.xenwatch.task === undefined ? [] : [this.xenwatch.task]),
        ...limit(),
      });
      if (unregistered === 'timeout') return 'timeout';
      // blkfront_remove leaves an open gendisk to its last release (blkif_release deletes it then).
      const disk = this.blocks.byName(vdev);
      if (disk === undefined || disk.dead) {
        if (this.bus.hasNoDevice(nodename)) return 'ok';
        continue;
      }
      const deleted = await this.env.wait(disk.openersChanged, () => disk.dead, {
        what: `${vdev} to be deleted (at its last close)`,
        holders: () => [...new Set(disk.openers())],
        ...limit(),
      });
      if (deleted === 'timeout') return 'timeout';
    }
  }

  /**
   * Wait until the guest has a live block device `vdev` ("xvda"), as a program waits for udev to make
   * /dev/xvda: blkfront adds the gendisk last, once requests can reach the ring.
   */
  async waitDevice(vdev: string, timeoutMs?: Millis): Promise<WaitResult> {
    return this.env.wait(
      this.blocks.diskAdded,
      () => {
        const disk = this.blocks.byName(vdev);
        return disk !== undefined && !disk.dead;
      },
      {
        what: `${vdev} to appear (add_disk)`,
        holders: () => (this.xenwatch.task === undefined ? [] : [this.xenwatch.task]),
        ...(timeoutMs === undefined ? {} : { timeoutMs, timeoutName: `wait for ${vdev} timeout` }),
      },
    );
  }

  /** Guest shutdown: the frontend bus closes each connected device, waiting ≤ 5 s for each. */
  async shutdown(): Promise<void> {
    await this.bus.shutdown();
  }
}
