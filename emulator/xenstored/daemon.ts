/**
 * The xenstore daemon core: pure and synchronous, like C xenstored's single-threaded loop. A request
 * comes in on a connection; replies and watch events go out through the connections' `send`. Every
 * transport (domain rings, the Unix socket, in-process callers) sits on `connect()`.
 *
 * Behaviour follows tools/xenstored/{core,domain,transaction,watch}.c; where we simplify, a comment says so.
 */

import { claimWatchStream, watchFlowId, watchFlowKey } from '../../drivers/xenbus/watch-flow.js';
import {
  concatBytes,
  latin1Range,
  latin1String,
  nulStrings,
  splitNulStrings,
  XENSTORE_PAYLOAD_MAX,
  XS_HEADER_SIZE,
  type XsMessage,
  XsType,
  xsTypeName,
} from '../../drivers/xenbus/xs-wire.js';
import {
  type ConnectionHost,
  type ConnectOptions,
  XenstoreConnection,
  type XsWatchEventOut,
} from './connection.js';
import { XsError } from './errors.js';
import { NodeAccess, type NodeOpsEnv, type PendingEvent, pendingEvent } from './node-ops.js';
import { canonicalize, domainPath } from './paths.js';
import { formatPerm, type PermSubject, parsePerms, permForConn, XS_PERM_READ, type XsPerm } from './perms.js';
import { DEFAULT_QUOTAS, type XsQuotas } from './quotas.js';
import { NodeStore, walkSubtree, type XsNode } from './store.js';
import { type TxOp, XsTransaction } from './transaction.js';
import { watchEventPath, watchMatches } from './watch.js';

/** DOMID_SELF (xen.h): IS_DOMAIN_INTRODUCED answers "T" for it. */
const DOMID_SELF = 0x7ff0;

export interface XenstoreDaemonOptions {
  /** Override C xenstored's default quotas. */
  quotas?: Partial<XsQuotas>;
  /** Daemon log lines (CONTROL "print", protocol errors, released domains). */
  logger?: (line: string) => void;
  /**
   * Does the hypervisor know this domain? Used when permissions name a domain (domain_alloc_permrefs):
   * entries for unknown domains are kept but ignored. Defaults to "every domain exists".
   */
  domainExists?: (domid: number) => boolean;
  /**
   * INTRODUCE arrived (from the wire or introduceDomain()): map the page and bind the event channel here
   * (XenstoredStoreChannels does). Called again when a known domain is re-introduced with the same page,
   * to rebind its event channel. Throw an XsError to refuse; nothing is recorded then.
   */
  onIntroduce?: (domid: number, gfn: bigint, port: number) => void;
  /** RELEASE arrived: the domain's ring connection is gone. */
  onRelease?: (domid: number) => void;
  /** Domains other than dom0 whose connections are privileged (xenstored --priv-domid). */
  privilegedDomids?: readonly number[];
  /**
   * Trace sink for `watch-fire` (component "xenstored"), one per WATCH_EVENT a connection's transport
   * accepts, with the flow id the watcher's xenwatch repeats (drivers/xenbus/watch-flow.ts).
   */
  tracer?: {
    emit(comp: string, kind: string, fields?: Record<string, unknown>): void;
    /** Whether an event would be kept (runtime Tracer.wants); without it every event is built. */
    wants?(comp: string, kind: string): boolean;
  };
}

interface DomainRecord {
  readonly domid: number;
  /** Global generation when this record was made: perms naming it on older nodes are ignored. */
  generation: number;
  introduced: boolean;
  shutdown: boolean;
  port?: number;
  gfn?: bigint;
  /** SET_TARGET: this (device-model) domain also acts as `target`. */
  target?: number;
}

/** One node in a dump of the tree (`xenstore-ls -p` style, leftover checks). */
export interface XsTreeEntry {
  path: string;
  value: Uint8Array;
  perms: readonly XsPerm[];
  generation: number;
}

export class XenstoreDaemon implements ConnectionHost {
  readonly quotas: XsQuotas;
  private readonly store: NodeStore;
  private generationCount = 0;
  private readonly domains = new Map<number, DomainRecord>();
  private readonly connections: XenstoreConnection[] = [];
  private nextConnId = 1;
  /** WATCH_EVENTs accepted by each domain's ring stream (watch-flow.ts), until the domain is released. */
  private readonly ringWatchEvents = new Map<number, number>();
  private logEnabled = true;
  private readonly privilegedDomids: ReadonlySet<number>;
  private readonly opsEnv: NodeOpsEnv;

