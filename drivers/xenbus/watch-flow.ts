/**
 * Trace flow ids for xenstore watch events (trace instrumentation, nothing in Xen). xenstored emits
 * `watch-fire` when a connection's transport takes a WATCH_EVENT, and the watcher's xenwatch emits
 * `watch-callback` for it; both must name the same flow without changing the wire payload (epath NUL
 * token NUL, byte-exact). So each side counts: the daemon the WATCH_EVENTs a connection's transport
 * accepted, the client the WATCH_EVENTs its transport delivered. That is sound because both transports
 * are in order and lossless: the ring carries every message the daemon wrote, in order, and the direct
 * (socket) transport hands each message to the client synchronously; nothing sits between the two
 * counters that could drop or reorder an event. Coalesced or oversized events are never accepted by
 * the transport, so neither side counts them.
 *
 * The flow id is key * 2^32 + n, n the 1-based count. The key says which stream was counted:
 * - a domain's xenstore ring (the only way a guest kernel talks to xenstored): key = domid. The daemon
 *   counts per domid across reconnections (a re-introduced ring continues the guest's stream) and starts
 *   again when the domain is released; the guest counts on its one ring client.
 * - a direct connection (dom0 user space, standing in for the Unix socket): key = 65536 + stream, where
 *   the daemon hands out the stream number when the client's transport connects. The client learns it
 *   through a handshake: XenbusClient wraps transport.attach() in `attachWithWatchStream`, and the
 *   daemon's connect() claims it (`claimWatchStream`); a direct transport connects inside attach(),
 *   synchronously, in the same thread, so the claim always meets its own client. A ring transport does
 *   not connect in attach(), so its client keeps stream 0 (the domain key).
 * Ids repeat only after 2^32 events on one stream or when a domid is reused after release.
 */

/** Keys below this are domids (ring streams); direct streams are numbered from here. */
export const WATCH_FLOW_STREAM_BASE = 65536;
/** Keys stay below 2^21 so that key * 2^32 + n is a safe integer. */
const MAX_KEY = 2 ** 21;
const MAX_STREAM = MAX_KEY - WATCH_FLOW_STREAM_BASE - 1;
const COUNT_SPAN = 2 ** 32;

/** The flow id of the n-th (1-based) WATCH_EVENT on the stream with `key`. */
export function watchFlowId(key: number, n: number): number {
  return key * COUNT_SPAN + (n % COUNT_SPAN);
}

/** The key of a stream: a domain's ring (stream 0) or a direct connection's stream number. */
export function watchFlowKey(domid: number, stream: number): number {
  return stream === 0 ? domid : WATCH_FLOW_STREAM_BASE + stream;
}

interface Handshake {
  stream: number;
}

let attaching: Handshake | undefined;

/**
 * Client side: run `attach` (a transport's attach()) and return the stream number a daemon connect()
 * made inside it claimed, or 0 when none did (a ring transport).
 */
export function attachWithWatchStream(attach: () => void): number {
  const outer = attaching;
  const h: Handshake = { stream: 0 };
  attaching = h;
  try {
    attach();
  } finally {
    attaching = outer;
  }
  return h.stream;
}

/**
 * Daemon side, in connect(): when a client is attaching in this thread right now, give its connection
 * a stream number derived from the daemon's connection serial and return it; otherwise 0 (a ring, or
 * a caller that is not a XenbusClient).
 */
export function claimWatchStream(connectionSerial: number): number {
  if (attaching === undefined || attaching.stream !== 0) return 0;
  attaching.stream = 1 + (Math.abs(Math.trunc(connectionSerial)) % MAX_STREAM);
  return attaching.stream;
}
