import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  decodeHeader,
  latin1String,
  nulStrings,
  writePayload,
  XsType,
} from '../../drivers/xenbus/xs-wire.js';
import { XenstoreDaemon } from '../../emulator/xenstored/daemon.js';
import {
  exposeXenstoreSocket,
  listenXenstoreSocket,
  type XsSocketServer,
} from '../../emulator/xenstored/socket-server.js';

const run = promisify(execFile);

/** A client written from the wire spec: 16-byte LE header {type, req_id, tx_id, len}, then the payload. */
class WireClient {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  readonly messages: { type: number; reqId: number; txId: number; payload: string }[] = [];
  constructor(private readonly sock: net.Socket) {
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 16) {
        const h = decodeHeader(new Uint8Array(this.buf.buffer, this.buf.byteOffset, 16));
        if (this.buf.length < 16 + h.len) break;
        this.messages.push({
          type: h.type,
          reqId: h.reqId,
          txId: h.txId,
          payload: latin1String(this.buf.subarray(16, 16 + h.len)),
        });
        this.buf = this.buf.subarray(16 + h.len);
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }
  static connect(path: string): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(path, () => resolve(new WireClient(s)));
      s.once('error', reject);
    });
  }
  send(type: number, payload: Uint8Array, reqId: number, txId = 0): void {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(type, 0);
    h.writeUInt32LE(reqId, 4);
    h.writeUInt32LE(txId, 8);
    h.writeUInt32LE(payload.length, 12);
    this.sock.write(Buffer.concat([h, payload]));
  }
  async waitFor(n: number): Promise<void> {
    while (this.messages.length < n) await new Promise<void>((r) => this.waiters.push(r));
  }
  close(): void {
    this.sock.destroy();
  }
}

let dir: string;
let server: XsSocketServer;
let xs: XenstoreDaemon;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xenpv-xs-'));
  xs = new XenstoreDaemon();
  server = await listenXenstoreSocket(xs, join(dir, 'socket'));
});

afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('xenstored Unix socket', () => {
  it('serves privileged clients with the framed protocol; replies echo req_id and tx_id', async () => {
    const c = await WireClient.connect(server.path);
    c.send(XsType.WRITE, writePayload('/a/b', 'hi'), 7);
    c.send(XsType.READ, nulStrings('/a/b'), 8);
    c.send(XsType.WATCH, nulStrings('/a', 'tok'), 9);
    c.send(XsType.TRANSACTION_START, nulStrings(''), 10);
    await c.waitFor(5);
    c.send(XsType.WRITE, writePayload('/a/c', '1'), 11, 1);
    c.send(XsType.TRANSACTION_END, nulStrings('T'), 12, 1);
    await c.waitFor(8);
    expect(c.messages).toEqual([
      { type: XsType.WRITE, reqId: 7, txId: 0, payload: 'OK\0' },
      { type: XsType.READ, reqId: 8, txId: 0, payload: 'hi' },
      { type: XsType.WATCH, reqId: 9, txId: 0, payload: 'OK\0' },
      { type: XsType.WATCH_EVENT, reqId: 0, txId: 0, payload: '/a\0tok\0' },
      { type: XsType.TRANSACTION_START, reqId: 10, txId: 0, payload: '1\0' },
      { type: XsType.WRITE, reqId: 11, txId: 1, payload: 'OK\0' },
      { type: XsType.WATCH_EVENT, reqId: 0, txId: 0, payload: '/a/c\0tok\0' },
      { type: XsType.TRANSACTION_END, reqId: 12, txId: 1, payload: 'OK\0' },
    ]);
    c.close();
  });

  it('drops a client that sends an oversize header and keeps serving others', async () => {
    const bad = await WireClient.connect(server.path);
    const good = await WireClient.connect(server.path);
    const closed = new Promise<void>((r) =>
      (bad as unknown as { sock: net.Socket }).sock.on('close', () => r()),
    );
    bad.send(XsType.READ, new Uint8Array(5000), 1);
    await closed;
    good.send(XsType.GET_DOMAIN_PATH, nulStrings('3'), 2);
    await good.waitFor(1);
    expect(good.messages[0].payload).toBe('/local/domain/3\0');
    good.close();
  });

  it('removes the socket file on close', async () => {
    expect(existsSync(server.path)).toBe(true);
    await server.close();
    expect(existsSync(server.path)).toBe(false);
    server = await listenXenstoreSocket(xs, join(dir, 'socket'));
  });
});

