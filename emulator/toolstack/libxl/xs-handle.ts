/**
 * libxenstore's `struct xs_handle` for a dom0 user-space process (xl, the hotplug script): one
 * connection to xenstored per process, requests as xs_read/xs_write/..., and watch events queued on the
 * handle for the process to collect with `readWatch` (xs_read_watch after select() on xs_fileno).
 *
 * The connection is the DirectTransport (standing in for /var/run/xenstored/socket) behind a
 * descriptor of the process: `close()` (xs_close) closes it, and so does the process's exit (exit_files),
 * however the process ends, so xenstored drops the connection with its watches and transactions as it
 * does when a socket closes. Waiting for a watch event is an interruptible sleep of the process (a
 * killed xl stops waiting), declared with what it waits for and a timeout when the caller has one.
 */

import { XenbusClient, type XsTransaction } from '../../../drivers/xenbus/client.js';
import { DirectTransport, type XsDaemonConnector } from '../../../drivers/xenbus/direct-transport.js';
import { XenstoreError } from '../../../drivers/xenbus/errors.js';
import { type XenbusWatch, Xenwatch } from '../../../drivers/xenbus/xenwatch.js';
import { File } from '../../kernel/file.js';
import type { Kernel } from '../../kernel/kernel.js';
import type { Process } from '../../kernel/process.js';
import type { Holder, Millis, WaitQueue } from '../../runtime/engine.js';

export type { XsTransaction };

/** One delivered watch event: [XS_WATCH_PATH, XS_WATCH_TOKEN]. */
export interface XsWatchEvent {
  path: string;
  token: string;
}

/** The path xs_open connects to (xs_daemon_socket()). */
export const XENSTORED_SOCKET_PATH = '/var/run/xenstored/socket';

/** A permission entry as xs_set_permissions takes it: "n0", "r5"... (owner first). */
export type XsPermString = string;

/**
 * Collects events instead of running callbacks: the process reads them itself. Subclassing keeps the
 * client's watch bookkeeping (tokens, unwatch) as it is; no xenwatch task is started.
 */
class EventQueue extends Xenwatch {
  readonly delivered: XsWatchEvent[] = [];
  constructor(
    env: Kernel['env'],
    private readonly arrived: WaitQueue,
  ) {
    super(env, { name: 'xs_read_watch' });
  }

  override queueEvent(watch: XenbusWatch, path: string, token: string): boolean {
    if (!watch.active) return false;
    this.delivered.push({ path, token });
    this.arrived.wakeAll();
    return true;
  }
}

export class XsHandle {
  private readonly client: XenbusClient;
  private readonly transport: DirectTransport;
  /** The socket's descriptor in the process; its last reference going closes the connection. */
  private readonly file: File;
  readonly fd: number;
  private readonly queue: EventQueue;
  private readonly arrived: WaitQueue;
  /** token → registered watch */
  private readonly watches = new Map<string, { node: string; w: XenbusWatch }>();

  constructor(
    readonly proc: Process,
    private readonly kernel: Kernel,
    daemon: XsDaemonConnector,
    options: { server?: Holder } = {},
  ) {
    const env = kernel.env;
    this.arrived = env.waitQueue(`xenstore watch events of ${proc.label}`);
    this.queue = new EventQueue(env, this.arrived);
    const transport = new DirectTransport(daemon, {
      domid: 0,
      privileged: true,
      label: `xenstored socket (${proc.label})`,
      ...(options.server ? { server: options.server } : {}),
    });
    this.transport = transport;
    this.client = new XenbusClient(env, transport, { xenwatch: this.queue, component: proc.name });
    this.file = new File(
      XENSTORED_SOCKET_PATH,
      {
        describe: () => transport.label,
        release: () => transport.close(`${proc.label} closed the socket`),
      },
      { read: true, write: true },
    );
    try {
      this.fd = proc.fds.install(this.file);
    } catch (e) {
      // EMFILE: xs_open fails and nothing stays connected.
      transport.close(`${proc.label}: ${(e as Error).message}`);
      throw e;
    }
  }

  /** True once the connection to xenstored is closed (by close() or the process's exit). */
  get closed(): boolean {
    return this.transport.closed;
  }

  /**
   * xs_close: close(2) of the socket. Idempotent. Must run in one of the process's tasks; a process
   * with a fatal signal pending dies here instead, and its exit closes the socket all the same.
   */
  async close(): Promise<void> {
    if (this.transport.closed) return;
    let installed: File | undefined;
    try {
      installed = this.proc.file(this.fd);
    } catch {
      installed = undefined;
    }
    // Otherwise the descriptor was closed already and a dup of it (if any) keeps the socket open.
    if (installed === this.file) await this.proc.close(this.fd);
  }

