/**
 * The xapi-project/blktap control (drivers/tapdisk-control.c, 2010+): unlike Xen's in-tree copy, which
 * serves one accepted connection to the end, it keeps a table of up to TD_CTL_MAX_CONNECTIONS accepted
 * connections. Each one's read event is polled by the event loop; its request is handled when it is
 * readable, and the reply goes to the connection's output buffer, sent by the next loop pass — or, when
 * the handler ended the server (DETACH of the last VBD), by tapdisk_control_close() at exit, which
 * drains the table from the last connection to the first.
 *
 * Teardown C17: a connection accepted but not yet read when the last VBD goes has no reply (`out.done`
 * is 0). Before 2132029 (CA-86426, 2012-08-08) the drain asserted `conn->out.done` and tapdisk aborted,
 * losing the replies not yet sent and leaving its socket file; after it such connections are dropped.
 * Simplification: the 10 s receive timeout of an idle accepted connection is not modelled.
 */
import { isKernelError } from '../kernel/errno.js';
import { type ControlConn, receiveAndDispatch } from './control.js';
import { TapdiskCrash } from './crash.js';
import type { TapdiskServer } from './server.js';

/** TD_CTL_MAX_CONNECTIONS */
export const TD_CTL_MAX_CONNECTIONS = 10;

class XapiConn implements ControlConn {
  /** 'awaiting': accepted, request not read; 'busy': in its handler; 'done': reply complete (out.done). */
  state: 'awaiting' | 'busy' | 'done' = 'awaiting';
  readonly out: Uint8Array[] = [];

  constructor(
    private readonly control: XapiControl,
    readonly fd: number,
  ) {}

  async send(bytes: Uint8Array): Promise<void> {
    this.out.push(bytes);
  }

  /** tapdisk_ctl_conn_send_buf() until empty. */
  async flush(): Promise<void> {
    const s = this.control.server;
    while (this.out.length > 0) {
      const bytes = this.out.shift()!;
      try {
        await s.proc.write(this.fd, bytes);
      } catch (e) {
        if (!isKernelError(e)) throw e;
        s.trace('reply-failed', { fd: this.fd, error: e.code });
        this.out.length = 0;
      }
    }
  }
}

export class XapiControl {
  /** td_control.conn[0 .. n_conn): accepted connections in accept order. */
  private readonly conns: XapiConn[] = [];

  constructor(readonly server: TapdiskServer) {}

  /** Accepted connections still open (for tests and `ps`-style inspection). */
  get connections(): number {
    return this.conns.length;
  }

  /** What the loop polls for reading: the listener (masked when the table is full) and each request. */
  readFds(): number[] {
    const fds = this.conns.filter((c) => c.state === 'awaiting').map((c) => c.fd);
    if (this.conns.length < TD_CTL_MAX_CONNECTIONS) fds.unshift(this.server.listenFd);
    return fds;
  }

  /**
   * Runs the control events a select() found ready, in registration order: the listener's accept, then
   * each connection's request. Re-entrant: a handler iterating the loop (DETACH's REMOVE_DEVICE retry)
   * comes back here; a connection is handled once.
   */
  async handleReady(ready: readonly number[]): Promise<void> {
    const s = this.server;
    const readable = this.conns.filter((c) => c.state === 'awaiting' && ready.includes(c.fd));
    if (ready.includes(s.listenFd) && this.conns.length < TD_CTL_MAX_CONNECTIONS) {
      const fd = await s.proc.accept(s.listenFd);
      this.conns.push(new XapiConn(this, fd));
      s.trace('control-accept', { fd, connections: this.conns.length });
    }
    for (const conn of readable) {
      if (conn.state !== 'awaiting') continue;
      conn.state = 'busy';
      await receiveAndDispatch(s, conn);
      conn.state = 'done';
      // The reply leaves on the next pass of the loop, if there is one; else the exit drain sends it.
      if (s.run) await this.close(conn, true);
    }
  }

  /** tapdisk_control_close(): drain every connection, last accepted first. */
  async drain(): Promise<void> {
    const s = this.server;
    while (this.conns.length > 0) {
      const conn = this.conns[this.conns.length - 1]!;
      if (conn.state !== 'done') {
        if (s.options.controlExit === '2012-07') {
          throw new TapdiskCrash(
            'SIGABRT',
            "tapdisk-control.c: Assertion 'conn->out.done' failed",
            `tapdisk_ctl_conn_drain at exit: connection fd ${conn.fd} was accepted but its request never read`,
          );
        }
        s.trace('control-drop', { fd: conn.fd });
        await this.close(conn, false);
        continue;
      }
      await this.close(conn, true);
    }
  }

  private async close(conn: XapiConn, flush: boolean): Promise<void> {
    if (flush) await conn.flush();
    const i = this.conns.indexOf(conn);
    if (i >= 0) this.conns.splice(i, 1);
    await this.server.proc.close(conn.fd).catch((e: unknown) => {
      if (!isKernelError(e)) throw e;
    });
  }
}
