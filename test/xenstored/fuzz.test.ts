/**
 * Hostile input never crashes the daemon: any request type with any payload gets a reply (or, for a
 * broken frame, the connection is dropped), and every other connection keeps being served.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeMessage, nulStrings, XsType } from '../../drivers/xenbus/xs-wire.js';
import { XenstoreDaemon } from '../../emulator/xenstored/daemon.js';

const words = fc.constantFrom(
  '',
  '/',
  '/a',
  '/a/b',
  'rel',
  'rel/x',
  '@introduceDomain',
  '@releaseDomain',
  '@other',
  'T',
  'F',
  'n0',
  'r5',
  'b6',
  'w',
  '5',
  '0',
  '-1',
  '65536',
  '4294967295',
  'print',
  'quota',
  'log',
  'check',
  'help',
  '/local/domain/5',
  '/local/domain/5/x',
  'x'.repeat(3000),
);
const part = fc.oneof(
  words.map((w) => new TextEncoder().encode(w)),
  fc.uint8Array({ maxLength: 64 }),
);
const payload = fc
  .tuple(fc.array(part, { maxLength: 5 }), fc.boolean())
  .map(([parts, terminated]) => {
    const p = nulStrings(...parts);
    return terminated || p.length === 0 ? p : p.subarray(0, p.length - 1);
  })
  .filter((p) => p.length <= 4096);
const request = fc.record({
  who: fc.constantFrom(0, 5, 6),
  type: fc.oneof(fc.integer({ min: 0, max: 28 }), fc.constant(0xffff)),
  txId: fc.constantFrom(0, 0, 1, 2, 99),
  payload,
});

describe('xenstored under random requests', () => {
  it('always replies, never throws, and keeps serving every connection', () => {
    fc.assert(
      fc.property(fc.array(request, { minLength: 1, maxLength: 40 }), (reqs) => {
        const xs = new XenstoreDaemon({ quotas: { nodes: 20, watches: 4, transactions: 2 } });
        const replies = new Map<number, number>();
        const conns = new Map(
          [0, 5, 6].map((domid) => [
            domid,
            xs.connect({
              domid,
              send: (m) => {
                const type = new DataView(m.buffer, m.byteOffset).getUint32(0, true);
                if (type !== XsType.WATCH_EVENT) replies.set(domid, (replies.get(domid) ?? 0) + 1);
                return true;
              },
            }),
          ]),
        );
        xs.introduceDomain(5, 5n, 1);
        for (const [i, r] of reqs.entries()) {
          const conn = conns.get(r.who)!;
          if (conn.closed) continue;
          const before = replies.get(r.who) ?? 0;
          conn.receive(encodeMessage({ type: r.type, reqId: i, txId: r.txId, payload: r.payload }));
          if (!conn.closed) expect(replies.get(r.who), `request ${i} got no reply`).toBe(before + 1);
        }
        xs.checkStore();
        for (const [domid, conn] of conns) {
          if (conn.closed) continue;
          const r = conn.request(XsType.GET_DOMAIN_PATH, nulStrings(String(domid)));
          expect(r.error).toBeUndefined();
        }
      }),
      { numRuns: 400 },
    );
  });
});
