// DirectTransport.close(): the dom0 socket connection goes away as xenstored frees a closed socket's
// connection (its watches and transactions with it), and the client sees the transport broken.
import { describe, expect, it } from 'vitest';
import { XenbusClient } from '../../drivers/xenbus/client.js';
import { DirectTransport, type XsDaemonConnector } from '../../drivers/xenbus/direct-transport.js';
import { XenstoreError } from '../../drivers/xenbus/errors.js';
import { Xenwatch } from '../../drivers/xenbus/xenwatch.js';
import type { Env } from '../../emulator/runtime/engine.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import type { XenstoreConnection } from '../../emulator/xenstored/connection.js';
import { XenstoreDaemon } from '../../emulator/xenstored/daemon.js';

/** A connector that remembers the daemon-side connections it made. */
function recording(daemon: XenstoreDaemon): XsDaemonConnector & { made: XenstoreConnection[] } {
  const made: XenstoreConnection[] = [];
  return {
    made,
    connect: (o) => {
      const c = daemon.connect(o);
      made.push(c);
      return c;
    },
    disconnect: (c, reason) => daemon.disconnect(c as XenstoreConnection, reason),
  };
}

async function inSim<T>(body: (env: Env, daemon: XenstoreDaemon) => Promise<T>): Promise<T> {
  const engine = createSimEngine({ seed: 1 });
  try {
    const r = await engine.run((ctl) => body(ctl.env, new XenstoreDaemon()));
    if (r.outcome !== 'completed') throw new Error(`run ended ${r.outcome}: ${r.error?.message}`);
    return r.value as T;
  } finally {
    await engine.close();
  }
}

async function failureOf(p: Promise<unknown>): Promise<{ code: string; message: string } | 'resolved'> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    if (!(e instanceof XenstoreError)) throw e;
    return { code: e.code, message: e.message };
  }
}

describe('DirectTransport.close', () => {
  it('drops the connection with its watches and transactions; the other connections keep theirs', async () => {
    const v = await inSim(async (env, daemon) => {
      const conn = recording(daemon);
      const xenwatch = new Xenwatch(env);
      xenwatch.start();
      const keep = new XenbusClient(env, new DirectTransport(conn, { domid: 0, privileged: true }), {
        xenwatch,
      });
      const t = new DirectTransport(conn, { domid: 0, privileged: true, label: 'xenstored socket (xl)' });
      const c = new XenbusClient(env, t, { xenwatch });
      await keep.watch('/kept', () => undefined);
      await c.watch('/a', () => undefined);
      await c.watch('@releaseDomain', () => undefined);
      await c.transactionStart();
      const before = {
        count: daemon.connectionCount,
        watches: daemon.listWatches().map((w) => w.path),
        txs: conn.made[1]!.transactions.size,
      };
      t.close();
      const after = {
        count: daemon.connectionCount,
        watches: daemon.listWatches().map((w) => w.path),
        txs: conn.made[1]!.transactions.size,
        closed: conn.made[1]!.closed,
        reason: conn.made[1]!.closeReason,
        keepReads: await keep.tryRead('/nothing'),
        transportClosed: t.closed,
      };
      return { before, after };
    });
    expect(v.before).toEqual({ count: 2, watches: ['/kept', '/a', '@releaseDomain'], txs: 1 });
    expect(v.after).toEqual({
      count: 1,
      watches: ['/kept'],
      txs: 0,
      closed: true,
      reason: 'client closed the socket',
      keepReads: undefined,
      transportClosed: true,
    });
  });

  it('requests after close fail with EIO naming the closed socket; close is idempotent', async () => {
    const v = await inSim(async (env, daemon) => {
      const t = new DirectTransport(daemon, { domid: 0, privileged: true, label: 'xenstored socket (x)' });
      const c = new XenbusClient(env, t);
      await c.write('/x', '1');
      t.close('xs_close');
      t.close('again');
      return {
        read: await failureOf(c.read('/x')),
        write: await failureOf(c.write('/x', '2')),
        count: daemon.connectionCount,
      };
    });
    expect(v.read).toEqual({
      code: 'EIO',
      message: expect.stringContaining('xenstored socket (x): closed (xs_close)'),
    });
    expect(v.write).toMatchObject({ code: 'EIO' });
    expect(v.count).toBe(0);
  });

  it('closed before attach: no connection is ever made and the client is broken at once', async () => {
    const v = await inSim(async (env, daemon) => {
      const conn = recording(daemon);
      const t = new DirectTransport(conn, { domid: 0, privileged: true });
      t.close();
      const c = new XenbusClient(env, t);
      return { made: conn.made.length, count: daemon.connectionCount, read: await failureOf(c.read('/')) };
    });
    expect(v).toEqual({
      made: 0,
      count: 0,
      read: { code: 'EIO', message: expect.stringContaining('closed') },
    });
  });

  it('a watch event queued for a closed connection is never delivered', async () => {
    const v = await inSim(async (env, daemon) => {
      const xenwatch = new Xenwatch(env);
      xenwatch.start();
      const writer = new XenbusClient(env, new DirectTransport(daemon, { domid: 0, privileged: true }));
      const t = new DirectTransport(daemon, { domid: 0, privileged: true });
      const c = new XenbusClient(env, t, { xenwatch });
      const seen: string[] = [];
      await c.watch('/w', (path) => void seen.push(path));
      await env.sleep(1);
      t.close();
      await writer.write('/w/child', 'v');
      await env.sleep(1);
      return { seen, dropped: c.droppedWatchEvents };
    });
    // Only the immediate event of the new watch.
    expect(v).toEqual({ seen: ['/w'], dropped: 0 });
  });
});
