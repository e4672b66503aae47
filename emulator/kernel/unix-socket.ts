/**
 * AF_UNIX stream sockets in one domain's name space, as tapdisk's control socket and tap-ctl use them:
 * bind+listen on a path, connect (ENOENT when the name is missing, ECONNREFUSED when nobody listens on
 * it), accept, read/write, readiness for select(), EPIPE towards a closed peer, and Linux's
 * unix_release_sock rules: closing a listener drops its unaccepted connections (their clients see
 * ECONNRESET, teardown C17), closing a socket with unread data resets the peer, the bound name stays
 * until unlinked.
 * Simplification: data moves as whole messages (one write = one read, like tapdisk_message_t exchanges)
 * and send buffers are unbounded, so a write never blocks.
 */
import type { Env, Holder } from '../runtime/engine.js';
import { type ErrnoName, KernelError } from './errno.js';
import { File, type FileOps } from './file.js';
import type { Namespace } from './namespace.js';
import type { PollHub, Readiness } from './poll.js';
import type { KernelWaits } from './waits.js';

/** include/linux/socket.h SOMAXCONN (listen() silently caps the backlog at it). */
export const SOMAXCONN = 128;

let nextSocketId = 1;

export class UnixSocket {
  readonly id = nextSocketId++;
  state: 'listening' | 'connected' | 'closed';
  /** Listener: the bound path; connected sockets: the path of the listener they came through. */
  readonly path: string;
  readonly role: 'listener' | 'client' | 'server';
  /** Connections queued on a listener, not yet accepted (each is the server end, already paired). */
  readonly backlog: UnixSocket[] = [];
  maxBacklog = 0;
  peer: UnixSocket | undefined;
  /** The listener a server end waits on until accepted. */
  listener: UnixSocket | undefined;
  readonly recvQueue: Uint8Array[] = [];
  /** The peer has gone (RCV_SHUTDOWN): reads drain the queue then return end of stream. */
  peerGone = false;
  /** sk_err: reported once by the next read. */
  pendingError: ErrnoName | undefined;
  file: File | undefined;

  constructor(state: UnixSocket['state'], role: UnixSocket['role'], path: string) {
    this.state = state;
    this.role = role;
    this.path = path;
  }

  describe(): string {
    if (this.role === 'listener') return `listening socket ${this.path}`;
    if (this.role === 'client') return `socket connected to ${this.path}`;
    return `accepted socket on ${this.path}`;
  }

  readiness(): Readiness {
    if (this.state === 'listening') return { readable: this.backlog.length > 0, writable: false };
    if (this.state === 'closed') return { readable: true, writable: true };
    const readable = this.pendingError !== undefined || this.recvQueue.length > 0 || this.peerGone;
    return { readable, writable: true };
  }

  /** The processes whose action this socket's readiness depends on. */
  peerHolders(): Holder[] {
    if (this.state === 'listening') return [];
    const peer = this.peer;
    if (peer === undefined || this.peerGone) return [];
    if (peer.listener !== undefined) return peer.listener.file?.owners() ?? [];
    return peer.file?.owners() ?? [];
  }
}

export interface BoundSocketInfo {
  path: string;
  listening: boolean;
  pending: number;
}

export class UnixSockets {
  private readonly ops: FileOps;

  constructor(
    private readonly env: Env,
    private readonly ns: Namespace,
    private readonly poll: PollHub,
    private readonly waits: KernelWaits,
  ) {
    const sock = (file: File): UnixSocket => file.private as UnixSocket;
    this.ops = {
      describe: (file) => sock(file).describe(),
      poll: (file) => sock(file).readiness(),
      pollHolders: (file) => sock(file).peerHolders(),
      release: (file) => this.release(sock(file)),
      read: (file) => this.read(file, sock(file)),
      write: (file, data) => this.write(sock(file), data),
    };
  }

  /** socket(AF_UNIX, SOCK_STREAM) + bind(path) + listen(backlog). */
  listen(path: string, backlog: number): File {
    if (!Number.isInteger(backlog) || backlog < 0)
      throw new KernelError('EINVAL', `listen ${path}: backlog ${backlog}`);
    const sock = new UnixSocket('listening', 'listener', path);
    sock.maxBacklog = Math.min(backlog, SOMAXCONN);
    this.ns.bindSocket(path, sock);
    this.env.trace.emit('unix', 'listen', { path, backlog: sock.maxBacklog });
    return this.fileFor(sock);
  }

  /**
   * connect(): ENOENT when the name does not exist, ECONNREFUSED when it is not a socket or nothing
   * listens on it; a full backlog blocks (interruptibly) or gives EAGAIN for a non-blocking socket.
   */
  async connect(path: string, options: { nonblocking?: boolean } = {}): Promise<File> {
    for (;;) {
      let node: ReturnType<Namespace['lookup']>;
      try {
        node = this.ns.lookup(path);
      } catch (e) {
        if (e instanceof KernelError) throw new KernelError(e.code, `connect ${path}`);
        throw e;
      }
      const listener = node.kind === 'sock' ? (node.socket as UnixSocket | undefined) : undefined;
      if (listener === undefined || listener.state !== 'listening') {
        throw new KernelError('ECONNREFUSED', `connect ${path}`);
      }
      if (listener.backlog.length <= listener.maxBacklog) return this.pair(listener);
      if (options.nonblocking) throw new KernelError('EAGAIN', `connect ${path}: listen backlog full`);
      await this.waits.waitInterruptible(
        this.poll.queue,
        () => listener.state !== 'listening' || listener.backlog.length <= listener.maxBacklog,
        { what: `room in the listen backlog of ${path}`, holders: () => listener.file?.owners() ?? [] },
      );
    }
  }

