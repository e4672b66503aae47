import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  REQ_RING,
  RSP_RING,
  XENSTORE_CONNECTED,
  XENSTORE_ERROR_COMM,
  XENSTORE_ERROR_NONE,
  XENSTORE_ERROR_PROTO,
  XENSTORE_ERROR_RINGIDX,
  XENSTORE_RECONNECT,
  XENSTORE_RING_SIZE,
  XENSTORE_SERVER_FEATURE_ERROR,
  XENSTORE_SERVER_FEATURE_RECONNECTION,
  XENSTORE_SERVER_FEATURE_WATCHDEPTH,
  XS_RING_INTERFACE_SIZE,
  XsRingIndexError,
  XsRingOffset,
  XsRingPage,
} from '../../drivers/xenbus/xs-ring-page.js';
import { encodeMessage, XsFrameParser, XsType } from '../../drivers/xenbus/xs-wire.js';

function page(): XsRingPage {
  return new XsRingPage(new Uint8Array(new SharedArrayBuffer(4096)));
}

function u32(p: XsRingPage, off: number): number {
  return new DataView(p.bytes.buffer, p.bytes.byteOffset).getUint32(off, true);
}

describe('xenstore interface page layout (xs_wire.h struct xenstore_domain_interface)', () => {
  it.each([
    ['req_cons', XsRingOffset.REQ_CONS, 2048],
    ['req_prod', XsRingOffset.REQ_PROD, 2052],
    ['rsp_cons', XsRingOffset.RSP_CONS, 2056],
    ['rsp_prod', XsRingOffset.RSP_PROD, 2060],
    ['server_features', XsRingOffset.SERVER_FEATURES, 2064],
    ['connection', XsRingOffset.CONNECTION, 2068],
    ['error', XsRingOffset.ERROR, 2072],
    ['evtchn_port', XsRingOffset.EVTCHN_PORT, 2076],
  ])('%s is a little-endian u32 at byte %i', (_name, off, expected) => {
    expect(off).toBe(expected);
    const p = page();
    p.store(off, 0x11223344);
    expect(u32(p, expected)).toBe(0x11223344);
    expect([...p.bytes.subarray(expected, expected + 4)]).toEqual([0x44, 0x33, 0x22, 0x11]);
  });

  it.each([
    ['XENSTORE_RING_SIZE', XENSTORE_RING_SIZE, 1024],
    ['sizeof(struct xenstore_domain_interface)', XS_RING_INTERFACE_SIZE, 2080],
    ['XENSTORE_SERVER_FEATURE_RECONNECTION', XENSTORE_SERVER_FEATURE_RECONNECTION, 1],
    ['XENSTORE_SERVER_FEATURE_ERROR', XENSTORE_SERVER_FEATURE_ERROR, 2],
    ['XENSTORE_SERVER_FEATURE_WATCHDEPTH', XENSTORE_SERVER_FEATURE_WATCHDEPTH, 4],
    ['XENSTORE_CONNECTED', XENSTORE_CONNECTED, 0],
    ['XENSTORE_RECONNECT', XENSTORE_RECONNECT, 1],
    ['XENSTORE_ERROR_NONE', XENSTORE_ERROR_NONE, 0],
    ['XENSTORE_ERROR_COMM', XENSTORE_ERROR_COMM, 1],
    ['XENSTORE_ERROR_RINGIDX', XENSTORE_ERROR_RINGIDX, 2],
    ['XENSTORE_ERROR_PROTO', XENSTORE_ERROR_PROTO, 3],
  ])('%s is %i as in xs_wire.h', (_name, value, expected) => {
    expect(value).toBe(expected);
  });

  it('request bytes go to req[] at 0 and response bytes to rsp[] at 1024', () => {
    const p = page();
    expect(p.produce(REQ_RING, new Uint8Array([1, 2, 3]))).toBe(3);
    expect(p.produce(RSP_RING, new Uint8Array([9, 8]))).toBe(2);
    expect([...p.bytes.subarray(0, 3)]).toEqual([1, 2, 3]);
    expect([...p.bytes.subarray(1024, 1026)]).toEqual([9, 8]);
    expect(u32(p, 2052)).toBe(3);
    expect(u32(p, 2060)).toBe(2);
    expect(u32(p, 2048)).toBe(0);
  });

  it('wraps at 1024 with free-running indices', () => {
    const p = page();
    p.store(XsRingOffset.REQ_PROD, 1020);
    p.store(XsRingOffset.REQ_CONS, 1020);
    const data = Uint8Array.from({ length: 10 }, (_, i) => i + 1);
    expect(p.produce(REQ_RING, data)).toBe(10);
    expect([...p.bytes.subarray(1020, 1024)]).toEqual([1, 2, 3, 4]);
    expect([...p.bytes.subarray(0, 6)]).toEqual([5, 6, 7, 8, 9, 10]);
    expect(u32(p, 2052)).toBe(1030);
    expect([...p.consume(REQ_RING)]).toEqual([...data]);
    expect(u32(p, 2048)).toBe(1030);
  });

  it('indices wrap past 2^32', () => {
    const p = page();
    p.store(XsRingOffset.RSP_PROD, 0xfffffffe);
    p.store(XsRingOffset.RSP_CONS, 0xfffffffe);
    expect(p.produce(RSP_RING, new Uint8Array([7, 7, 7, 7]))).toBe(4);
    expect(u32(p, 2060)).toBe(2);
    expect(p.used(RSP_RING)).toBe(4);
    expect([...p.consume(RSP_RING)]).toEqual([7, 7, 7, 7]);
  });

  it.each([
    ['empty', 0, 0, 1024, 0],
    ['half full', 512, 0, 512, 512],
    ['full', 1024, 0, 0, 1024],
    ['full across 2^32', 0x100, 0xfffffd00, 0, 1024],
  ])('%s ring: free and used', (_n, prod, cons, free, used) => {
    const p = page();
    p.store(XsRingOffset.REQ_PROD, prod);
    p.store(XsRingOffset.REQ_CONS, cons);
    expect(p.free(REQ_RING)).toBe(free);
    expect(p.used(REQ_RING)).toBe(used);
  });

  it('a full ring takes nothing more', () => {
    const p = page();
    expect(p.produce(REQ_RING, new Uint8Array(2000))).toBe(XENSTORE_RING_SIZE);
    expect(p.produce(REQ_RING, new Uint8Array(1))).toBe(0);
  });

  it.each([
    ['prod ahead by 1025', 1025, 0],
    ['cons ahead of prod', 0, 1],
  ])('corrupt indices (%s) throw with the values and change nothing', (_n, prod, cons) => {
    const p = page();
    p.store(XsRingOffset.REQ_PROD, prod);
    p.store(XsRingOffset.REQ_CONS, cons);
    expect(() => p.consume(REQ_RING)).toThrow(XsRingIndexError);
    expect(() => p.produce(REQ_RING, new Uint8Array(1))).toThrow(/req ring: prod \d+ - cons \d+/);
    expect(p.load(XsRingOffset.REQ_PROD)).toBe(prod);
    expect(p.load(XsRingOffset.REQ_CONS)).toBe(cons);
  });

  it('rejects a page too small or misaligned', () => {
    expect(() => new XsRingPage(new Uint8Array(2000))).toThrow(/2000 bytes/);
    expect(() => new XsRingPage(new Uint8Array(new ArrayBuffer(4100), 2, 4096))).toThrow(/byteOffset 2/);
  });
});

