/**
 * xenstored's end of each domain's store channel (tools/xenstored/domain.c): on INTRODUCE it maps the
 * domain's xenstore interface page through the grant the domain builder seeded
 * (GNTTAB_RESERVED_XENSTORE), binds the domain's store event channel (xenevtchn_bind_interdomain) with
 * a handler that wakes the ring transport, and hands both to the transport; on RELEASE it undoes all
 * three. A second INTRODUCE of the same page only rebinds the event channel, as C's do_introduce does.
 *
 * Call introduce/release from the daemon's onIntroduce/onRelease options.
 * Simplification: dom0's hypercalls and event channels stand in for the gntdev and evtchn devices.
 */

import type { GuestEvents } from '../../drivers/events.js';
import { XS_ERRNO, type XsErrorName } from '../../drivers/xenbus/xs-wire.js';
import type { Hypercalls } from '../../hypervisor/hypercall.js';
import { GNTST_okay, GNTTAB_RESERVED_XENSTORE } from '../../hypervisor/layout.js';
import { XsError } from './errors.js';
import type { XenstoredRingTransport } from './ring-transport.js';

export type StoreChannelHypercalls = Pick<Hypercalls, 'mapGrant' | 'unmapGrant'>;
export type StoreChannelEvents = Pick<GuestEvents, 'bindInterdomain' | 'close' | 'notify'>;

interface Channel {
  readonly domid: number;
  readonly gfn: bigint;
  readonly handle: number;
  /** Our local port bound to the domain's store port; changes when the domain is re-introduced. */
  localPort: number;
  remotePort: number;
}

export class XenstoredStoreChannels {
  private readonly channels = new Map<number, Channel>();

  constructor(
    private readonly hc: StoreChannelHypercalls,
    private readonly events: StoreChannelEvents,
    private readonly rings: XenstoredRingTransport,
    private readonly log: (line: string) => void = () => {},
  ) {}

  /** Local port bound to a domain's store channel (for tests and traces). */
  localPort(domid: number): number | undefined {
    return this.channels.get(domid)?.localPort;
  }

  /** Domains whose store channel is set up. */
  domains(): number[] {
    return [...this.channels.keys()];
  }

  introduce(domid: number, gfn: bigint, port: number): void {
    const old = this.channels.get(domid);
    if (old) {
      // do_introduce of a known domain: the same page rebinds the event channel; another page is EINVAL.
      if (old.gfn !== gfn) {
        throw new XsError('EINVAL', `domain ${domid} is introduced with page ${old.gfn}, not ${gfn}`);
      }
      this.events.close(old.localPort);
      old.localPort = this.bind(domid, port);
      old.remotePort = port;
      this.log(`dom${domid}: store event channel rebound to its port ${port}`);
      return;
    }
    const m = this.hc.mapGrant(domid, GNTTAB_RESERVED_XENSTORE);
    if (m.status !== GNTST_okay || !(m.page instanceof Uint8Array)) {
      throw new XsError(
        'EINVAL',
        `cannot map the xenstore page of domain ${domid} (grant ref ${GNTTAB_RESERVED_XENSTORE}, GNTST ${m.status})`,
      );
    }
    let localPort: number;
    try {
      localPort = this.bind(domid, port);
    } catch (e) {
      this.hc.unmapGrant(m.handle);
      throw e;
    }
    const ch: Channel = { domid, gfn, handle: m.handle, localPort, remotePort: port };
    this.channels.set(domid, ch);
    this.rings.addDomain({ domid, page: m.page, notify: () => this.events.notify(ch.localPort) });
  }

  release(domid: number): void {
    const ch = this.channels.get(domid);
    if (!ch) return;
    this.channels.delete(domid);
    this.rings.removeDomain(domid);
    this.events.close(ch.localPort);
    const rc = this.hc.unmapGrant(ch.handle);
    if (rc !== GNTST_okay) this.log(`dom${domid}: unmapping its xenstore page failed (GNTST ${rc})`);
  }

  private bind(domid: number, port: number): number {
    const local = this.events.bindInterdomain(domid, port, () => this.rings.onEvent());
    if (local <= 0) {
      const name = (Object.keys(XS_ERRNO) as XsErrorName[]).find((n) => XS_ERRNO[n] === -local) ?? 'EINVAL';
      throw new XsError(name, `cannot bind event channel ${port} of domain ${domid} (rc ${local})`);
    }
    return local;
  }
}