  constructor(private readonly options: XenstoreDaemonOptions = {}) {
    this.quotas = { ...DEFAULT_QUOTAS, ...options.quotas };
    this.privilegedDomids = new Set([0, ...(options.privilegedDomids ?? [])]);
    this.store = NodeStore.initial(() => this.nextGeneration());
    // dom0 is the master domain: introduced at start without an @introduceDomain event.
    this.domains.set(0, { domid: 0, generation: 0, introduced: true, shutdown: false });
    this.opsEnv = {
      quotas: this.quotas,
      nextGeneration: () => this.nextGeneration(),
      permIgnored: (perms, generation, i) => !this.domainOlderThan(perms[i].id, generation),
    };
  }

  /** The global generation count, incremented before each use as in transaction.c. */
  get generation(): number {
    return this.generationCount;
  }

  private nextGeneration(): number {
    return ++this.generationCount;
  }

  private log(line: string): void {
    if (this.logEnabled) this.options.logger?.(line);
  }

  /** chk_domain_generation(): the domain exists and is not younger than the node. */
  private domainOlderThan(domid: number, generation: number): boolean {
    const d = this.domains.get(domid);
    return d !== undefined && d.generation <= generation;
  }

  private findOrAllocDomain(domid: number): DomainRecord {
    let d = this.domains.get(domid);
    if (!d) {
      d = { domid, generation: this.generationCount, introduced: false, shutdown: false };
      this.domains.set(domid, d);
    }
    return d;
  }

  // ---------------------------------------------------------------------------------------------
  // Connections

  connect(options: ConnectOptions): XenstoreConnection {
    const privileged = options.privileged === true || this.privilegedDomids.has(options.domid);
    const id = this.nextConnId++;
    const send = this.watchFireTracing(options.domid, claimWatchStream(id), options.send);
    const conn = new XenstoreConnection(this, id, { ...options, privileged, send });
    this.findOrAllocDomain(options.domid);
    this.connections.push(conn);
    return conn;
  }

  /**
   * Wrap a connection's send so each WATCH_EVENT its transport accepts is traced as `watch-fire` with
   * the stream's next flow id. Counted on acceptance: a refused message is offered again later.
   */
  private watchFireTracing(
    domid: number,
    stream: number,
    send: ConnectOptions['send'],
  ): ConnectOptions['send'] {
    const tracer = this.options.tracer;
    if (tracer === undefined) return send;
    const key = watchFlowKey(domid, stream);
    let sent = 0;
    return (msg) => {
      const accepted = send(msg);
      if (accepted === false || msg.length < XS_HEADER_SIZE) return accepted;
      const type = msg[0] | (msg[1] << 8) | (msg[2] << 16) | (msg[3] << 24);
      if (type !== XsType.WATCH_EVENT) return accepted;
      let n: number;
      if (stream === 0) {
        n = (this.ringWatchEvents.get(domid) ?? 0) + 1;
        this.ringWatchEvents.set(domid, n);
      } else {
        n = ++sent;
      }
      // Counted whether or not the trace keeps it: the watcher numbers the same stream.
      if (tracer.wants !== undefined && !tracer.wants('xenstored', 'watch-fire')) return accepted;
      const [path = '', token = ''] = splitNulStrings(msg.subarray(XS_HEADER_SIZE)).strings;
      tracer.emit('xenstored', 'watch-fire', { path, token, flow: watchFlowId(key, n), watcher: domid });
      return accepted;
    };
  }

  /** Drop a connection: its watches and transactions go with it. */
  disconnect(conn: XenstoreConnection, reason = 'disconnected'): void {
    const i = this.connections.indexOf(conn);
    if (i >= 0) this.connections.splice(i, 1);
    conn.markClosed(reason);
  }

  dropConnection(conn: XenstoreConnection, reason: string): void {
    this.log(`${conn.label}: ${reason}`);
    this.disconnect(conn, reason);
  }

  outstandingLimit(conn: XenstoreConnection): number | undefined {
    return conn.privileged ? undefined : this.quotas.outstanding;
  }

  get connectionCount(): number {
    return this.connections.length;
  }

  // ---------------------------------------------------------------------------------------------
  // Domains

