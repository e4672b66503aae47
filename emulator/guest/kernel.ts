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
import { FrontendBus } from '../../drivers/xenbus/frontend-bus.js';
import { Xenwatch } from '../../drivers/xenbus/xenwatch.js';
import { XsRingClientTransport } from '../../drivers/xenbus/xs-ring.js';
import type { Hypercalls } from '../../hypervisor/hypercall.js';
import { BlockLayer } from '../kernel/block-device.js';
import { KernelWaits } from '../kernel/waits.js';
import type { Env, Holder } from '../runtime/engine.js';
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

export class GuestKernel {
  readonly env: Env;
  readonly hc: Hypercalls;
  readonly gnttab: GrantTable;
  readonly events: GuestEvents;
  readonly memory: GuestMemory;
  readonly blocks: BlockLayer;
  readonly xenwatch: Xenwatch;
  readonly xs: XenbusClient;
  readonly bus: FrontendBus;
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
    this.bus = new FrontendBus(o.env, this.xs);
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

  /** Guest shutdown: the frontend bus closes each connected device, waiting ≤ 5 s for each. */
  async shutdown(): Promise<void> {
    await this.bus.shutdown();
  }
}
