/**
 * The daemon side of the per-domain xenstore rings (C xenstored's xenstored_domain.c readchn/writechn
 * and the main loop's handling of domain connections). One daemon task in dom0 serves every introduced
 * domain: each time an event channel fires it drains each domain's request ring into that domain's
 * daemon connection and writes replies and watch events into its response ring, waiting (a declared
 * wait woken by the event channel) while a response ring is full. Nothing polls.
 *
 * Flow control: the daemon connection's `send` is refused while this transport still holds an unwritten
 * message for the domain, and `outputReady()` is called once it is written, so the daemon's queue (and
 * its per-domain outstanding-request limit) sees the ring's backpressure. Requests are not read from a
 * domain whose connection is still holding unprocessed ones (domain_can_read).
 */
import {
  REQ_RING,
  RSP_RING,
  XENSTORE_CONNECTED,
  XENSTORE_ERROR_COMM,
  XENSTORE_ERROR_NONE,
  XENSTORE_ERROR_PROTO,
  XENSTORE_ERROR_RINGIDX,
  XENSTORE_SERVER_FEATURE_ERROR,
  XsRingIndexError,
  XsRingOffset,
  XsRingPage,
} from '../../drivers/xenbus/xs-ring-page.js';
import type { Env, Task, WaitQueue } from '../runtime/engine.js';

/** What the daemon core offers a transport (structural: the core's connect() and its connection). */
export interface RingDaemon {
  connect(options: {
    domid: number;
    privileged?: boolean;
    send: (msg: Uint8Array) => boolean | undefined;
    label?: string;
    onClose?: (reason: string) => void;
  }): RingDaemonConnection;
}

export interface RingDaemonConnection {
  receive(bytes: Uint8Array): void;
  outputReady(): void;
  /** Requests received and held back by the daemon's flow control, if it reports them. */
  readonly pendingRequests?: number;
  readonly closed?: boolean;
}

export interface IntroducedDomain {
  domid: number;
  /** dom0's mapping of the domain's xenstore interface page. */
  page: Uint8Array;
  /** EVTCHNOP_send on dom0's port bound to the domain's xenstore event channel. */
  notify: () => void;
  /** Dom0's own ring, or a domain given the toolstack role (priv_domid). */
  privileged?: boolean;
}

interface DomainRing {
  readonly domid: number;
  readonly page: XsRingPage;
  readonly notify: () => void;
  conn: RingDaemonConnection | undefined;
  /** The message being written into the response ring, and how much of it is already there. */
  out: Uint8Array | undefined;
  outOff: number;
  /** We refused a message from the daemon; tell it when we can take one again. */
  refused: boolean;
  /** Served no more: corrupt indices, protocol error, or removed. */
  dead: boolean;
}

export interface RingTransportOptions {
  /** Task name; default "xenstored". */
  name?: string;
}

export class XenstoredRingTransport {
  readonly name: string;
  private readonly rings = new Map<number, DomainRing>();
  private readonly queue: WaitQueue;
  private taskRef: Task | undefined;

  constructor(
    private readonly env: Env,
    private readonly daemon: RingDaemon,
    options: RingTransportOptions = {},
  ) {
    this.name = options.name ?? 'xenstored';
    this.queue = env.waitQueue(`${this.name} rings`);
  }

  /** The serving task (after start()); name it as the holder in clients' waits. */
  get task(): Task | undefined {
    return this.taskRef;
  }

  start(): Task {
    if (this.taskRef) throw new Error(`${this.name}: ring transport already started`);
    this.taskRef = this.env.spawn(this.name, () => this.loop(), { daemon: true, component: 'xenstored' });
    return this.taskRef;
  }

  /** An event channel of some introduced domain fired (call from dom0's event-channel dispatch). */
  onEvent(): void {
    this.queue.wakeAll();
  }