  /**
   * XS_INTRODUCE from the toolstack; fires @introduceDomain the first time. The transport hook runs
   * first, so a domain whose page or event channel cannot be set up is not recorded (do_introduce).
   * Introducing a known domain again with the same page rebinds its event channel; with another page
   * it is EINVAL.
   */
  introduceDomain(domid: number, gfn: bigint = 0n, port = 1): void {
    if (!Number.isInteger(domid) || domid < 0 || domid > 0xffff) {
      throw new XsError('EINVAL', `domid ${domid} is not 0..65535`);
    }
    if (!Number.isInteger(port) || port <= 0)
      throw new XsError('EINVAL', `event channel port ${port} must be > 0`);
    const known = this.domains.get(domid);
    if (known?.gfn !== undefined && known.gfn !== gfn) {
      throw new XsError('EINVAL', `domain ${domid} is already introduced with page ${known.gfn}, not ${gfn}`);
    }
    try {
      this.options.onIntroduce?.(domid, gfn, port);
    } catch (e) {
      if (e instanceof XsError) throw e;
      // A transport failure is the request's failure, never the daemon's.
      this.log(`INTRODUCE of domain ${domid} failed: ${(e as Error).message}`);
      throw new XsError('EINVAL', `domain ${domid}: ${(e as Error).message}`);
    }
    const d = this.findOrAllocDomain(domid);
    const fresh = !d.introduced;
    d.introduced = true;
    d.port = port;
    d.gfn = gfn;
    d.shutdown = false;
    // domain_conn_reset(): a (re)introduced domain starts without watches or transactions.
    for (const c of this.connections) {
      if (c.domid === domid && !c.privileged) {
        c.watches.length = 0;
        c.transactions.clear();
      }
    }
    if (fresh && domid !== 0) this.fireSpecial('@introduceDomain');
  }

  /** XS_RELEASE: the domain is gone. Its connections close and the nodes it owns are removed. */
  releaseDomain(domid: number): void {
    if (domid === 0) throw new XsError('EINVAL', 'dom0 cannot be released');
    const d = this.domains.get(domid);
    if (!d?.introduced) throw new XsError('ENOENT', `domain ${domid} is not introduced`);
    for (const c of [...this.connections]) {
      if (c.domid === domid) {
        // do_release drops the watches first so the node removal below does not notify the dying domain.
        c.watches.length = 0;
        this.disconnect(c, `domain ${domid} released`);
      }
    }
    this.removeOwnedNodes(domid);
    this.domains.delete(domid);
    // A later domain with this domid is a new guest whose ring client counts from zero.
    this.ringWatchEvents.delete(domid);
    this.log(`domain ${domid} released`);
    this.options.onRelease?.(domid);
    this.fireSpecial('@releaseDomain');
  }

  /** The hypervisor reports the domain shut down or crashed (VIRQ_DOM_EXC): fire @releaseDomain. */
  notifyDomainShutdown(domid: number): void {
    const d = this.domains.get(domid);
    if (!d?.introduced || d.shutdown) return;
    d.shutdown = true;
    this.fireSpecial('@releaseDomain');
  }

  isDomainIntroduced(domid: number): boolean {
    return domid === DOMID_SELF || this.domains.get(domid)?.introduced === true;
  }

