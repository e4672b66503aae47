import { describe, expect, it } from 'vitest';
import { REQ_RING, RSP_RING, XsRingOffset, XsRingPage } from '../../drivers/xenbus/xs-ring-page.js';
import {
  encodeMessage,
  nulStrings,
  writePayload,
  XsFrameParser,
  type XsMessage,
  XsType,
} from '../../drivers/xenbus/xs-wire.js';
import type { Env } from '../../emulator/runtime/engine.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import { XenstoreDaemon } from '../../emulator/xenstored/daemon.js';
import { XenstoredRingTransport } from '../../emulator/xenstored/ring-transport.js';

interface Rig {
  env: Env;
  daemon: XenstoreDaemon;
  transport: XenstoredRingTransport;
  page: XsRingPage;
  notified: () => number;
  /** Guest side by hand: put bytes in the request ring and kick, waiting for room as needed. */
  send(bytes: Uint8Array): Promise<void>;
  /** Take everything in the response ring (and kick, as a reader does). */
  take(): XsMessage[];
  settle(): Promise<void>;
}

/** The daemon side alone, driven byte by byte from the controller task (sim, one thread). */
async function withRig(body: (rig: Rig) => Promise<void>): Promise<void> {
  const engine = createSimEngine({ seed: 3 });
  const r = await engine.run(async (ctl) => {
    const env = ctl.env;
    const daemon = new XenstoreDaemon();
    const admin = daemon.connect({ domid: 0, send: () => true });
    admin.request(XsType.MKDIR, '/local/domain/5\0');
    admin.request(XsType.SET_PERMS, '/local/domain/5\0n5\0');
    const transport = new XenstoredRingTransport(env, daemon);
    transport.start();
    const page = new XsRingPage(new Uint8Array(new SharedArrayBuffer(4096)));
    let notified = 0;
    transport.addDomain({ domid: 5, page: page.bytes, notify: () => notified++ });
    const framer = new XsFrameParser();
    await body({
      env,
      daemon,
      transport,
      page,
      notified: () => notified,
      async send(bytes) {
        let off = 0;
        for (let i = 0; off < bytes.length; i++) {
          if (i > 10) throw new Error('request ring never drained');
          off += page.produce(REQ_RING, bytes.subarray(off));
          transport.onEvent();
          if (off < bytes.length) await env.sleep(1);
        }
      },
      take() {
        const got = framer.push(page.consume(RSP_RING));
        transport.onEvent();
        return got;
      },
      settle: () => env.sleep(1),
    });
  });
  if (r.outcome !== 'completed')
    throw r.error ?? new Error(`run ended ${r.outcome}: ${JSON.stringify(r.stalls)}`);
}

const text = (m: XsMessage) => new TextDecoder().decode(m.payload);

describe('xenstored ring transport (daemon side)', () => {
  it('publishes features and connection state, and answers a request split mid-header', async () => {
    await withRig(async (rig) => {
      expect(rig.page.load(XsRingOffset.SERVER_FEATURES)).toBe(2); // XENSTORE_SERVER_FEATURE_ERROR
      expect(rig.page.load(XsRingOffset.CONNECTION)).toBe(0); // XENSTORE_CONNECTED
      const msg = encodeMessage({ type: XsType.WRITE, reqId: 77, txId: 0, payload: writePayload('k', 'v') });
      await rig.send(msg.subarray(0, 7));
      await rig.settle();
      expect(rig.page.used(RSP_RING)).toBe(0);
      expect(rig.page.used(REQ_RING)).toBe(0); // consumed, held as a partial message
      await rig.send(msg.subarray(7));
      await rig.settle();
      const [reply] = rig.take();
      expect(reply).toMatchObject({ type: XsType.WRITE, reqId: 77, txId: 0 });
      expect(text(reply!)).toBe('OK\0');
      expect(rig.notified()).toBeGreaterThanOrEqual(3);
    });
  });

  it('waits for room when the response ring is full and resumes when the guest reads', async () => {
    await withRig(async (rig) => {
      const value = 'z'.repeat(1500);
      await rig.send(
        encodeMessage({ type: XsType.WRITE, reqId: 1, txId: 0, payload: writePayload('big', value) }),
      );
      await rig.settle();
      expect(rig.take().map((m) => m.reqId)).toEqual([1]);
      for (let id = 2; id <= 5; id++)
        await rig.send(encodeMessage({ type: XsType.READ, reqId: id, txId: 0, payload: nulStrings('big') }));
      await rig.settle();
      // 4 x 1516 bytes of replies do not fit: the ring is full and the transport waits.
      expect(rig.page.free(RSP_RING)).toBe(0);
      const got: XsMessage[] = [];
      for (let i = 0; i < 20 && got.length < 4; i++) {
        got.push(...rig.take());
        await rig.settle();
      }
      expect(got.map((m) => m.reqId)).toEqual([2, 3, 4, 5]);
      for (const m of got) expect(text(m)).toBe(value);
    });
  });

  it('a message longer than 4096 bytes gets XENSTORE_ERROR_PROTO and the ring is no longer served', async () => {
    await withRig(async (rig) => {
      const h = encodeMessage({ type: XsType.READ, reqId: 9, txId: 0, payload: new Uint8Array(0) });
      new DataView(h.buffer).setUint32(12, 5000, true);
      await rig.send(h);
      await rig.settle();
      expect(rig.page.load(XsRingOffset.ERROR)).toBe(3);
      await rig.send(encodeMessage({ type: XsType.READ, reqId: 10, txId: 0, payload: nulStrings('k') }));
      await rig.settle();
      expect(rig.page.used(RSP_RING)).toBe(0);
      expect(rig.page.used(REQ_RING)).toBeGreaterThan(0);
    });
  });

  it('corrupt request indices get XENSTORE_ERROR_RINGIDX', async () => {
    await withRig(async (rig) => {
      rig.page.store(XsRingOffset.REQ_PROD, 5000);
      rig.transport.onEvent();
      await rig.settle();
      expect(rig.page.load(XsRingOffset.ERROR)).toBe(2);
      expect(rig.page.load(XsRingOffset.REQ_CONS)).toBe(0);
    });
  });

  it('RELEASE stops serving the domain without flagging an error', async () => {
    await withRig(async (rig) => {
      rig.daemon.introduceDomain(5, 5n, 1);
      expect(rig.transport.domains()).toEqual([5]);
      rig.daemon.releaseDomain(5);
      expect(rig.transport.domains()).toEqual([]);
      expect(rig.page.load(XsRingOffset.ERROR)).toBe(0);
    });
  });
});
