/**
 * How a xenbus client reaches xenstored. Two kinds exist: the shared ring page of a domain's kernel
 * (xs-ring.ts) and a direct in-process connection for dom0 user space (direct-transport.ts), which in
 * real Xen is the /var/run/xenstored/socket Unix socket.
 */
import type { Holder } from '../../emulator/runtime/engine.js';
import type { XsMessage } from './xs-wire.js';

export interface XsTransport {
  /** For logs and wait descriptions, e.g. "xenstore ring of dom3". */
  readonly label: string;
  /**
   * Start delivering complete incoming messages (replies and watch events) to `sink`. `onFailure` is
   * called once if the transport breaks (corrupt ring indices, an oversized message); no message is
   * delivered after it. Called once, by the client.
   */
  attach(sink: (msg: XsMessage) => void, onFailure: (err: Error) => void): void;
  /**
   * Send one complete message (header and payload). May block (a declared wait) while the ring is full.
   * The caller serialises sends so messages never interleave.
   */
  send(message: Uint8Array): Promise<void>;
  /** Who must act for a reply to come: the xenstored task, when known. */
  servers(): readonly Holder[];
}