  /**
   * Start serving a domain's ring (after INTRODUCE, or dom0's own at boot): publish the server
   * features, mark the ring connected, and connect to the daemon core as that domain.
   */
  addDomain(d: IntroducedDomain): void {
    if (!Number.isInteger(d.domid) || d.domid < 0)
      throw new RangeError(`xenstore ring: domid ${d.domid} is invalid`);
    const old = this.rings.get(d.domid);
    if (old && !old.dead) throw new Error(`xenstore ring: dom${d.domid} is already served`);
    const ring: DomainRing = {
      domid: d.domid,
      page: new XsRingPage(d.page),
      notify: d.notify,
      conn: undefined,
      out: undefined,
      outOff: 0,
      refused: false,
      dead: false,
    };
    // Only the error field is advertised: reconnection (XS_RESET) is not modelled.
    ring.page.store(XsRingOffset.SERVER_FEATURES, XENSTORE_SERVER_FEATURE_ERROR);
    ring.page.store(XsRingOffset.CONNECTION, XENSTORE_CONNECTED);
    ring.page.store(XsRingOffset.ERROR, XENSTORE_ERROR_NONE);
    this.rings.set(d.domid, ring);
    ring.conn = this.daemon.connect({
      domid: d.domid,
      privileged: d.privileged === true,
      label: `dom${d.domid} ring`,
      send: (msg) => this.accept(ring, msg),
      onClose: (reason) => this.closed(ring, reason),
    });
    // Requests may already be waiting (the guest wrote before it was introduced).
    this.queue.wakeAll();
  }

  /** Stop serving a domain (RELEASE, or the domain is gone). Its daemon connection is the core's to close. */
  removeDomain(domid: number): void {
    const ring = this.rings.get(domid);
    if (!ring) return;
    ring.dead = true;
    this.rings.delete(domid);
  }

  /** Domains served now. */
  domains(): number[] {
    return [...this.rings.keys()];
  }

  private accept(ring: DomainRing, msg: Uint8Array): boolean {
    if (ring.dead) return true; // dropped: nobody reads this ring any more
    if (ring.out) {
      ring.refused = true;
      return false;
    }
    ring.out = msg;
    ring.outOff = 0;
    this.writeOut(ring);
    return true;
  }

  private closed(ring: DomainRing, reason: string): void {
    if (ring.dead) return;
    // RELEASE (the daemon says "domain N released"): the domain is going; nothing to report to it.
    if (/released/.test(reason)) {
      ring.dead = true;
      ring.out = undefined;
      if (this.rings.get(ring.domid) === ring) this.rings.delete(ring.domid);
      return;
    }
    // ignore_connection(): tell the guest why, through the error field.
    const err = /protocol/i.test(reason) ? XENSTORE_ERROR_PROTO : XENSTORE_ERROR_COMM;
    this.kill(ring, err, reason);
  }

  private kill(ring: DomainRing, err: number, reason: string): void {
    ring.dead = true;
    ring.out = undefined;
    try {
      ring.page.store(XsRingOffset.ERROR, err);
      ring.notify();
    } catch {
      // The page is gone with the domain; nothing to tell.
    }
    this.env.trace.log('xenstored', `dom${ring.domid}: ring connection ignored: ${reason}`);
  }

  /** Write as much of the pending message as fits; signal after each update (xenstore-ring.txt). */
  private writeOut(ring: DomainRing): void {
    while (ring.out && !ring.dead) {
      const n = ring.page.produce(RSP_RING, ring.out.subarray(ring.outOff));
      if (n === 0) return;
      ring.outOff += n;
      ring.notify();
      if (ring.outOff === ring.out.length) {
        ring.out = undefined;
        ring.outOff = 0;
        if (ring.refused) {
          ring.refused = false;
          ring.conn?.outputReady(); // may call accept() again, re-entering this loop's state
        }
      }
    }
  }

  private canRead(ring: DomainRing): boolean {
    return ring.conn !== undefined && !ring.conn.closed && (ring.conn.pendingRequests ?? 0) === 0;
  }

  private hasWork(): boolean {
    for (const ring of this.rings.values()) {
      if (ring.dead) continue;
      try {
        if (ring.out && ring.page.free(RSP_RING) > 0) return true;
        if (this.canRead(ring) && ring.page.used(REQ_RING) > 0) return true;
      } catch (e) {
        if (e instanceof XsRingIndexError) return true; // service() reports it
        throw e;
      }
    }
    return false;
  }

  private async loop(): Promise<void> {
    for (;;) {
      await this.env.wait(this.queue, () => this.hasWork(), {
        what: 'xenstore requests or response-ring room',
      });
      for (const ring of [...this.rings.values()]) this.service(ring);
    }
  }

  private service(ring: DomainRing): void {
    if (ring.dead) return;
    try {
      this.writeOut(ring);
      // Read only while the daemon is not holding requests back (its flow control).
      while (!ring.dead && this.canRead(ring) && ring.page.used(REQ_RING) > 0) {
        const bytes = ring.page.consume(REQ_RING);
        ring.notify();
        ring.conn!.receive(bytes);
        this.writeOut(ring);
      }
    } catch (e) {
      if (!(e instanceof XsRingIndexError)) throw e;
      this.kill(ring, XENSTORE_ERROR_RINGIDX, e.message);
    }
  }
}
