/**
 * xenstore is byte-transparent for values and watch tokens (C xenstored copies them as raw bytes): every
 * byte a client sends comes back identical, over the shared ring and over the direct (socket) transport.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DirectTransport } from '../../drivers/xenbus/direct-transport.js';
import type { XsTransport } from '../../drivers/xenbus/transport.js';
import { XsRingClientTransport } from '../../drivers/xenbus/xs-ring.js';
import {
  concatBytes,
  encodeMessage,
  latin1Bytes,
  latin1String,
  nulStrings,
  XsType,
} from '../../drivers/xenbus/xs-wire.js';
import type { Env } from '../../emulator/runtime/engine.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import { XsClient } from '../../emulator/xenstored/client.js';
import { XenstoreDaemon } from '../../emulator/xenstored/daemon.js';
import { XenstoredRingTransport } from '../../emulator/xenstored/ring-transport.js';

type Kind = 'ring' | 'direct';

interface Seen {
  replies: Map<number, { type: number; payload: Uint8Array }>;
  events: Uint8Array[];
}

/** Requests at the wire level on a transport, so what comes back is compared byte for byte. */
class WireUser {
  private nextReq = 1;
  readonly seen: Seen = { replies: new Map(), events: [] };
  private readonly q;

  constructor(
    private readonly env: Env,
    private readonly transport: XsTransport,
  ) {
    this.q = env.waitQueue('test: replies');
    transport.attach(
      (m) => {
        if (m.type === XsType.WATCH_EVENT) this.seen.events.push(m.payload);
        else this.seen.replies.set(m.reqId, m);
        this.q.wakeAll();
      },
      (e) => {
        throw e;
      },
    );
  }

  async call(type: number, payload: Uint8Array): Promise<{ type: number; payload: Uint8Array }> {
    const reqId = this.nextReq++;
    await this.transport.send(encodeMessage({ type, reqId, txId: 0, payload }));
    await this.env.wait(this.q, () => this.seen.replies.has(reqId), { what: `test: reply ${reqId}` });
    return this.seen.replies.get(reqId)!;
  }

  async events(n: number): Promise<Uint8Array[]> {
    await this.env.wait(this.q, () => this.seen.events.length >= n, { what: `test: ${n} watch events` });
    return this.seen.events;
  }
}

interface RoundTrip {
  read: Uint8Array;
  events: Uint8Array[];
}

/** WRITE `value` under a WATCH with `token` and READ it back, as dom5 over the chosen transport. */
async function roundTrip(kind: Kind, value: Uint8Array, token: Uint8Array): Promise<RoundTrip> {
  const engine = createSimEngine({ seed: 7 });
  try {
    const r = await engine.run(async (ctl) => {
      const env = ctl.env;
      const daemon = new XenstoreDaemon();
      const admin = new XsClient(daemon.connect({ domid: 0, send: () => true }));
      admin.mkdir('/local/domain/5');
      admin.setPerms('/local/domain/5', [{ id: 5, perm: 'n' }]);
      let transport: XsTransport;
      if (kind === 'ring') {
        const served = new XenstoredRingTransport(env, daemon);
        served.start();
        const page = new Uint8Array(new SharedArrayBuffer(4096));
        const ring = new XsRingClientTransport(env, { page, notify: () => served.onEvent() });
        served.addDomain({ domid: 5, page, notify: () => ring.onEvent() });
        transport = ring;
      } else {
        transport = new DirectTransport(daemon, { domid: 5, privileged: false });
      }
      const user = new WireUser(env, transport);
      const watch = await user.call(XsType.WATCH, nulStrings('data', token));
      expect(latin1String(watch.payload)).toBe('OK\0');
      const write = await user.call(XsType.WRITE, concatBytes(nulStrings('data/v'), value));
      expect(latin1String(write.payload)).toBe('OK\0');
      const read = await user.call(XsType.READ, nulStrings('data/v'));
      expect(read.type).toBe(XsType.READ);
      return { read: read.payload, events: await user.events(2) };
    });
    if (r.outcome !== 'completed') throw r.error ?? new Error(`run ended ${r.outcome}`);
    return r.value!;
  } finally {
    await engine.close();
  }
}

const bytes = (max: number) => fc.uint8Array({ minLength: 0, maxLength: max });
/** A token is a NUL-terminated string on the wire, so any byte but NUL. */
const tokenBytes = fc.uint8Array({ minLength: 1, maxLength: 40, min: 1, max: 255 });

describe('xenstore byte transparency', () => {
  for (const kind of ['ring', 'direct'] as const) {
    it(`values and watch tokens round-trip byte for byte (${kind} transport)`, async () => {
      await fc.assert(
        fc.asyncProperty(bytes(1800), tokenBytes, async (value, token) => {
          const got = await roundTrip(kind, value, token);
          expect([...got.read]).toEqual([...value]);
          // The registration event, then the write's: path and token, each NUL-terminated.
          expect(got.events.map((e) => [...e])).toEqual([
            [...nulStrings('data', token)],
            [...nulStrings('data/v', token)],
          ]);
        }),
        { numRuns: 60 },
      );
    });
  }

  it('the bytes 0x80-0x9f and 0xff survive (they broke under a windows-1252 reading)', async () => {
    const token = new Uint8Array([0x80, 0x81, 0x9f, 0xff, 0x41]);
    const value = new Uint8Array([0xff, 0x00, 0x80, 0xc3, 0xbf]);
    const got = await roundTrip('ring', value, token);
    expect([...got.read]).toEqual([...value]);
    expect([...got.events[1]]).toEqual([...nulStrings('data/v', token)]);
  });

  it('latin1String and latin1Bytes are exact inverses; a char above U+00FF is refused with its index', () => {
    fc.assert(
      fc.property(bytes(5000), (b) => {
        expect([...latin1Bytes(latin1String(b))]).toEqual([...b]);
      }),
    );
    expect(() => latin1Bytes('ab\u20ac')).toThrow(/char 2 .*U\+20AC/);
  });
});