  /** domain_tree_remove(): delete every node owned by the domain (children go with their parent). */
  private removeOwnedNodes(domid: number): void {
    const doomed: string[] = [];
    const visit = (n: XsNode, path: string): void => {
      if (n.perms[0].id === domid) {
        doomed.push(path);
        return;
      }
      for (const [name, child] of n.children) visit(child, path === '/' ? `/${name}` : `${path}/${name}`);
    };
    visit(this.store.root, '/');
    const access = new NodeAccess(this.opsEnv, { domid: 0, privileged: true }, this.store, undefined);
    for (const path of doomed) if (path !== '/') access.rm(path);
    this.fireEvents(access.events);
    for (const special of ['@introduceDomain', '@releaseDomain']) {
      const n = this.store.get(special)!;
      if (n.perms[0].id === domid) {
        this.store.update(special, {
          perms: [{ ...n.perms[0], id: 0 }, ...n.perms.slice(1)],
          generation: this.nextGeneration(),
        });
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Watches

  private fireSpecial(name: string): void {
    this.fireEvents([pendingEvent(name, true, this.store.get(name)!, this.store.get('/'))]);
  }

  /** watch.c watch_permitted(): the watcher may read the node (or its old perms) or its parent. */
  private watchPermitted(conn: XenstoreConnection, ev: PendingEvent): boolean {
    // A privileged connection may read everything (perm_for_conn).
    if (conn.privileged) return true;
    const subject = this.subjectOf(conn);
    const can = (perms: readonly XsPerm[], generation: number) =>
      (permForConn(subject, perms, (i) => !this.domainOlderThan(perms[i].id, generation)) & XS_PERM_READ) !==
      0;
    if (ev.oldPerms && can(ev.oldPerms, ev.generation)) return true;
    if (can(ev.perms, ev.generation)) return true;
    return ev.parentPerms !== undefined && can(ev.parentPerms, ev.parentGeneration);
  }

  private fireEvents(events: readonly PendingEvent[]): void {
    for (const ev of events) {
      for (const conn of this.connections) {
        // Permissions are asked only of a connection with a matching watch (the check is pure).
        let permitted: boolean | undefined;
        for (const w of conn.watches) {
          if (!watchMatches(w, ev.name, ev.exact)) continue;
          permitted ??= this.watchPermitted(conn, ev);
          if (!permitted) break;
          conn.queueEvent(watchEventPath(w, ev.name), w.token);
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Requests

  private subjectOf(conn: XenstoreConnection): PermSubject {
    // A privileged connection may do anything whatever its target (perm_for_conn): one subject will do.
    if (conn.privileged) return PRIVILEGED_SUBJECTS[conn.domid] ?? { domid: conn.domid, privileged: true };
    return { domid: conn.domid, privileged: false, target: this.domains.get(conn.domid)?.target };
  }

  private canon(conn: XenstoreConnection, path: string, allowSpecial: boolean): string {
    return canonicalize(path, {
      domid: conn.domid,
      allowSpecial,
      pathMax: conn.privileged ? undefined : this.quotas.pathMax,
    });
  }

  process(conn: XenstoreConnection, msg: XsMessage): { reply: XsMessage; after: XsWatchEventOut[] } {
    const after: XsWatchEventOut[] = [];
    try {
      const payload = this.dispatch(conn, msg, after);
      // send_reply(): a reply that does not fit in one message is E2BIG.
      if (payload.length > XENSTORE_PAYLOAD_MAX)
        throw new XsError('E2BIG', `reply of ${payload.length} bytes`);
      return { reply: { type: msg.type, reqId: msg.reqId, txId: msg.txId, payload }, after };
    } catch (e) {
      if (!(e instanceof XsError)) throw e;
      return {
        reply: { type: XsType.ERROR, reqId: msg.reqId, txId: msg.txId, payload: errorPayload(e.errno) },
        after: [],
      };
    }
  }

  private dispatch(conn: XenstoreConnection, msg: XsMessage, after: XsWatchEventOut[]): Uint8Array {
    const t = msg.type;
    const handler = HANDLERS.get(t);
    if (!handler) throw new XsError('ENOSYS', `unknown or unsupported request ${xsTypeName(t)}`);
    if (handler.privileged && !conn.privileged)
      throw new XsError('EACCES', `${xsTypeName(t)} is for privileged domains`);
    let tx: XsTransaction | undefined;
    if (!handler.ignoresTx && msg.txId !== 0) {
      tx = conn.transactions.get(msg.txId);
      if (!tx) throw new XsError('ENOENT', `transaction ${msg.txId} unknown`);
    }
    return handler.run.call(this, { conn, msg, tx, after });
  }

  /**
   * Run node operations for a request, on the transaction's store or on the live one. Every node
   * operation makes all its checks before it changes the store, so a failed request leaves nothing
   * behind and needs no draft copy. A modifying request (`op`) is logged for the transaction's commit,
   * or fires its watches at once outside a transaction.
   */
  private withNodes<T>(req: Req, op: TxOp | undefined, body: (a: NodeAccess) => T): T {
    const a = new NodeAccess(this.opsEnv, this.subjectOf(req.conn), req.tx?.store ?? this.store, req.tx);
    const result = body(a);
    if (op !== undefined) {
      if (req.tx) req.tx.ops.push(op);
      else this.fireEvents(a.events);
    }
    return result;
  }

  private oneArg(msg: XsMessage): string {
    // onearg(): exactly one string, NUL-terminated, nothing after it.
    const payload = msg.payload;
    const last = payload.length - 1;
    let ok = last >= 0 && payload[last] === 0;
    for (let i = 0; ok && i < last; i++) if (payload[i] === 0) ok = false;
    if (!ok) throw new XsError('EINVAL', `${xsTypeName(msg.type)} wants one NUL-terminated argument`);
    return latin1Range(payload, 0, last);
  }

  /** @internal handlers */
  doRead(r: Req): Uint8Array {
    const name = this.canon(r.conn, this.oneArg(r.msg), false);
    return this.withNodes(r, undefined, (a) => a.readValue(name));
  }

  doWrite(r: Req): Uint8Array {
    const nul = r.msg.payload.indexOf(0);
    if (nul < 0) throw new XsError('EINVAL', 'WRITE needs "path\\0value"');
    const name = this.canon(r.conn, latin1String(r.msg.payload.subarray(0, nul)), false);
    const value = r.msg.payload.slice(nul + 1);
    this.withNodes(r, { kind: 'write', name, value }, (a) => a.write(name, value));
    return OK;
  }

  doMkdir(r: Req): Uint8Array {
    const name = this.canon(r.conn, this.oneArg(r.msg), false);
    this.withNodes(r, { kind: 'mkdir', name }, (a) => a.mkdir(name));
    return OK;
  }

  doRm(r: Req): Uint8Array {
    const name = this.canon(r.conn, this.oneArg(r.msg), false);
    this.withNodes(r, { kind: 'rm', name }, (a) => a.rm(name));
    return OK;
  }

  doDirectory(r: Req): Uint8Array {
    const name = this.canon(r.conn, this.oneArg(r.msg), false);
    const node = this.withNodes(r, undefined, (a) => a.directory(name));
    return nulStrings(...node.children.keys());
  }

  doDirectoryPart(r: Req): Uint8Array {
    const { strings, end } = splitNulStrings(r.msg.payload);
    // xenstore_count_strings() == 2: path and offset, both NUL-terminated.
    if (strings.length !== 2 || end !== r.msg.payload.length)
      throw new XsError('EINVAL', 'DIRECTORY_PART wants "path\\0offset\\0"');
    const name = this.canon(r.conn, strings[0], false);
    const node = this.withNodes(r, undefined, (a) => a.directory(name));
    const children = nulStrings(...node.children.keys());
    const off = atoi(strings[1]) >>> 0;
    const gen = nulStrings(String(node.generation));
    if (off >= children.length) return concatBytes(gen, new Uint8Array(1));
    // send_directory_part(): whole names while they fit; a final empty string marks the end.
    const maxlen = XENSTORE_PAYLOAD_MAX - gen.length - 1;
    let len = 0;
    for (;;) {
      const nul = children.indexOf(0, off + len);
      const nameLen = nul - (off + len);
      if (len + nameLen >= maxlen) break;
      len += nameLen + 1;
      if (off + len === children.length) break;
    }
    const part = children.subarray(off, off + len);
    return off + len === children.length ? concatBytes(gen, part, new Uint8Array(1)) : concatBytes(gen, part);
  }

  doGetPerms(r: Req): Uint8Array {
    const name = this.canon(r.conn, this.oneArg(r.msg), true);
    const perms = this.withNodes(r, undefined, (a) => a.getPerms(name));
    return nulStrings(...perms.map(formatPerm));
  }

  doSetPerms(r: Req): Uint8Array {
    const { strings } = splitNulStrings(r.msg.payload);
    if (strings.length < 2) throw new XsError('EINVAL', 'SET_PERMS wants "path\\0perm\\0..."');
    const permStrings = strings.slice(1);
    if (!r.conn.privileged && permStrings.length > this.quotas.nodePermissions) {
      throw new XsError('ENOSPC', `${permStrings.length} permissions, above ${this.quotas.nodePermissions}`);
    }
    const parsed = parsePerms(permStrings);
    // domain_alloc_permrefs(): remember the named domains; ones the hypervisor does not know are ignored.
    const exists = this.options.domainExists ?? (() => true);
    const perms = parsed.map((p) => {
      if (this.domains.has(p.id)) return p;
      if (!exists(p.id)) return { ...p, ignore: true };
      this.findOrAllocDomain(p.id);
      return p;
    });
    if (perms[0].ignore) throw new XsError('ENOENT', `owner domain ${perms[0].id} does not exist`);
    const name = this.canon(r.conn, strings[0], true);
    this.withNodes(r, { kind: 'setperms', name, perms }, (a) => a.setPerms(name, perms));
    return OK;
  }

  doWatch(r: Req): Uint8Array {
    const { strings } = splitNulStrings(r.msg.payload);
    // get_strings() must find exactly path and token; a depth argument is not supported (no WATCHDEPTH).
    if (strings.length !== 2) throw new XsError('EINVAL', 'WATCH wants "path\\0token\\0"');
    const [path, token] = strings;
    const relative = !path.startsWith('/') && !path.startsWith('@');
    const node = this.canon(r.conn, path, true);
    const conn = r.conn;
    if (conn.watches.some((w) => w.node === node && w.token === token))
      throw new XsError('EEXIST', `watch ${path} ${token}`);
    // C: domain_watch(conn) > quota, i.e. one watch beyond the quota is still accepted.
    if (!conn.privileged && conn.watches.length > this.quotas.watches) {
      throw new XsError('E2BIG', `more than ${this.quotas.watches} watches`);
    }
    const w = { node, token, prefixLength: relative ? domainPath(conn.domid).length + 1 : 0 };
    conn.watches.push(w);
    // The watch fires once at registration, after the ack.
    r.after.push({ path: watchEventPath(w, node), token });
    return OK;
  }

  doUnwatch(r: Req): Uint8Array {
    const { strings } = splitNulStrings(r.msg.payload);
    if (strings.length !== 2) throw new XsError('EINVAL', 'UNWATCH wants "path\\0token\\0"');
    const node = this.canon(r.conn, strings[0], true);
    const i = r.conn.watches.findIndex((w) => w.node === node && w.token === strings[1]);
    if (i < 0) throw new XsError('ENOENT', `no watch ${strings[0]} ${strings[1]}`);
    r.conn.watches.splice(i, 1);
    return OK;
  }

  doTransactionStart(r: Req): Uint8Array {
    if (r.tx) throw new XsError('EBUSY', 'transactions do not nest');
    const conn = r.conn;
    // C: domain_transaction_get(conn) > quota.
    if (!conn.privileged && conn.transactions.size > this.quotas.transactions) {
      throw new XsError('ENOSPC', `more than ${this.quotas.transactions} transactions`);
    }
    let id = conn.nextTransactionId;
    while (id === 0 || conn.transactions.has(id)) id = (id + 1) >>> 0;
    conn.nextTransactionId = (id + 1) >>> 0;
    conn.transactions.set(id, new XsTransaction(id, this.store.fork(), this.nextGeneration()));
    return nulStrings(String(id));
  }

  doTransactionEnd(r: Req): Uint8Array {
    const arg = (() => {
      try {
        return this.oneArg(r.msg);
      } catch {
        return undefined;
      }
    })();
    if (arg !== 'T' && arg !== 'F') throw new XsError('EINVAL', 'TRANSACTION_END wants "T" or "F"');
    const tx = r.tx;
    if (!tx) throw new XsError('ENOENT', 'TRANSACTION_END outside a transaction');
    // The transaction ends here whatever the outcome.
    r.conn.transactions.delete(tx.id);
    if (arg === 'F') return OK;
    if (tx.failed) throw new XsError('ENOMEM', `transaction ${tx.id} failed earlier`);
    for (const [path, gen] of tx.accessed) {
      const live = this.store.get(path);
      if ((live ? live.generation : -1) !== gen)
        throw new XsError('EAGAIN', `${path} changed since the transaction started`);
    }
    // Every node the transaction looked at is unchanged, so replaying its requests on the live store
    // gives the transaction's result; quotas are checked again against the live counts.
    const draft = this.store.fork();
    const a = new NodeAccess(this.opsEnv, this.subjectOf(r.conn), draft, undefined);
    for (const op of tx.ops) {
      if (op.kind === 'write') a.write(op.name, op.value);
      else if (op.kind === 'mkdir') a.mkdir(op.name);
      else if (op.kind === 'rm') a.rm(op.name);
      else a.setPerms(op.name, op.perms);
    }
    this.store.adopt(draft);
    this.fireEvents(coalesce(a.events));
    return OK;
  }

  doIntroduce(r: Req): Uint8Array {
    const { strings } = splitNulStrings(r.msg.payload);
    if (strings.length < 3) throw new XsError('EINVAL', 'INTRODUCE wants "domid\\0gfn\\0evtchn\\0"');
    const domid = atoi(strings[0]) >>> 0;
    const port = atoi(strings[2]);
    if (port <= 0) throw new XsError('EINVAL', `event channel "${strings[2]}"`);
    if (domid > 0xffff) throw new XsError('EINVAL', `domid "${strings[0]}"`);
    let gfn = 0n;
    try {
      gfn = BigInt(strings[1].trim() || '0');
    } catch {
      gfn = 0n; // C ignores the gfn argument entirely.
    }
    this.introduceDomain(domid, gfn, port);
    return OK;
  }

  private oneDomain(r: Req): DomainRecord {
    const domid = atoi(this.oneArg(r.msg)) >>> 0;
    if (domid === 0) throw new XsError('EINVAL', 'dom0');
    const d = this.domains.get(domid);
    if (!d?.introduced) throw new XsError('ENOENT', `domain ${domid} is not introduced`);
    return d;
  }

  doRelease(r: Req): Uint8Array {
    this.releaseDomain(this.oneDomain(r).domid);
    return OK;
  }

  doResume(r: Req): Uint8Array {
    this.oneDomain(r).shutdown = false;
    return OK;
  }

  doIsDomainIntroduced(r: Req): Uint8Array {
    const domid = atoi(this.oneArg(r.msg)) >>> 0;
    return nulStrings(this.isDomainIntroduced(domid) ? 'T' : 'F');
  }

  doGetDomainPath(r: Req): Uint8Array {
    return nulStrings(domainPath(atoi(this.oneArg(r.msg)) >>> 0));
  }

  doSetTarget(r: Req): Uint8Array {
    const { strings } = splitNulStrings(r.msg.payload);
    if (strings.length < 2) throw new XsError('EINVAL', 'SET_TARGET wants "domid\\0target\\0"');
    const [domid, target] = strings.map((s) => atoi(s) >>> 0);
    const d = this.domains.get(domid);
    const t = this.domains.get(target);
    if (!d?.introduced || !t?.introduced)
      throw new XsError('ENOENT', `domain ${d?.introduced ? target : domid} not introduced`);
    d.target = target;
    return OK;
  }

  doResetWatches(r: Req): Uint8Array {
    r.conn.watches.length = 0;
    r.conn.transactions.clear();
    return OK;
  }

  doControl(r: Req): Uint8Array {
    const { strings } = splitNulStrings(r.msg.payload);
    const [cmd, ...args] = strings;
    switch (cmd) {
      case 'print':
        if (args.length < 1) throw new XsError('EINVAL', 'print wants a string');
        this.options.logger?.(`control: ${args[0]}`);
        return OK;
      case 'log':
        if (args[0] !== 'on' && args[0] !== 'off') throw new XsError('EINVAL', 'log wants on|off');
        this.logEnabled = args[0] === 'on';
        return OK;
      case 'check':
        this.checkStore();
        return OK;
      case 'quota':
        return nulStrings(this.quotaReport(args[0]));
      case 'help':
        return nulStrings('Valid commands:\ncheck\nhelp\nlog on|off\nprint <string>\nquota [<domid>]\n');
      default:
        throw new XsError('EINVAL', `unknown control command "${cmd ?? ''}"`);
    }
  }

  private quotaReport(domidArg: string | undefined): string {
    if (domidArg === undefined) {
      return Object.entries(this.quotas)
        .map(([k, v]) => `${k.padEnd(17)}: ${String(v).padStart(8)}\n`)
        .join('');
    }
    const domid = atoi(domidArg) >>> 0;
    if (!this.domains.has(domid)) throw new XsError('ENOENT', `domain ${domid}`);
    const watches = this.connections
      .filter((c) => c.domid === domid)
      .reduce((n, c) => n + c.watches.length, 0);
    const txs = this.connections
      .filter((c) => c.domid === domid)
      .reduce((n, c) => n + c.transactions.size, 0);
    return (
      `Domain ${domid}:\n` +
      `${'nodes'.padEnd(17)}: ${String(this.store.ownedBy(domid)).padStart(8)}\n` +
      `${'watches'.padEnd(17)}: ${String(watches).padStart(8)}\n` +
      `${'transactions'.padEnd(17)}: ${String(txs).padStart(8)}\n`
    );
  }

  /** Recount owned nodes from the tree and compare with the running counts (CONTROL "check"). */
  checkStore(): void {
    const counts = new Map<number, number>();
    walkSubtree(this.store.root, '/', (n) => counts.set(n.perms[0].id, (counts.get(n.perms[0].id) ?? 0) + 1));
    for (const n of this.store.specials.values())
      counts.set(n.perms[0].id, (counts.get(n.perms[0].id) ?? 0) + 1);
    for (const [domid, n] of counts) {
      if (this.store.ownedBy(domid) !== n) {
        throw new Error(
          `xenstored: accounting for domain ${domid} says ${this.store.ownedBy(domid)} nodes, tree has ${n}`,
        );
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Read-only views

  /** Pre-order dump of the tree under `path` (default "/"), children in creation order. */
  snapshot(path = '/'): XsTreeEntry[] {
    const out: XsTreeEntry[] = [];
    const n = this.store.get(path);
    if (!n) return out;
    walkSubtree(n, path, (node, p) =>
      out.push({ path: p, value: node.value, perms: node.perms, generation: node.generation }),
    );
    return out;
  }

  /** The live node at an absolute path, for inspection (no permission checks). */
  peek(path: string): { value: Uint8Array; perms: readonly XsPerm[]; children: string[] } | undefined {
    const n = this.store.get(path);
    return n && { value: n.value, perms: n.perms, children: [...n.children.keys()] };
  }

  /** Every registered watch (canonical path), per connection. */
  listWatches(): { connection: string; domid: number; path: string; token: string }[] {
    return this.connections.flatMap((c) =>
      c.watches.map((w) => ({ connection: c.label, domid: c.domid, path: w.node, token: w.token })),
    );
  }

  /** Nodes owned by a domain (its ACC_NODES count). */
  nodesOwnedBy(domid: number): number {
    return this.store.ownedBy(domid);
  }
}

const OK = nulStrings('OK');

/** dom0's subject, made once (a privileged subject's target never matters). */
const PRIVILEGED_SUBJECTS: Readonly<Record<number, PermSubject>> = Object.freeze({
  0: Object.freeze({ domid: 0, privileged: true }),
});

const ERROR_PAYLOADS = new Map<string, Uint8Array>();

/** "ENOENT\0" and the like, made once per name (replies are copied into their message, never kept). */
function errorPayload(errno: string): Uint8Array {
  let p = ERROR_PAYLOADS.get(errno);
  if (p === undefined) {
    p = nulStrings(errno);
    ERROR_PAYLOADS.set(errno, p);
  }
  return p;
}

interface Req {
  conn: XenstoreConnection;
  msg: XsMessage;
  tx: XsTransaction | undefined;
  after: XsWatchEventOut[];
}

interface Handler {
  run: (this: XenstoreDaemon, r: Req) => Uint8Array;
  privileged?: boolean;
  /** XS_FLAG_NOTID: the transaction id is ignored. */
  ignoresTx?: boolean;
}

// wire_funcs[] of core.c. Types absent here (WATCH_EVENT, ERROR, 20, GET/SET_FEATURE, GET/SET_QUOTA,
// anything >= XS_TYPE_COUNT) answer ENOSYS, as in C xenstored without those optional features.
const HANDLERS = new Map<number, Handler>([
  [XsType.CONTROL, { run: XenstoreDaemon.prototype.doControl, privileged: true }],
  [XsType.DIRECTORY, { run: XenstoreDaemon.prototype.doDirectory }],
  [XsType.READ, { run: XenstoreDaemon.prototype.doRead }],
  [XsType.GET_PERMS, { run: XenstoreDaemon.prototype.doGetPerms }],
  [XsType.WATCH, { run: XenstoreDaemon.prototype.doWatch, ignoresTx: true }],
  [XsType.UNWATCH, { run: XenstoreDaemon.prototype.doUnwatch, ignoresTx: true }],
  [XsType.TRANSACTION_START, { run: XenstoreDaemon.prototype.doTransactionStart }],
  [XsType.TRANSACTION_END, { run: XenstoreDaemon.prototype.doTransactionEnd }],
  [XsType.INTRODUCE, { run: XenstoreDaemon.prototype.doIntroduce, privileged: true }],
  [XsType.RELEASE, { run: XenstoreDaemon.prototype.doRelease, privileged: true }],
  [XsType.GET_DOMAIN_PATH, { run: XenstoreDaemon.prototype.doGetDomainPath }],
  [XsType.WRITE, { run: XenstoreDaemon.prototype.doWrite }],
  [XsType.MKDIR, { run: XenstoreDaemon.prototype.doMkdir }],
  [XsType.RM, { run: XenstoreDaemon.prototype.doRm }],
  [XsType.SET_PERMS, { run: XenstoreDaemon.prototype.doSetPerms }],
  [XsType.IS_DOMAIN_INTRODUCED, { run: XenstoreDaemon.prototype.doIsDomainIntroduced, privileged: true }],
  [XsType.RESUME, { run: XenstoreDaemon.prototype.doResume, privileged: true }],
  [XsType.SET_TARGET, { run: XenstoreDaemon.prototype.doSetTarget, privileged: true }],
  [XsType.RESET_WATCHES, { run: XenstoreDaemon.prototype.doResetWatches }],
  [XsType.DIRECTORY_PART, { run: XenstoreDaemon.prototype.doDirectoryPart }],
]);

/** C atoi(): optional blanks and sign, then digits; anything else stops it (0 when none). */
export function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(s);
  if (!m) return 0;
  const v = Number(m[1]);
  return Number.isSafeInteger(v) ? v | 0 : 0;
}

/** One event per node at commit; a non-exact event replaces an exact one (queue_watches). */
function coalesce(events: readonly PendingEvent[]): PendingEvent[] {
  const byName = new Map<string, PendingEvent>();
  for (const ev of events) {
    const prev = byName.get(ev.name);
    if (!prev) byName.set(ev.name, ev);
    else byName.set(ev.name, { ...ev, exact: prev.exact && ev.exact });
  }
  return [...byName.values()];
}