  /** accept(): the oldest queued connection; blocks interruptibly or EAGAIN when non-blocking. */
  async accept(listenerFile: File, options: { nonblocking?: boolean } = {}): Promise<File> {
    const listener = this.socketOf(listenerFile, 'accept');
    if (listener.state !== 'listening')
      throw new KernelError('EINVAL', `accept on ${listener.describe()}: not listening`);
    if (listener.backlog.length === 0) {
      if (options.nonblocking || listenerFile.nonblocking) {
        throw new KernelError('EAGAIN', `accept on ${listener.path}: no pending connection`);
      }
      await this.waits.waitInterruptible(
        this.poll.queue,
        () => listener.backlog.length > 0 || listener.state !== 'listening',
        { what: `a connection on ${listener.path}` },
      );
      if (listener.state !== 'listening')
        throw new KernelError('EINVAL', `accept on ${listener.path}: socket closed`);
    }
    const server = listener.backlog.shift()!;
    server.listener = undefined;
    this.poll.wake(); // room in the backlog for blocked connectors
    this.env.trace.emit('unix', 'accept', { path: listener.path });
    return this.fileFor(server);
  }

  /** The socket behind a file, or ENOTSOCK. */
  socketOf(file: File, op: string): UnixSocket {
    if (!(file.private instanceof UnixSocket) || file.ops !== this.ops) {
      throw new KernelError('ENOTSOCK', `${op} ${file.describe()}`);
    }
    return file.private;
  }

  /** Names bound to sockets matching a glob (tap-ctl list: `/var/run/blktap-control/ctl*`). */
  boundPaths(pattern: string): BoundSocketInfo[] {
    return this.ns
      .glob(pattern)
      .map((path) => ({ path, node: this.ns.lookup(path) }))
      .filter(({ node }) => node.kind === 'sock')
      .map(({ path, node }) => {
        const sock = (node as { socket: unknown }).socket as UnixSocket | undefined;
        const listening = sock !== undefined && sock.state === 'listening';
        return { path, listening, pending: listening ? sock.backlog.length : 0 };
      });
  }

  private pair(listener: UnixSocket): File {
    const client = new UnixSocket('connected', 'client', listener.path);
    const server = new UnixSocket('connected', 'server', listener.path);
    client.peer = server;
    server.peer = client;
    server.listener = listener;
    listener.backlog.push(server);
    this.env.trace.emit('unix', 'connect', { path: listener.path, pending: listener.backlog.length });
    this.poll.wake();
    return this.fileFor(client);
  }

  private fileFor(sock: UnixSocket): File {
    const file = new File(sock.role === 'listener' ? sock.path : `socket:[${sock.id}]`, this.ops, {
      read: true,
      write: true,
    });
    file.private = sock;
    sock.file = file;
    return file;
  }

  private async read(file: File, sock: UnixSocket): Promise<Uint8Array | null> {
    if (sock.state === 'listening') throw new KernelError('ENOTCONN', `read ${sock.describe()}`);
    for (;;) {
      if (sock.pendingError !== undefined) {
        const code = sock.pendingError;
        sock.pendingError = undefined;
        throw new KernelError(code, `read ${sock.describe()}`);
      }
      const message = sock.recvQueue.shift();
      if (message !== undefined) return message;
      if (sock.peerGone || sock.state === 'closed') return null;
      if (file.nonblocking) throw new KernelError('EAGAIN', `read ${sock.describe()}: no message`);
      await this.waits.waitInterruptible(this.poll.queue, () => sock.readiness().readable, {
        what: `a message on ${sock.describe()}`,
        holders: () => sock.peerHolders(),
      });
    }
  }

  private async write(sock: UnixSocket, data: Uint8Array): Promise<number> {
    if (sock.state === 'listening') throw new KernelError('ENOTCONN', `write ${sock.describe()}`);
    const peer = sock.peer;
    if (sock.peerGone || peer === undefined || peer.state === 'closed') {
      throw new KernelError('EPIPE', `write ${sock.describe()}: the other end is closed`);
    }
    peer.recvQueue.push(data.slice());
    this.poll.wake();
    return data.length;
  }

  /** unix_release_sock() */
  private release(sock: UnixSocket): void {
    const wasListening = sock.state === 'listening';
    sock.state = 'closed';
    if (wasListening) {
      if (this.ns.exists(sock.path)) {
        const node = this.ns.lookup(sock.path);
        if (node.kind === 'sock' && node.socket === sock) node.socket = undefined;
      }
      const dropped = sock.backlog.splice(0);
      for (const server of dropped) {
        server.listener = undefined;
        this.releaseConnected(server, true);
      }
      this.env.trace.emit('unix', 'close-listener', { path: sock.path, dropped: dropped.length });
    } else {
      this.releaseConnected(sock, false);
    }
    this.poll.wake();
  }

  private releaseConnected(sock: UnixSocket, embryo: boolean): void {
    sock.state = 'closed';
    const peer = sock.peer;
    if (peer !== undefined && peer.state !== 'closed') {
      peer.peerGone = true;
      // Unread data or a never-accepted connection resets the other end (net/unix/af_unix.c).
      if (embryo || sock.recvQueue.length > 0) peer.pendingError = 'ECONNRESET';
    }
    sock.recvQueue.length = 0;
  }
}
