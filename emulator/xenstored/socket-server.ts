/**
 * The Unix-socket transport (tools/xenstored/posix.c): every client of the socket is a dom0 connection,
 * privileged, speaking the same framed protocol as the rings. This is what libxenstore uses when
 * XENSTORED_PATH names the socket, so Xen's own xenstore-* tools work against the daemon.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import type { XenstoreConnection } from './connection.js';
import type { XenstoreDaemon } from './daemon.js';

export interface XsSocketServer {
  readonly path: string;
  /** Stop listening, drop every client and remove the socket file. */
  close(): Promise<void>;
  /** Number of connected clients. */
  readonly clients: number;
}

export interface SocketServerOptions {
  /** Called with one line per connect/disconnect (for --verbose). */
  log?: (line: string) => void;
  /**
   * Runs each piece of work on the daemon (a connect, the bytes of a read, a disconnect) in order.
   * Default: at once, from the socket's event. A daemon inside a sim run passes work to its controller
   * instead, so requests mutate the store inside a task and the scheduler sees the watches they fire.
   */
  dispatch?: (work: () => void) => void;
}

/** Remove a leftover socket file (a previous daemon that did not clean up); refuse to remove anything else. */
function removeStaleSocket(path: string): void {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; choose another --socket path`);
  unlinkSync(path);
}

export async function listenXenstoreSocket(
  daemon: XenstoreDaemon,
  path: string,
  options: SocketServerOptions = {},
): Promise<XsSocketServer> {
  removeStaleSocket(path);
  const sockets = new Set<net.Socket>();
  let clientSeq = 0;
  const dispatch = options.dispatch ?? ((work: () => void) => work());
  const server = net.createServer((socket) => {
    const label = `socket#${++clientSeq}`;
    let clientGone = false;
    let conn: XenstoreConnection | undefined;
    sockets.add(socket);
    dispatch(() => {
      if (clientGone) return;
      conn = daemon.connect({
        domid: 0,
        privileged: true,
        label,
        // The kernel buffers what write() cannot send now, so every message counts as taken.
        send: (msg) => {
          if (!socket.destroyed) socket.write(msg);
          return true;
        },
        onClose: (reason) => {
          if (!clientGone) options.log?.(`${label}: closed by xenstored (${reason})`);
          socket.destroy();
        },
      });
      options.log?.(`${label}: connected`);
    });
    socket.on('data', (chunk: Buffer) => {
      // A copy: deferred work must not see the chunk's memory reused.
      const bytes = new Uint8Array(chunk);
      dispatch(() => {
        if (conn !== undefined && !conn.closed) conn.receive(bytes);
      });
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      clientGone = true;
      dispatch(() => {
        if (conn !== undefined && !conn.closed) {
          daemon.disconnect(conn, 'client closed the socket');
          options.log?.(`${label}: disconnected`);
        }
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    path,
    get clients() {
      return sockets.size;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          try {
            unlinkSync(path);
          } catch {
            // net.Server.close already removed it.
          }
          resolve();
        });
      }),
  };
}

export interface ExposeOptions extends SocketServerOptions {
  /** Signals after which the socket file is removed; default SIGINT and SIGTERM. */
  signals?: readonly NodeJS.Signals[];
  /**
   * Called after the socket is closed on a signal. Default: raise the signal again with our handlers
   * gone, so the process ends as it would have without us.
   */
  onSignal?: (signal: NodeJS.Signals) => void;
}

/**
 * Serve `daemon` on a Unix socket for the lifetime of a command (`xenpv xenstored --socket PATH`,
 * `xenpv run FILE --xenstore-socket PATH`): Xen's xenstore-* tools reach it with XENSTORED_PATH=PATH.
 * SIGINT/SIGTERM close it and remove the socket file before the process ends; so does process exit,
 * and so does `close()`, which also withdraws the signal handlers.
 */
export async function exposeXenstoreSocket(
  daemon: XenstoreDaemon,
  path: string,
  options: ExposeOptions = {},
): Promise<XsSocketServer> {
  const server = await listenXenstoreSocket(daemon, path, options);
  const signals = options.signals ?? (['SIGINT', 'SIGTERM'] as const);
  let closing: Promise<void> | undefined;
  const unlinkNow = () => {
    // 'exit' handlers cannot wait: remove the file synchronously if close() has not run.
    if (closing) return;
    try {
      unlinkSync(path);
    } catch {
      // Already gone.
    }
  };
  const detach = () => {
    for (const sig of signals) process.off(sig, onSignal);
    process.off('exit', unlinkNow);
  };
  const close = (): Promise<void> => {
    closing ??= (async () => {
      detach();
      await server.close();
    })();
    return closing;
  };
  function onSignal(signal: NodeJS.Signals): void {
    options.log?.(`${signal}: removing ${path}`);
    void close().then(() => {
      if (options.onSignal) options.onSignal(signal);
      else process.kill(process.pid, signal);
    });
  }
  for (const sig of signals) process.on(sig, onSignal);
  process.on('exit', unlinkNow);
  return {
    path: server.path,
    get clients() {
      return server.clients;
    },
    close,
  };
}
