/**
 * The xenbus client: xenstore requests as a Linux kernel makes them (drivers/xen/xenbus/xenbus_xs.c),
 * over any transport. Each request gets a fresh req_id and blocks its task with a declared wait until
 * the reply with that req_id arrives; replies may come in any order. XS_ERROR replies become
 * XenstoreError carrying the wire name. Watch events are handed to the domain's xenwatch, each with
 * the trace flow id of its watch-fire in xenstored (the count of WATCH_EVENTs on this stream,
 * watch-flow.ts).
 */
import type { Env, Holder, Mutex, WaitQueue } from '../../emulator/runtime/engine.js';
import { isXenstoreError, XenstoreError } from './errors.js';
import type { XsTransport } from './transport.js';
import { attachWithWatchStream, watchFlowId, watchFlowKey } from './watch-flow.js';
import { type WatchCallback, type WatchOptions, XenbusWatch, type Xenwatch } from './xenwatch.js';
import {
  encodeMessage,
  errorNameOf,
  latin1String,
  nulStrings,
  splitReplyStrings,
  utf8String,
  writePayload,
  XBT_NIL,
  type XsMessage,
  XsType,
  xsTypeName,
} from './xs-wire.js';

/** An open transaction (xenbus_transaction_t). */
export interface XsTransaction {
  readonly id: number;
}

export interface XenbusClientOptions {
  /** The domain's xenwatch; required for watch(). */
  xenwatch?: Xenwatch;
  /** Component name in traces. */
  component?: string;
}

interface PendingRequest {
  readonly reqId: number;
  readonly type: number;
  reply: XsMessage | undefined;
}

export class XenbusClient {
  private nextReqId = 1;
  private nextToken = 1;
  /**
   * Requests awaiting their reply, in no order: rarely more than a few, so a scan beats a Map, whose
   * table was rebuilt as requests came and went.
   */
  private readonly pending: PendingRequest[] = [];
  /** The holders of a reply wait (made once, not per request). */
  private readonly replyServers = (): readonly Holder[] => this.transport.servers();
  private readonly watches = new Map<string, XenbusWatch>();
  private readonly replies: WaitQueue;
  /** Serialises writes into the transport so messages never interleave (xb_write_mutex). */
  private readonly writeLock: Mutex;
  private broken: Error | undefined;
  private readonly comp: string;
  /** Watch events that named no registered token (unwatched meanwhile). */
  droppedWatchEvents = 0;
  /** WATCH_EVENTs the transport delivered, malformed or unwatched ones included (the daemon counts them). */
  private watchEventsReceived = 0;
  /** This stream's flow key: the domain's ring, or the direct stream xenstored numbered at attach. */
  private readonly watchFlowKey: number;

  constructor(
    private readonly env: Env,
    readonly transport: XsTransport,
    private readonly options: XenbusClientOptions = {},
  ) {
    this.comp = options.component ?? 'xenbus';
    this.replies = env.waitQueue('xenstore replies');
    this.writeLock = env.mutex('xenstore request write');
    const stream = attachWithWatchStream(() =>
      transport.attach(
        (m) => this.onMessage(m),
        (e) => this.onFailure(e),
      ),
    );
    this.watchFlowKey = watchFlowKey(env.domid, stream);
  }

  get xenwatch(): Xenwatch | undefined {
    return this.options.xenwatch;
  }

  // ---- plain requests --------------------------------------------------------------------------

  /** READ: the value as a string (UTF-8). ENOENT etc. are thrown. */
  async read(path: string, tx?: XsTransaction): Promise<string> {
    const r = await this.exchange(XsType.READ, nulStrings(path), tx, path);
    return utf8String(this.checkReply(r, XsType.READ, path).payload);
  }

  async readBytes(path: string, tx?: XsTransaction): Promise<Uint8Array> {
    const r = await this.exchange(XsType.READ, nulStrings(path), tx, path);
    return this.checkReply(r, XsType.READ, path).payload;
  }

