/**
 * A direct in-process connection to the xenstore daemon, for dom0 user space (the toolstack, hotplug
 * scripts, tap-ctl helpers). It stands in for the Unix socket /var/run/xenstored/socket: the same wire
 * messages, no shared ring.
 */
import type { Holder } from '../../emulator/runtime/engine.js';
import { stateError } from './errors.js';
import type { XsTransport } from './transport.js';
import { XsFrameParser, type XsMessage } from './xs-wire.js';

/** What the daemon core offers (structural, so drivers do not import emulator/xenstored). */
export interface XsDaemonConnector {
  /**
   * The client went away (its socket closed): xenstored frees the connection with its watches and
   * transactions (core.c destroy_conn). `onClose` of that connection is not expected to matter then.
   */
  disconnect(conn: XsDaemonConnection, reason?: string): void;
  connect(options: {
    domid: number;
    privileged: boolean;
    /** Return false to refuse a message for now (never done here: the client takes every message). */
    send: (bytes: Uint8Array) => boolean | undefined;
    label?: string;
    onClose?: (reason: string) => void;
  }): XsDaemonConnection;
}

export interface XsDaemonConnection {
  receive(bytes: Uint8Array): void;
}

export interface DirectTransportOptions {
  domid: number;
  privileged: boolean;
  /** The holder named in waits for replies (the daemon answers synchronously, so they rarely block). */
  server?: Holder;
  label?: string;
}

const SENT: Promise<void> = Promise.resolve();

export class DirectTransport implements XsTransport {
  readonly label: string;
  private conn: XsDaemonConnection | undefined;
  private readonly framer = new XsFrameParser();
  private sink: ((msg: XsMessage) => void) | undefined;
  private onFailure: ((err: Error) => void) | undefined;
  private failed: Error | undefined;
  private closedFlag = false;
  /** Messages the daemon sent before attach() (none in practice; kept so nothing is lost). */
  private early: XsMessage[] = [];

  constructor(
    private readonly daemon: XsDaemonConnector,
    private readonly options: DirectTransportOptions,
  ) {
    this.label = options.label ?? `xenstored socket (dom${options.domid})`;
  }

  attach(sink: (msg: XsMessage) => void, onFailure: (err: Error) => void): void {
    if (this.sink) throw new Error(`${this.label}: attach() called twice`);
    this.sink = sink;
    this.onFailure = onFailure;
    if (this.failed) {
      onFailure(this.failed);
      return;
    }
    this.conn = this.daemon.connect({
      domid: this.options.domid,
      privileged: this.options.privileged,
      label: this.label,
      send: (bytes) => {
        this.fromDaemon(bytes);
        return true;
      },
      onClose: (reason) => {
        // After close() the transport has failed already; xenstored's own close then changes nothing.
        if (!this.failed) this.fail(stateError(`${this.label} closed by xenstored: ${reason}`));
      },
    });
    const early = this.early;
    this.early = [];
    for (const m of early) sink(m);
  }

  send(message: Uint8Array): Promise<void> {
    // Not async: the daemon takes the message at once, so a settled promise is all a caller awaits.
    if (this.failed) return Promise.reject(this.failed);
    if (!this.conn) return Promise.reject(new Error(`${this.label}: send() before attach()`));
    try {
      this.conn.receive(message);
    } catch (e) {
      return Promise.reject(e);
    }
    return SENT;
  }

  /**
   * close() of the socket: xenstored drops the connection, its watches and its transactions. Requests
   * still waiting for a reply fail (the client sees the transport broken). Idempotent; closing before
   * attach() only prevents the connection.
   */
  close(reason = 'client closed the socket'): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.fail(stateError(`${this.label}: closed (${reason})`));
    const conn = this.conn;
    this.conn = undefined;
    if (conn) this.daemon.disconnect(conn, reason);
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.closedFlag;
  }

  servers(): readonly Holder[] {
    return this.options.server ? [this.options.server] : [];
  }

  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = e;
    this.onFailure?.(e);
  }

  private fromDaemon(bytes: Uint8Array): void {
    if (this.failed) return;
    let msgs: XsMessage[];
    try {
      msgs = this.framer.push(bytes);
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    for (const m of msgs) {
      if (this.sink) this.sink(m);
      else this.early.push(m);
    }
  }
}
