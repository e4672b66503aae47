/**
 * One client of the daemon: a guest's ring, a dom0 socket, or an in-process caller. It turns bytes into
 * requests (with the incremental frame parser), queues replies and watch events in order, and applies
 * C xenstored's flow control: an unprivileged connection with `outstanding` undelivered replies is not
 * read from until its transport drains (domain_can_read: ACC_OUTST).
 */
import {
  encodeMessage,
  encodeWatchEvent,
  errorNameOf,
  isXsErrorName,
  utf8Bytes,
  type XsErrorName,
  XsFrameParser,
  type XsMessage,
  XsProtocolError,
  XsType,
} from '../../drivers/xenbus/xs-wire.js';
import type { XsTransaction } from './transaction.js';
import type { XsWatch } from './watch.js';

export interface ConnectOptions {
  domid: number;
  /** dom0 is always privileged; others only when the toolstack runs there (priv_domid). */
  privileged?: boolean;
  /**
   * Deliver one whole message (header + payload). Return false when the transport cannot take it now;
   * the message stays queued until `outputReady()` is called.
   */
  send: (msg: Uint8Array) => boolean | undefined;
  label?: string;
  /** Called once when the daemon drops the connection (protocol error, release, disconnect). */
  onClose?: (reason: string) => void;
}

export interface XsReply {
  type: number;
  reqId: number;
  txId: number;
  payload: Uint8Array;
  /** Set when type is ERROR: the errno name. */
  error?: XsErrorName;
}

/** A watch event as the daemon makes it: path and token as byte strings (one char per byte). */
export interface XsWatchEventOut {
  path: string;
  token: string;
}

/** What a connection needs from the daemon. */
export interface ConnectionHost {
  /** The reply, and the watch events to queue after it (WATCH fires once at registration). */
  process(conn: XenstoreConnection, msg: XsMessage): { reply: XsMessage; after: readonly XsWatchEventOut[] };
  dropConnection(conn: XenstoreConnection, reason: string): void;
  outstandingLimit(conn: XenstoreConnection): number | undefined;
}

interface Queued {
  bytes: Uint8Array;
  /** A watch event's path and token, for coalescing identical pending events (core.c send_event). */
  path?: string;
  token?: string;
}

export class XenstoreConnection {
  readonly domid: number;
  readonly privileged: boolean;
  readonly label: string;
  readonly watches: XsWatch[] = [];
  readonly transactions = new Map<number, XsTransaction>();
  /** Watch events not sent because path + token exceed XENSTORE_PAYLOAD_MAX. */
  droppedEvents = 0;
  /** Next transaction id to try; ids start at 1 and never use 0. */
  nextTransactionId = 1;
  private readonly parser = new XsFrameParser();
  private readonly input: XsMessage[] = [];
  private readonly output: Queued[] = [];
  /** Replies (not events) in `output`. */
  private queuedReplies = 0;
  private blocked = false;
  private pumping = false;
  private closedReason: string | undefined;

  constructor(
    private readonly host: ConnectionHost,
    readonly id: number,
    private readonly options: ConnectOptions,
  ) {
    this.domid = options.domid;
    this.privileged = options.domid === 0 || options.privileged === true;
    this.label = options.label ?? `dom${options.domid}#${id}`;
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  get closeReason(): string | undefined {
    return this.closedReason;
  }

  /** Replies queued but not yet taken by the transport. */
  get outstanding(): number {
    return this.queuedReplies;
  }

  /** Messages (replies and events) waiting for the transport. */
  get queuedMessages(): number {
    return this.output.length;
  }

  /** Requests received but not processed yet (flow control holds them). */
  get pendingRequests(): number {
    return this.input.length;
  }

  /** Feed raw bytes from the transport: partial messages and several messages at once are fine. */
  receive(bytes: Uint8Array): void {
    if (this.closed) return;
    let messages: XsMessage[];
    try {
      messages = this.parser.push(bytes);
    } catch (e) {
      if (!(e instanceof XsProtocolError)) throw e;
      // core.c handle_input: len > XENSTORE_PAYLOAD_MAX -> ignore_connection(XENSTORE_ERROR_PROTO);
      // a socket connection is freed (closed), nothing is replied.
      this.host.dropConnection(this, `protocol error: message of ${e.header.len} bytes exceeds 4096`);
      return;
    }
    this.input.push(...messages);
    this.pump();
  }

  /** Direct typed API: process one request now and return its reply (events still go to `send`). */
  request(type: number, payload: Uint8Array | string = new Uint8Array(0), txId = 0, reqId = 0): XsReply {
    if (this.closed) throw new Error(`xenstore connection ${this.label} is closed (${this.closedReason})`);
    const body = typeof payload === 'string' ? utf8Bytes(payload) : payload;
    const { reply, after } = this.host.process(this, { type, reqId, txId, payload: body });
    for (const ev of after) this.queueEvent(ev.path, ev.token);
    this.flush();
    return decodeReply(reply);
  }

  /** The transport can take messages again after refusing one. */
  outputReady(): void {
    this.blocked = false;
    this.flush();
    this.pump();
  }

  /**
   * Queue a watch event; an identical one still pending is not queued twice (special paths excepted).
   * `path` and `token` are byte strings (one char per byte, as the daemon read them): they go back out
   * byte for byte.
   */
  queueEvent(path: string, token: string): void {
    if (this.closed) return;
    const bytes = encodeWatchEvent(path, token);
    // watch.c add_event(): "Don't try to send over-long events."
    if (bytes === undefined) {
      this.droppedEvents++;
      return;
    }
    if (this.output.length > 0 && !path.startsWith('@')) {
      for (const q of this.output) if (q.path === path && q.token === token) return;
    }
    this.output.push({ bytes, path, token });
    this.flush();
  }

  /** Called by the daemon only. */
  markClosed(reason: string): void {
    if (this.closed) return;
    this.closedReason = reason;
    this.input.length = 0;
    this.output.length = 0;
    this.queuedReplies = 0;
    this.watches.length = 0;
    this.transactions.clear();
    this.options.onClose?.(reason);
  }

  private enqueueReply(m: XsMessage): void {
    this.output.push({ bytes: encodeMessage(m) });
    this.queuedReplies++;
  }

  private flush(): void {
    while (!this.blocked && this.output.length > 0 && !this.closed) {
      const accepted = this.options.send(this.output[0].bytes);
      if (accepted === false) {
        this.blocked = true;
        return;
      }
      if (this.output.shift()!.path === undefined) this.queuedReplies--;
    }
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.input.length > 0 && !this.closed) {
        const limit = this.host.outstandingLimit(this);
        if (limit !== undefined && this.outstanding >= limit) break;
        const msg = this.input.shift()!;
        const { reply, after } = this.host.process(this, msg);
        if (this.closed) break;
        this.enqueueReply(reply);
        for (const ev of after) this.queueEvent(ev.path, ev.token);
        this.flush();
      }
    } finally {
      this.pumping = false;
    }
  }
}

export function decodeReply(m: XsMessage): XsReply {
  const r: XsReply = { type: m.type, reqId: m.reqId, txId: m.txId, payload: m.payload };
  if (m.type === XsType.ERROR) {
    const name = errorNameOf(m.payload);
    if (isXsErrorName(name)) r.error = name;
  }
  return r;
}