  /** READ, or undefined when the node does not exist. */
  async tryRead(path: string, tx?: XsTransaction): Promise<string | undefined> {
    // ENOENT is an answer here, not a failure: no XenstoreError (and its stack) is made for it.
    const r = await this.exchange(XsType.READ, nulStrings(path), tx, path);
    if (r.type === XsType.ERROR && errorNameOf(r.payload) === 'ENOENT') return undefined;
    return utf8String(this.checkReply(r, XsType.READ, path).payload);
  }

  async write(path: string, value: string | Uint8Array, tx?: XsTransaction): Promise<void> {
    this.checkReply(
      await this.exchange(XsType.WRITE, writePayload(path, value), tx, path),
      XsType.WRITE,
      path,
    );
  }

  async mkdir(path: string, tx?: XsTransaction): Promise<void> {
    this.checkReply(await this.exchange(XsType.MKDIR, nulStrings(path), tx, path), XsType.MKDIR, path);
  }

  async rm(path: string, tx?: XsTransaction): Promise<void> {
    this.checkReply(await this.exchange(XsType.RM, nulStrings(path), tx, path), XsType.RM, path);
  }

  /** DIRECTORY: child names. */
  async directory(path: string, tx?: XsTransaction): Promise<string[]> {
    const r = await this.exchange(XsType.DIRECTORY, nulStrings(path), tx, path);
    return splitReplyStrings(this.checkReply(r, XsType.DIRECTORY, path).payload);
  }

  /** DIRECTORY, or undefined when the node does not exist (libxl__xs_directory). */
  async tryDirectory(path: string, tx?: XsTransaction): Promise<string[] | undefined> {
    const r = await this.exchange(XsType.DIRECTORY, nulStrings(path), tx, path);
    if (r.type === XsType.ERROR && errorNameOf(r.payload) === 'ENOENT') return undefined;
    return splitReplyStrings(this.checkReply(r, XsType.DIRECTORY, path).payload);
  }

  /** Linux xenbus_exists: true when DIRECTORY of the node succeeds (any failure is false). */
  async exists(path: string, tx?: XsTransaction): Promise<boolean> {
    let r: XsMessage;
    try {
      r = await this.exchange(XsType.DIRECTORY, nulStrings(path), tx, path);
    } catch (e) {
      if (e instanceof XenstoreError) return false;
      throw e;
    }
    return r.type === XsType.DIRECTORY;
  }

  /** RM, false when it failed with ENOENT (the parent is missing too); other failures throw. */
  async tryRm(path: string, tx?: XsTransaction): Promise<boolean> {
    const r = await this.exchange(XsType.RM, nulStrings(path), tx, path);
    if (r.type === XsType.ERROR && errorNameOf(r.payload) === 'ENOENT') return false;
    this.checkReply(r, XsType.RM, path);
    return true;
  }

  async getPerms(path: string, tx?: XsTransaction): Promise<string[]> {
    const r = await this.request(XsType.GET_PERMS, nulStrings(path), tx, path);
    return splitReplyStrings(r.payload);
  }

  /** SET_PERMS with permission strings such as "n0", "r3" (owner first). */
  async setPerms(path: string, perms: readonly string[], tx?: XsTransaction): Promise<void> {
    if (perms.length === 0)
      throw new RangeError(`xenstore SET_PERMS ${path}: perms must name at least the owner`);
    for (const p of perms) {
      if (!/^[nrwb][0-9]+$/.test(p)) {
        throw new RangeError(
          `xenstore SET_PERMS ${path}: permission ${JSON.stringify(p)} is not <n|r|w|b><domid>`,
        );
      }
    }
    await this.request(XsType.SET_PERMS, nulStrings(path, ...perms), tx, path);
  }

  async getDomainPath(domid: number): Promise<string> {
    const r = await this.request(XsType.GET_DOMAIN_PATH, nulStrings(String(domid)), undefined, undefined);
    return splitReplyStrings(r.payload)[0] ?? '';
  }

  /** INTRODUCE (dom0 only): tell xenstored about a domain's ring page and event channel. */
  async introduce(domid: number, gfn: number, evtchn: number): Promise<void> {
    await this.request(
      XsType.INTRODUCE,
      nulStrings(String(domid), String(gfn), String(evtchn)),
      undefined,
      undefined,
    );
  }

  async release(domid: number): Promise<void> {
    await this.request(XsType.RELEASE, nulStrings(String(domid)), undefined, undefined);
  }