  read(path: string, tx?: XsTransaction): Promise<string> {
    return this.client.read(path, tx);
  }

  /** xs_read that yields undefined for a missing node (libxl__xs_read). */
  tryRead(path: string, tx?: XsTransaction): Promise<string | undefined> {
    return this.client.tryRead(path, tx);
  }

  write(path: string, value: string, tx?: XsTransaction): Promise<void> {
    return this.client.write(path, value, tx);
  }

  mkdir(path: string, tx?: XsTransaction): Promise<void> {
    return this.client.mkdir(path, tx);
  }

  rm(path: string, tx?: XsTransaction): Promise<void> {
    return this.client.rm(path, tx);
  }

  /** xs_rm whose result is ignored, as libxl mostly does: false when it failed. */
  async tryRm(path: string, tx?: XsTransaction): Promise<boolean> {
    try {
      // ENOENT answers false without building an error; any other xenstore failure is false too.
      return await this.client.tryRm(path, tx);
    } catch (e) {
      if (e instanceof XenstoreError) return false;
      throw e;
    }
  }

  directory(path: string, tx?: XsTransaction): Promise<string[]> {
    return this.client.directory(path, tx);
  }

  /** xs_directory that yields undefined when the node is missing (libxl__xs_directory). */
  tryDirectory(path: string, tx?: XsTransaction): Promise<string[] | undefined> {
    return this.client.tryDirectory(path, tx);
  }

  getPerms(path: string, tx?: XsTransaction): Promise<string[]> {
    return this.client.getPerms(path, tx);
  }

  setPerms(path: string, perms: readonly XsPermString[], tx?: XsTransaction): Promise<void> {
    return this.client.setPerms(path, perms, tx);
  }

  introduce(domid: number, gfn: number, port: number): Promise<void> {
    return this.client.introduce(domid, gfn, port);
  }

  release(domid: number): Promise<void> {
    return this.client.release(domid);
  }

  transactionStart(): Promise<XsTransaction> {
    return this.client.transactionStart();
  }

  transactionEnd(tx: XsTransaction, abort: boolean): Promise<void> {
    return this.client.transactionEnd(tx, abort);
  }

  /** The EAGAIN retry loop libxl writes around every transaction. */
  transaction<T>(body: (tx: XsTransaction) => Promise<T>): Promise<T> {
    return this.client.withTransaction(body);
  }

  /** xs_watch(path, token). The daemon fires it once at once. */
  async watch(path: string, token: string): Promise<void> {
    if (this.watches.has(token)) throw new Error(`xs_watch ${path}: token ${token} already in use`);
    const w = await this.client.watch(path, () => undefined);
    this.watches.set(token, { node: path, w });
    // The client chose its own wire token; map it back to ours when events arrive.
    this.tokens.set(w.token, token);
  }

  private readonly tokens = new Map<string, string>();

  /** xs_unwatch(path, token); unknown tokens are ignored. Queued events of the watch are dropped. */
  async unwatch(token: string): Promise<void> {
    const entry = this.watches.get(token);
    if (entry === undefined) return;
    this.watches.delete(token);
    this.tokens.delete(entry.w.token);
    await this.client.unwatch(entry.w);
    for (let i = this.queue.delivered.length - 1; i >= 0; i--) {
      if (this.queue.delivered[i]!.token === entry.w.token) this.queue.delivered.splice(i, 1);
    }
  }

  /**
   * select() on xs_fileno then xs_read_watch: the next event of any of this handle's watches, or
   * undefined when `timeoutMs` passes first. `what` names what the caller really waits for.
   */
  async readWatch(options: {
    what: string;
    timeoutMs?: Millis;
    timeoutName?: string;
    holders?: () => readonly Holder[];
  }): Promise<XsWatchEvent | undefined> {
    const result = await this.kernel.waits.waitInterruptible(
      this.arrived,
      () => this.queue.delivered.length > 0,
      {
        what: options.what,
        ...(options.holders ? { holders: options.holders } : {}),
        ...(options.timeoutMs === undefined
          ? {}
          : { timeoutMs: options.timeoutMs, timeoutName: options.timeoutName ?? `${options.what} timeout` }),
      },
    );
    if (result === 'timeout' && this.queue.delivered.length === 0) return undefined;
    const ev = this.queue.delivered.shift()!;
    return { path: ev.path, token: this.tokens.get(ev.token) ?? ev.token };
  }

  /** Events waiting to be read. */
  get pendingEvents(): number {
    return this.queue.delivered.length;
  }
}