describe('exposeXenstoreSocket (for xenpv xenstored and xenpv run --xenstore-socket)', () => {
  it('serves, and SIGTERM closes it, removes the socket file and withdraws its handlers', async () => {
    const before = process.listenerCount('SIGTERM');
    const signalled: string[] = [];
    const path = join(dir, 'exposed');
    let done!: () => void;
    const after = new Promise<void>((r) => (done = r));
    const s = await exposeXenstoreSocket(xs, path, {
      onSignal: (sig) => {
        signalled.push(sig);
        done();
      },
    });
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    const c = await WireClient.connect(path);
    c.send(XsType.GET_DOMAIN_PATH, nulStrings('4'), 1);
    await c.waitFor(1);
    expect(c.messages[0].payload).toBe('/local/domain/4\0');
    process.emit('SIGTERM', 'SIGTERM');
    await after;
    expect(signalled).toEqual(['SIGTERM']);
    expect(existsSync(path)).toBe(false);
    expect(process.listenerCount('SIGTERM')).toBe(before);
    await s.close(); // idempotent
  });

  it('close() removes the file and the SIGINT handler', async () => {
    const before = process.listenerCount('SIGINT');
    const path = join(dir, 'exposed2');
    const s = await exposeXenstoreSocket(xs, path);
    expect(existsSync(path)).toBe(true);
    await s.close();
    expect(existsSync(path)).toBe(false);
    expect(process.listenerCount('SIGINT')).toBe(before);
  });
});

const TOOLS = [
  'xenstore-write',
  'xenstore-read',
  'xenstore-ls',
  'xenstore-list',
  'xenstore-exists',
  'xenstore-rm',
  'xenstore-chmod',
  'xenstore-watch',
];
const missingTool = TOOLS.find(
  (t) => !['/usr/bin', '/usr/sbin', '/usr/local/bin'].some((d) => existsSync(join(d, t))),
);
if (missingTool)
  console.warn(
    `skipping the Xen xenstore-* tools test: ${missingTool} is not installed (Debian package xenstore-utils)`,
  );

describe('Xen xenstore-* tools against the socket', () => {
  it.skipIf(missingTool !== undefined)('write, read, ls, list, exists, chmod, rm, watch', async () => {
    const env = { ...process.env, XENSTORED_PATH: server.path };
    const xsTool = (tool: string, ...args: string[]) => run(tool, args, { env, timeout: 10_000 });
    await xsTool('xenstore-write', '/vm/x', 'one', '/vm/y/z', 'two');
    expect((await xsTool('xenstore-read', '/vm/x')).stdout).toBe('one\n');
    expect((await xsTool('xenstore-list', '/vm')).stdout).toBe('x\ny\n');
    expect((await xsTool('xenstore-ls', '/vm')).stdout).toBe('x = "one"\ny = ""\n z = "two"\n');
    await xsTool('xenstore-exists', '/vm/y');
    await expect(xsTool('xenstore-exists', '/vm/nope')).rejects.toThrow();
    await xsTool('xenstore-chmod', '/vm/y', 'n0', 'r5');
    expect(xs.peek('/vm/y')?.perms).toEqual([
      { id: 0, perm: 'n' },
      { id: 5, perm: 'r' },
    ]);
    expect((await xsTool('xenstore-ls', '-p', '/vm/y')).stdout).toMatch(/z = "two".*\(n0\)/);
    await xsTool('xenstore-rm', '/vm/y');
    await expect(xsTool('xenstore-read', '/vm/y/z')).rejects.toThrow();
    // xenstore-watch prints the initial event, then one per change; -n 2 makes it exit after two.
    const watch = xsTool('xenstore-watch', '-n', '2', '/vm/w');
    // Write only once the tool's watch is registered in the daemon (not after a fixed delay).
    while (!xs.listWatches().some((w) => w.path === '/vm/w')) await new Promise((r) => setImmediate(r));
    await xsTool('xenstore-write', '/vm/w/k', 'v');
    expect((await watch).stdout).toBe('/vm/w\n/vm/w/k\n');
  });

  it.skipIf(missingTool !== undefined)(
    'values are bytes: xenstore-read -R gives back exactly what was written',
    async () => {
      const env = { ...process.env, XENSTORED_PATH: server.path };
      const c = await WireClient.connect(server.path);
      const value = new Uint8Array([0xff, 0x80, 0x01, 0x41, 0xc3]);
      c.send(XsType.WRITE, writePayload('/vm/bin', value), 1);
      await c.waitFor(1);
      c.close();
      const raw = await run('xenstore-read', ['-R', '/vm/bin'], { env, encoding: 'buffer', timeout: 10_000 });
      expect([...raw.stdout]).toEqual([...value]);
      // Without -R the tool escapes what is not printable (hex above 0x7f, octal for controls).
      const escaped = await run('xenstore-read', ['/vm/bin'], { env, timeout: 10_000 });
      expect(escaped.stdout).toBe('\\xff\\x80\\001A\\xc3\n');
    },
  );
});