describe('messages across the wrap (property)', () => {
  it('random message sizes and random read chunks arrive intact and in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 4096 }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 1024 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (sizes, chunks, start) => {
          const p = page();
          p.store(XsRingOffset.RSP_PROD, start);
          p.store(XsRingOffset.RSP_CONS, start);
          const msgs = sizes.map((n, i) =>
            encodeMessage({
              type: XsType.READ,
              reqId: i + 1,
              txId: 0,
              payload: Uint8Array.from({ length: n }, (_, j) => (i * 31 + j * 7) & 0xff),
            }),
          );
          const framer = new XsFrameParser();
          const got: { reqId: number; payload: Uint8Array }[] = [];
          let mi = 0;
          let off = 0;
          let ci = 0;
          let guard = 0;
          while (got.length < msgs.length) {
            if (++guard > 100_000) throw new Error('no progress');
            if (mi < msgs.length) {
              off += p.produce(RSP_RING, msgs[mi]!.subarray(off));
              if (off === msgs[mi]!.length) {
                mi++;
                off = 0;
              }
            }
            const bytes = p.consume(RSP_RING, chunks[ci++ % chunks.length]);
            for (const m of framer.push(bytes)) got.push(m);
          }
          expect(got.map((m) => m.reqId)).toEqual(msgs.map((_, i) => i + 1));
          got.forEach((m, i) => {
            expect(m.payload).toEqual(msgs[i]!.subarray(16));
          });
          expect(p.used(RSP_RING)).toBe(0);
          expect(framer.pendingBytes).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});