  async isDomainIntroduced(domid: number): Promise<boolean> {
    const r = await this.request(
      XsType.IS_DOMAIN_INTRODUCED,
      nulStrings(String(domid)),
      undefined,
      undefined,
    );
    return splitReplyStrings(r.payload)[0] === 'T';
  }

  // ---- transactions ----------------------------------------------------------------------------

  async transactionStart(): Promise<XsTransaction> {
    const r = await this.request(XsType.TRANSACTION_START, nulStrings(''), undefined, undefined);
    const text = splitReplyStrings(r.payload)[0] ?? '';
    const id = Number(text);
    if (!/^[0-9]+$/.test(text) || id === 0 || id > 0xffffffff) {
      throw new XenstoreError(
        'EINVAL',
        'TRANSACTION_START',
        undefined,
        `daemon returned id ${JSON.stringify(text)}`,
      );
    }
    return { id };
  }

  /** Commit (abort=false) or abort. A commit that conflicted throws XenstoreError EAGAIN. */
  async transactionEnd(tx: XsTransaction, abort: boolean): Promise<void> {
    await this.request(XsType.TRANSACTION_END, nulStrings(abort ? 'F' : 'T'), tx, undefined);
  }

  /**
   * Run `fn` inside a transaction and commit; on EAGAIN redo the whole function from a new transaction
   * (the loop Linux drivers write around talk_to_blkback, connect, xenbus_switch_state). If `fn` throws,
   * the transaction is aborted and the error rethrown.
   */
  async withTransaction<T>(fn: (tx: XsTransaction) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const tx = await this.transactionStart();
      let result: T;
      try {
        result = await fn(tx);
      } catch (e) {
        try {
          await this.transactionEnd(tx, true);
        } catch {
          // The original error is the one worth reporting.
        }
        throw e;
      }
      try {
        await this.transactionEnd(tx, false);
        return result;
      } catch (e) {
        if (!isXenstoreError(e, 'EAGAIN')) throw e;
        this.env.trace.emit(this.comp, 'xs-transaction-retry', { tx: tx.id, attempt });
      }
    }
  }

  // ---- watches ---------------------------------------------------------------------------------

  /**
   * Register a watch (register_xenbus_watch). The callback runs in xenwatch, once at once (xenstored
   * fires every new watch) and then for each change at or below `node`.
   */
  async watch(node: string, callback: WatchCallback, options: WatchOptions = {}): Promise<XenbusWatch> {
    const w = new XenbusWatch(node, callback, options);
    await this.registerWatch(w);
    return w;
  }

  async registerWatch(w: XenbusWatch): Promise<void> {
    if (!this.options.xenwatch) throw new Error(`${this.transport.label}: watch(${w.node}) needs a xenwatch`);
    if (w.active) throw new Error(`watch on ${w.node} is already registered (token ${w.token})`);
    w.token = `${this.nextToken++}`.padStart(16, '0');
    w.nrPending = 0;
    w.active = true;
    // Listed before the WATCH request so the immediate event already finds it.
    this.watches.set(w.token, w);
    try {
      await this.request(XsType.WATCH, nulStrings(w.node, w.token), undefined, w.node);
    } catch (e) {
      this.watches.delete(w.token);
      w.active = false;
      throw e;
    }
  }

  /**
   * Unregister (unregister_xenbus_watch): UNWATCH, then wait for a running callback of this domain's
   * xenwatch to finish (unless called from xenwatch) and drop the watch's queued events.
   */
  async unwatch(w: XenbusWatch): Promise<void> {
    if (!this.watches.has(w.token)) throw new Error(`watch on ${w.node} is not registered`);
    this.watches.delete(w.token);
    w.active = false;
    try {
      await this.request(XsType.UNWATCH, nulStrings(w.node, w.token), undefined, w.node);
    } catch (e) {
      if (!(e instanceof XenstoreError)) throw e;
      this.env.trace.log(this.comp, `Failed to release watch ${w.node}: ${e.code}`);
    }
    await this.options.xenwatch!.cancel(w);
  }

  // ---- plumbing --------------------------------------------------------------------------------

  /** Send one request and wait for its reply (xs_talkv); an XS_ERROR reply is thrown as XenstoreError. */
  async request(
    type: number,
    payload: Uint8Array,
    tx: XsTransaction | undefined,
    path: string | undefined,
  ): Promise<XsMessage> {
    return this.checkReply(await this.exchange(type, payload, tx, path), type, path);
  }

  /** The reply of a request of `type`, or the XenstoreError an XS_ERROR or mistyped reply means. */
  private checkReply(reply: XsMessage, type: number, path: string | undefined): XsMessage {
    if (reply.type === type) return reply;
    const op = xsTypeName(type);
    if (reply.type === XsType.ERROR) throw XenstoreError.fromWire(errorNameOf(reply.payload), op, path);
    throw new XenstoreError('EINVAL', op, path, `reply has type ${xsTypeName(reply.type)}`);
  }

  /**
   * Send one request and wait for its reply, whatever its type (XS_ERROR included). Throws only when no
   * reply can come (E2BIG request, broken transport).
   */
  private async exchange(
    type: number,
    payload: Uint8Array,
    tx: XsTransaction | undefined,
    path: string | undefined,
  ): Promise<XsMessage> {
    if (this.broken) throw new XenstoreError('EIO', xsTypeName(type), path, this.broken.message);
    const reqId = this.nextReqId;
    this.nextReqId = (this.nextReqId + 1) >>> 0 || 1;
    const p: PendingRequest = { reqId, type, reply: undefined };
    this.pending.push(p);
    let message: Uint8Array;
    try {
      message = encodeMessage({ type, reqId, txId: tx?.id ?? XBT_NIL, payload });
    } catch (e) {
      this.forget(p);
      throw new XenstoreError('E2BIG', xsTypeName(type), path, (e as Error).message);
    }
    try {
      await this.writeLock.lock('the xenstore request ring');
      try {
        await this.transport.send(message);
      } finally {
        this.writeLock.unlock();
      }
      // A direct transport has the reply already: no wait (and no description of it) to build.
      if (p.reply === undefined && this.broken === undefined) {
        await this.env.wait(this.replies, () => p.reply !== undefined || this.broken !== undefined, {
          what: `xenstore reply to ${xsTypeName(type)}${path === undefined ? '' : ` ${path}`}`,
          holders: this.replyServers,
        });
      }
    } finally {
      this.forget(p);
    }
    const reply = p.reply;
    if (!reply) throw new XenstoreError('EIO', xsTypeName(type), path, this.brokenReason());
    return reply;
  }

  private onMessage(m: XsMessage): void {
    if (m.type === XsType.WATCH_EVENT) {
      const flow = watchFlowId(this.watchFlowKey, ++this.watchEventsReceived);
      // Byte strings: a token comes back exactly as sent, whatever its bytes.
      const [path, token] = splitReplyStrings(m.payload, latin1String);
      if (path === undefined || token === undefined) {
        this.env.trace.log(this.comp, `malformed WATCH_EVENT payload of ${m.payload.length} bytes ignored`);
        return;
      }
      const w = this.watches.get(token);
      if (!w || !this.options.xenwatch) {
        this.droppedWatchEvents++;
        return;
      }
      this.options.xenwatch.queueEvent(w, path, token, flow);
      return;
    }
    const p = this.findPending(m.reqId);
    if (!p || p.reply) {
      this.env.trace.log(this.comp, `reply ${xsTypeName(m.type)} for unknown req_id ${m.reqId} ignored`);
      return;
    }
    p.reply = m;
    this.replies.wakeAll();
  }

  private findPending(reqId: number): PendingRequest | undefined {
    const list = this.pending;
    for (let i = 0; i < list.length; i++) if (list[i].reqId === reqId) return list[i];
    return undefined;
  }

  /** Take `p` off the pending list (the last entry moves into its place). */
  private forget(p: PendingRequest): void {
    const list = this.pending;
    const i = list.indexOf(p);
    if (i < 0) return;
    const last = list.pop()!;
    if (i < list.length) list[i] = last;
  }

  private brokenReason(): string {
    return this.broken?.message ?? 'no reply';
  }

  private onFailure(e: Error): void {
    this.broken ??= e;
    this.replies.wakeAll();
  }
}
