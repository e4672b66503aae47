/**
 * `xenpv run FILE --xenstore-socket PATH`: after the steps, dom0's xenstore daemon answers on a Unix
 * socket, so Xen's own tools work against the scenario's store (`XENSTORED_PATH=PATH xenstore-ls`).
 * Every piece of socket work (a connect, the bytes of a read, a disconnect) is queued in an inbox and
 * run by the controller: requests change the store inside a task, the watches they fire wake the
 * machine's tasks through the scheduler, and what runs depends only on the order of the requests.
 * Sim only: under threads the daemon lives in dom0's worker thread.
 */
import { existsSync, lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Machine } from '../../machine/machine.js';
import type { Controller } from '../../runtime/engine.js';
import { ExternalInbox } from '../../runtime/external-inbox.js';
import { exposeXenstoreSocket, type XsSocketServer } from '../../xenstored/socket-server.js';

type RelayInput =
  | { kind: 'work'; work: () => void }
  | { kind: 'listening' }
  | { kind: 'failed'; error: Error };

export interface RelayHooks {
  /** The socket listens (called from the controller once, after the steps). */
  listening?: (path: string) => void;
  /** One line per client connect/disconnect. */
  log?: (line: string) => void;
}

/** Refuses a path the socket cannot take, before anything runs; a leftover socket file is fine. */
export function checkXenstoreSocketPath(path: string): void {
  if (path === '') throw new Error('--xenstore-socket: give a path for the Unix socket');
  const dir = dirname(path);
  if (!existsSync(dir)) throw new Error(`--xenstore-socket ${path}: directory ${dir} does not exist`);
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // absent: fine
  }
  if (!isSocket)
    throw new Error(`--xenstore-socket ${path}: the path exists and is not a socket; pick another`);
}

export class XenstoreSocketRelay {
  private readonly inbox = new ExternalInbox<RelayInput>();
  private server: Promise<XsSocketServer | undefined> | undefined;
  /** The socket listened at some point of the run. */
  listened = false;
  private readonly stopOnSignal = () => this.stop();

  constructor(
    readonly path: string,
    private readonly hooks: RelayHooks = {},
  ) {
    process.once('SIGINT', this.stopOnSignal);
    process.once('SIGTERM', this.stopOnSignal);
  }

  /** Ends the serving: the controller's loop returns once the queued work has run. */
  stop(): void {
    this.inbox.close();
  }

  /**
   * The controller's part (or a host task's): listen with the machine's daemon, then run the socket's
   * work until `stop()`. Returns without awaiting anything outside the engine; `close()` does that.
   */
  async serve(ctl: Controller, machine: Machine): Promise<void> {
    if (ctl.receive === undefined)
      throw new Error('not implemented: --xenstore-socket with an engine that has no receive');
    const daemon = machine.xenstored();
    const push = (item: RelayInput) => {
      if (!this.inbox.closed) this.inbox.push(item);
    };
    this.server = exposeXenstoreSocket(daemon, this.path, {
      signals: [],
      dispatch: (work) => push({ kind: 'work', work }),
      ...(this.hooks.log !== undefined ? { log: this.hooks.log } : {}),
    }).then(
      (server) => {
        push({ kind: 'listening' });
        return server;
      },
      (error: Error) => {
        push({ kind: 'failed', error });
        return undefined;
      },
    );
    for (;;) {
      const item = await ctl.receive(this.inbox, `the next request on xenstore socket ${this.path}`);
      if (item === undefined) return;
      if (item.kind === 'failed') throw new Error(`--xenstore-socket ${this.path}: ${item.error.message}`);
      if (item.kind === 'listening') {
        this.listened = true;
        this.hooks.listening?.(this.path);
      } else item.work();
    }
  }

  /** After the run: stop listening, drop the clients, remove the socket file and the signal handlers. */
  async close(): Promise<void> {
    this.stop();
    process.off('SIGINT', this.stopOnSignal);
    process.off('SIGTERM', this.stopOnSignal);
    const server = await this.server;
    await server?.close();
  }
}
