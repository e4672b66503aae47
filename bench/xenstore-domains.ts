/**
 * The two domains of the xenstore benchmark (bench/xenstore.ts), for either engine. dom0 runs xenstored
 * serving the guest's ring through XenstoredStoreChannels (the grant-mapped page and an interdomain
 * event channel, as C xenstored does) and writes through a dom0 user-space connection; the guest runs
 * its kernel's xenbus over the ring, with the store event channel the domain builder allocated. A second
 * event channel carries the guest's "I saw the watch event" back to dom0 for the watch round trip.
 */
import { GuestEvents } from '../drivers/events.js';
import { XenbusClient } from '../drivers/xenbus/client.js';
import { DirectTransport } from '../drivers/xenbus/direct-transport.js';
import { Xenwatch } from '../drivers/xenbus/xenwatch.js';
import { XsRingClientTransport } from '../drivers/xenbus/xs-ring.js';
import type { DomainContext, DomainProgram } from '../emulator/runtime/engine.js';
import { XsClient } from '../emulator/xenstored/client.js';
import { XenstoreDaemon } from '../emulator/xenstored/daemon.js';
import { createDom0Layout, createDomainLayout } from '../emulator/xenstored/layout.js';
import { XenstoredRingTransport } from '../emulator/xenstored/ring-transport.js';
import { XenstoredStoreChannels } from '../emulator/xenstored/store-channels.js';
import { Hypervisor, type HypervisorBuffers } from '../hypervisor/index.js';

/** Prefix of the hypervisor's buffers among the engine's shared buffers. */
export const HV_SHARED_PREFIX = 'hv:';

/** What the domain builder tells the guest (start_info's store fields) and the toolstack keeps. */
export interface StoreGuestConfig {
  domid: number;
  storeMfn: number;
  /** The guest's own port, unbound with remote dom0 until xenstored binds it. */
  storeEvtchn: number;
  /** The guest's port of the acknowledgement channel (unbound, remote dom0). */
  ackEvtchn: number;
}

export interface StoreDom0Config {
  guests: StoreGuestConfig[];
}

/** Rates measured inside a domain, in real time. */
export interface Rate {
  ops: number;
  elapsedMs: number;
}

function attachHypervisor(ctx: DomainContext): Hypervisor {
  const buffers: Record<string, SharedArrayBuffer> = {};
  for (const [name, buf] of Object.entries(ctx.shared)) {
    if (name.startsWith(HV_SHARED_PREFIX)) buffers[name.slice(HV_SHARED_PREFIX.length)] = buf;
  }
  return Hypervisor.attach(buffers as HypervisorBuffers, ctx.kicker);
}

/** Run `op` back to back, at least once, for about `ms` real milliseconds. */
async function timed(ms: number, op: (i: number) => Promise<void>): Promise<Rate> {
  const start = performance.now();
  let ops = 0;
  let now = start;
  do {
    await op(ops);
    ops++;
    now = performance.now();
  } while (now - start < ms);
  return { ops, elapsedMs: now - start };
}

export function bootDom0(ctx: DomainContext): DomainProgram {
  const { env } = ctx;
  const cfg = ctx.config as StoreDom0Config;
  const hv = attachHypervisor(ctx);
  const events = new GuestEvents(hv.hypercalls(0));
  events.attach(env);
  let channels: XenstoredStoreChannels | undefined;
  const daemon = new XenstoreDaemon({
    logger: (line) => env.trace.log('xenstored', line),
    onIntroduce: (domid, gfn, port) => channels!.introduce(domid, gfn, port),
    onRelease: (domid) => channels!.release(domid),
  });
  const rings = new XenstoredRingTransport(env, daemon);
  channels = new XenstoredStoreChannels(hv.hypercalls(0), events, rings, (line) =>
    env.trace.log('xenstored', line),
  );
  rings.start();

  // The toolstack's part of domain creation: the standard layout, then INTRODUCE.
  const admin = new XsClient(daemon.connect({ domid: 0, send: () => true, label: 'toolstack' }));
  createDom0Layout(admin);
  const acks = new Map<number, number>();
  const ackQueue = env.waitQueue('guest acknowledgements');
  for (const g of cfg.guests) {
    createDomainLayout(admin, { domid: g.domid, name: `guest${g.domid}` });
    daemon.introduceDomain(g.domid, BigInt(g.storeMfn), g.storeEvtchn);
    acks.set(g.domid, 0);
    const local = events.bindInterdomain(g.domid, g.ackEvtchn, () => {
      acks.set(g.domid, acks.get(g.domid)! + 1);
      ackQueue.wakeAll();
    });
    if (local <= 0) throw new Error(`dom0: binding the ack channel of dom${g.domid} failed (${local})`);
  }
  // dom0 user space (xenstore-write) reaches xenstored through its socket: the direct transport.
  const client = new XenbusClient(env, new DirectTransport(daemon, { domid: 0, privileged: true }));

  return {
    /** Write the guest's watched node and wait for its acknowledgement, over and over. */
    async watchRoundTrips(domid: number, ms: number): Promise<Rate> {
      const path = `/local/domain/${domid}/data/fire`;
      const base = acks.get(domid)!;
      return timed(ms, async (i) => {
        await client.write(path, String(i));
        await env.wait(ackQueue, () => acks.get(domid)! > base + i, {
          what: `dom${domid} to see watch event ${i}`,
        });
      });
    },
    async storeDomains(): Promise<number[]> {
      return channels!.domains();
    },
  };
}

export function bootGuest(ctx: DomainContext): DomainProgram {
  const { env } = ctx;
  const cfg = ctx.config as StoreGuestConfig;
  const hc = attachHypervisor(ctx).hypercalls(cfg.domid);
  const events = new GuestEvents(hc);
  events.attach(env);
  // xenbus_init for a PV guest: the ring is start_info.store_mfn, the channel start_info.store_evtchn.
  const ring = new XsRingClientTransport(env, {
    page: hc.page(cfg.storeMfn),
    notify: () => events.notify(cfg.storeEvtchn),
    server: ctx.holders.ref('dom0/xenstored'),
  });
  events.bind(cfg.storeEvtchn, () => ring.onEvent());
  events.bind(cfg.ackEvtchn, () => {});
  const xenwatch = new Xenwatch(env);
  xenwatch.start();
  const client = new XenbusClient(env, ring, { xenwatch });

  return {
    async readValue(path: string): Promise<Uint8Array> {
      return client.readBytes(path);
    },
    async writeValue(path: string, value: Uint8Array): Promise<void> {
      await client.write(path, value);
    },
    async reads(ms: number): Promise<Rate> {
      await client.write('data/k', 'v'.repeat(64));
      return timed(ms, async () => {
        await client.read('data/k');
      });
    },
    async writes(ms: number): Promise<Rate> {
      return timed(ms, async (i) => {
        await client.write('data/k', String(i));
      });
    },
    /** Watch data/fire; every event after the registration one is acknowledged to dom0. */
    async armWatch(): Promise<void> {
      const q = env.waitQueue('registration event');
      let registered = false;
      await client.watch('data/fire', () => {
        if (registered) {
          events.notify(cfg.ackEvtchn);
          return;
        }
        registered = true;
        q.wakeAll();
      });
      await env.wait(q, () => registered, { what: 'the watch registration event' });
    },
  };
}
