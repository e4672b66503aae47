import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BackRing,
  FrontRing,
  mustNotify,
  RING_MAX_PAGES,
  rd32,
  ringSize,
  SharedRing,
  XEN_PAGE_SIZE,
} from '../../drivers/ring.js';

const ENTRY = 112;

function ringAt(pages = 1, entry = ENTRY, shared = true): { sring: SharedRing; mem: Uint8Array } {
  const buf = shared ? new SharedArrayBuffer(pages * XEN_PAGE_SIZE) : new ArrayBuffer(pages * XEN_PAGE_SIZE);
  const mem = new Uint8Array(buf);
  mem.fill(0xee);
  return { sring: new SharedRing(buf, 0, pages, entry), mem };
}

/** Front and back attached at `start` on a freshly initialised ring whose shared indices are `start`. */
function pairAt(start: number, pages = 1) {
  const { sring, mem } = ringAt(pages);
  FrontRing.init(sring);
  sring.reqProd = start;
  sring.rspProd = start;
  sring.reqEvent = start + 1;
  sring.rspEvent = start + 1;
  return { sring, mem, front: FrontRing.attach(sring, start), back: BackRing.attach(sring, start) };
}

describe('__RD32 and ring sizes', () => {
  it.each([
    [0, 0],
    [1, 1],
    [2, 2],
    [3, 2],
    [36, 32],
    [37, 32],
    [64, 64],
    [0xffff, 0x8000],
    [0x10000, 0x10000],
    [0xffffffff, 0x80000000],
  ])('rd32(%d) = %d', (x, want) => {
    expect(rd32(x)).toBe(want);
  });

  it.each([
    [4096, 112, 32],
    [4096, 108, 32],
    [8192, 112, 64],
    [16384, 108, 128],
    [32768, 112, 256],
    [65536, 112, 512],
    [65536, 108, 512],
    [4096, 16, 128],
    [4096, 4032, 1],
  ])('ringSize(%d, %d) = %d', (bytes, entry, want) => {
    expect(ringSize(bytes, entry)).toBe(want);
  });

  it.each([
    [64 + 111, 112, /bytes must be an integer >= 176/],
    [4096, 0, /entrySize must be a positive integer, got 0/],
    [4096.5, 112, /bytes must be an integer/],
  ])('ringSize(%d, %d) throws', (bytes, entry, msg) => {
    expect(() => ringSize(bytes, entry)).toThrow(msg);
  });
});

describe('SharedRing layout and construction', () => {
  it('SHARED_RING_INIT writes prods 0, events 1, zero pvt and pad, leaves entries', () => {
    const { sring, mem } = ringAt();
    sring.init();
    const dv = new DataView(mem.buffer);
    expect([0, 4, 8, 12].map((o) => dv.getUint32(o, true))).toEqual([0, 1, 0, 1]);
    expect([...mem.subarray(16, 64)].every((b) => b === 0)).toBe(true);
    expect(mem[64]).toBe(0xee);
    expect(mem[4095]).toBe(0xee);
  });

  it('index words sit at 0, 4, 8, 12 (little-endian u32)', () => {
    const { sring, mem } = ringAt();
    sring.reqProd = 0x11223344;
    sring.reqEvent = 0x55667788;
    sring.rspProd = 0x99aabbcc;
    sring.rspEvent = -1; // stored modulo 2^32
    const dv = new DataView(mem.buffer);
    expect(dv.getUint32(0, true)).toBe(0x11223344);
    expect(dv.getUint32(4, true)).toBe(0x55667788);
    expect(dv.getUint32(8, true)).toBe(0x99aabbcc);
    expect(dv.getUint32(12, true)).toBe(0xffffffff);
    expect(sring.rspEvent).toBe(0xffffffff);
  });

  it('slots start at 64 and wrap with idx & (size - 1)', () => {
    const { sring } = ringAt(1, 108);
    expect(sring.size).toBe(32);
    expect(sring.slot(0)).toBe(64);
    expect(sring.slot(1)).toBe(172);
    expect(sring.slot(31)).toBe(64 + 31 * 108);
    expect(sring.slot(32)).toBe(64);
    expect(sring.slot(0xffffffff)).toBe(64 + 31 * 108);
  });

  it('works over a plain ArrayBuffer and at a byte offset', () => {
    const buf = new ArrayBuffer(3 * XEN_PAGE_SIZE);
    const s = new SharedRing(buf, XEN_PAGE_SIZE, 2, ENTRY);
    s.init();
    expect(new DataView(buf).getUint32(XEN_PAGE_SIZE + 4, true)).toBe(1);
    expect(s.size).toBe(64);
  });

  it.each([
    [0, 0, /pages must be an integer in 1..16, got 0/],
    [RING_MAX_PAGES + 1, 0, /pages must be an integer in 1..16, got 17/],
    [1, 2, /byteOffset must be a non-negative multiple of 4, got 2/],
    [2, 4096, /2 page\(s\) at byteOffset 4096 exceed the buffer \(8192 bytes\)/],
  ])('rejects pages=%d byteOffset=%d', (pages, off, msg) => {
    expect(() => new SharedRing(new SharedArrayBuffer(8192), off, pages, ENTRY)).toThrow(msg);
  });

  it('fromPages accepts adjacent pages of one buffer and rejects gaps, foreign buffers, wrong sizes', () => {
    const buf = new SharedArrayBuffer(4 * XEN_PAGE_SIZE);
    const page = (i: number) => new Uint8Array(buf, i * XEN_PAGE_SIZE, XEN_PAGE_SIZE);
    expect(SharedRing.fromPages([page(1), page(2)], ENTRY).size).toBe(64);
    expect(() => SharedRing.fromPages([page(0), page(2)], ENTRY)).toThrow(
      /page 1 \(byteOffset 8192\) is not adjacent/,
    );
    expect(() => SharedRing.fromPages([page(0), new Uint8Array(XEN_PAGE_SIZE)], ENTRY)).toThrow(
      /not adjacent/,
    );
    expect(() => SharedRing.fromPages([new Uint8Array(buf, 0, 100)], ENTRY)).toThrow(/page 0 is 100 bytes/);
    expect(() => SharedRing.fromPages([], ENTRY)).toThrow(/need 1..16 pages, got 0/);
  });
});

describe('front and back macros (tables, including the 2^32 wrap)', () => {
  // [label, req_prod_pvt, rsp_cons, free requests, full]
  it.each([
    ['empty', 0, 0, 32, false],
    ['one outstanding', 1, 0, 31, false],
    ['full', 32, 0, 0, true],
    ['full across the wrap', 0x10, 0xfffffff0, 0, true],
    ['half across the wrap', 0x8, 0xfffffff8, 16, false],
    ['empty at the top', 0xffffffff, 0xffffffff, 32, false],
  ])('RING_FREE_REQUESTS / RING_FULL: %s', (_l, prodPvt, cons, free, full) => {
    const { sring } = ringAt();
    const front = FrontRing.attach(sring, 0);
    front.reqProdPvt = prodPvt;
    front.rspCons = cons;
    expect(front.freeRequests()).toBe(free);
    expect(front.full()).toBe(full);
  });

  // [label, shared req_prod, req_cons, rsp_prod_pvt, unconsumed (min against free response slots)]
  it.each([
    ['nothing', 5, 5, 5, 0],
    ['three', 8, 5, 5, 3],
    ['wrap', 0x2, 0xfffffffe, 0xfffffffe, 4],
    ['bounded by unanswered', 100, 40, 10, 2],
    ['hostile req_prod far ahead', 0x7fffffff, 0, 0, 32],
    ['hostile req_prod behind req_cons', 3, 10, 10, 32],
  ])('XEN_RING_NR_UNCONSUMED_REQUESTS: %s', (_l, reqProd, reqCons, rspProdPvt, want) => {
    const { sring } = ringAt();
    const back = BackRing.attach(sring, 0);
    sring.reqProd = reqProd;
    back.reqCons = reqCons;
    back.rspProdPvt = rspProdPvt;
    expect(back.unconsumedRequests()).toBe(want);
  });

  it.each([
    [10, 10, 0],
    [12, 10, 2],
    [1, 0xffffffff, 2],
  ])('XEN_RING_NR_UNCONSUMED_RESPONSES: rsp_prod %d rsp_cons %d -> %d', (rspProd, rspCons, want) => {
    const { sring } = ringAt();
    const front = FrontRing.attach(sring, rspCons);
    sring.rspProd = rspProd;
    expect(front.unconsumedResponses()).toBe(want);
  });

  // [rsp_prod_pvt, cons/prod, CONS_OVERFLOW, REQUEST_PROD_OVERFLOW]
  it.each([
    [0, 31, false, false],
    [0, 32, true, false],
    [0, 33, true, true],
    [0xfffffff0, 0x0f, false, false],
    [0xfffffff0, 0x10, true, false],
    [0xfffffff0, 0x11, true, true],
    [100, 99, true, true], // behind rsp_prod_pvt: huge unsigned distance
  ])('rsp_prod_pvt 0x%s: idx %d -> CONS_OVERFLOW %s, PROD_OVERFLOW %s', (pvt, idx, cons, prod) => {
    const { sring } = ringAt();
    const back = BackRing.attach(sring, pvt);
    expect(back.requestConsOverflow(idx)).toBe(cons);
    expect(back.requestProdOverflow(idx)).toBe(prod);
  });

  it.each([
    [0, 32, false],
    [0, 33, true],
    [0xffffffe0, 0, false],
    [0xffffffe0, 1, true],
  ])('RING_RESPONSE_PROD_OVERFLOW: rsp_cons 0x%s prod %d -> %s', (cons, prod, want) => {
    const { sring } = ringAt();
    expect(FrontRing.attach(sring, cons).responseProdOverflow(prod)).toBe(want);
  });

  // [old, new, event, notify]
  it.each([
    [0, 1, 1, true],
    [0, 5, 3, true],
    [0, 5, 5, true],
    [0, 5, 6, false],
    [3, 5, 3, false], // event == old: the peer already saw it
    [5, 5, 5, false], // nothing new
    [0xfffffffe, 2, 0xffffffff, true],
    [0xfffffffe, 2, 0, true],
    [0xfffffffe, 2, 2, true],
    [0xfffffffe, 2, 3, false],
    [0xfffffffe, 2, 0xfffffffe, false],
  ])('mustNotify(old %d, new %d, event %d) = %s', (oldP, newP, ev, want) => {
    expect(mustNotify(oldP, newP, ev)).toBe(want);
  });

  it('push-and-check-notify publishes first, then compares with the peer event', () => {
    const { sring, front, back } = pairAt(0xfffffffe);
    front.reqProdPvt = front.reqProdPvt + 3;
    expect(front.pushRequestsAndCheckNotify()).toBe(true);
    expect(sring.reqProd).toBe(1);
    front.reqProdPvt = front.reqProdPvt + 1;
    expect(front.pushRequestsAndCheckNotify()).toBe(false); // req_event (0xffffffff) already passed
    back.reqCons = 2;
    back.rspProdPvt = 2;
    expect(back.pushResponsesAndCheckNotify()).toBe(true); // rsp_event 0xffffffff in (0xfffffffe, 2]
    expect(sring.rspProd).toBe(2);
  });

  it('final checks set the event to cons + 1 only when nothing is pending', () => {
    const { sring, front, back } = pairAt(0xffffffff);
    sring.reqEvent = 77;
    sring.reqProd = 1; // two requests across the wrap
    expect(back.finalCheckForRequests()).toBe(2);
    expect(sring.reqEvent).toBe(77);
    back.reqCons = 1;
    expect(back.finalCheckForRequests()).toBe(0);
    expect(sring.reqEvent).toBe(2);
    front.rspCons = 0xffffffff;
    sring.rspProd = 0xffffffff;
    expect(front.finalCheckForResponses()).toBe(0);
    expect(sring.rspEvent).toBe(0); // rsp_cons + 1 wraps
  });

  it('copyRequest takes the slot once: later rewrites by the peer do not reach the copy', () => {
    const { sring, mem, back } = pairAt(0);
    const slot = back.requestSlot(3);
    mem.fill(0x42, slot, slot + ENTRY);
    const dest = new Uint8Array(ENTRY + 8);
    back.copyRequest(3, dest, 8);
    mem.fill(0x99, slot, slot + ENTRY);
    expect([...dest.subarray(8)].every((b) => b === 0x42)).toBe(true);
    expect(dest[0]).toBe(0);
    expect(() => back.copyRequest(3, new Uint8Array(ENTRY - 1))).toThrow(
      /needs 112 bytes at offset 0, has 111/,
    );
    expect(sring.slot(3)).toBe(slot);
  });
});

/** One step of a random front/back schedule. */
type Step =
  | { t: 'produce'; n: number }
  | { t: 'push'; check: boolean }
  | { t: 'consume'; n: number }
  | { t: 'respond'; n: number }
  | { t: 'pushRsp'; check: boolean }
  | { t: 'finalReq' }
  | { t: 'takeRsp'; n: number }
  | { t: 'finalRsp' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ t: fc.constant('produce' as const), n: fc.integer({ min: 0, max: 40 }) }),
  fc.record({ t: fc.constant('push' as const), check: fc.boolean() }),
  fc.record({ t: fc.constant('consume' as const), n: fc.integer({ min: 0, max: 40 }) }),
  fc.record({ t: fc.constant('respond' as const), n: fc.integer({ min: 0, max: 40 }) }),
  fc.record({ t: fc.constant('pushRsp' as const), check: fc.boolean() }),
  fc.record({ t: fc.constant('finalReq' as const) }),
  fc.record({ t: fc.constant('takeRsp' as const), n: fc.integer({ min: 0, max: 40 }) }),
  fc.record({ t: fc.constant('finalRsp' as const) }),
);

/** The notify model in words: the peer's event index lies in (old, new], counted modulo 2^32. */
function eventCrossed(oldP: number, newP: number, event: number): boolean {
  const span = (newP - oldP) >>> 0;
  const dist = (event - oldP) >>> 0;
  return dist >= 1 && dist <= span;
}

describe('ring properties (fast-check)', () => {
  it('random push/consume schedules never lose, duplicate or reorder; counts and notifications match a model', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0xffffff00, max: 0xffffffff }),
        fc.constantFrom(1, 2),
        fc.array(stepArb, { maxLength: 120 }),
        (start, pages, steps) => {
          const { sring, front, back } = pairAt(start, pages);
          const size = sring.size;
          const view = sring.view;
          let nextTag = 1;
          const published: number[] = []; // tags pushed to req_prod, not yet consumed by the back
          const unpushed: number[] = []; // tags written, not yet published
          const unanswered: number[] = []; // consumed by back, no response written
          const answeredUnpushed: number[] = [];
          const responsesPublished: number[] = [];
          const received: number[] = [];
          const consumedOrder: number[] = [];
          for (const s of steps) {
            switch (s.t) {
              case 'produce':
                for (let i = 0; i < s.n && !front.full(); i++) {
                  view.setUint32(front.requestSlot(front.reqProdPvt), nextTag, true);
                  unpushed.push(nextTag++);
                  front.reqProdPvt = front.reqProdPvt + 1;
                }
                expect(front.freeRequests()).toBe(
                  size -
                    (unpushed.length +
                      published.length +
                      unanswered.length +
                      answeredUnpushed.length +
                      responsesPublished.length),
                );
                break;
              case 'push': {
                const oldP = sring.reqProd;
                const ev = sring.reqEvent;
                if (s.check)
                  expect(front.pushRequestsAndCheckNotify()).toBe(eventCrossed(oldP, front.reqProdPvt, ev));
                else front.pushRequests();
                published.push(...unpushed.splice(0));
                break;
              }
              case 'consume': {
                const avail = back.unconsumedRequests();
                expect(avail).toBe(Math.min(published.length, size - unanswered.length));
                expect(avail).toBeLessThanOrEqual(published.length);
                const copy = new Uint8Array(sring.entrySize);
                for (let i = 0; i < s.n && back.unconsumedRequests() > 0; i++) {
                  expect(back.requestConsOverflow(back.reqCons)).toBe(false);
                  back.copyRequest(back.reqCons, copy);
                  back.reqCons = back.reqCons + 1;
                  const tag = new DataView(copy.buffer).getUint32(0, true);
                  expect(tag).toBe(published.shift());
                  consumedOrder.push(tag);
                  unanswered.push(tag);
                }
                break;
              }
              case 'respond':
                for (let i = 0; i < s.n && unanswered.length > 0; i++) {
                  const tag = unanswered.shift()!;
                  view.setUint32(back.responseSlot(back.rspProdPvt), tag, true);
                  back.rspProdPvt = back.rspProdPvt + 1;
                  answeredUnpushed.push(tag);
                }
                break;
              case 'pushRsp': {
                const oldP = sring.rspProd;
                const ev = sring.rspEvent;
                if (s.check) {
                  expect(back.pushResponsesAndCheckNotify()).toBe(eventCrossed(oldP, back.rspProdPvt, ev));
                } else back.pushResponses();
                responsesPublished.push(...answeredUnpushed.splice(0));
                break;
              }
              case 'finalReq': {
                const more = back.finalCheckForRequests();
                expect(more).toBe(Math.min(published.length, size - unanswered.length));
                if (more === 0) expect(sring.reqEvent).toBe((back.reqCons + 1) >>> 0);
                break;
              }
              case 'takeRsp': {
                expect(front.unconsumedResponses()).toBe(responsesPublished.length);
                expect(front.responseProdOverflow(sring.rspProd)).toBe(false);
                for (let i = 0; i < s.n && front.unconsumedResponses() > 0; i++) {
                  const tag = view.getUint32(front.responseSlot(front.rspCons), true);
                  expect(tag).toBe(responsesPublished.shift());
                  received.push(tag);
                  front.rspCons = front.rspCons + 1;
                }
                break;
              }
              case 'finalRsp': {
                const more = front.finalCheckForResponses();
                expect(more).toBe(responsesPublished.length);
                if (more === 0) expect(sring.rspEvent).toBe((front.rspCons + 1) >>> 0);
                break;
              }
            }
            expect(back.requestProdOverflow(sring.reqProd)).toBe(false);
          }
          // In order, no loss, no duplicates.
          expect(received).toEqual(consumedOrder.slice(0, received.length));
          expect(consumedOrder).toEqual(Array.from({ length: consumedOrder.length }, (_, i) => i + 1));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('mustNotify equals "event in (old, new]" for any u32 triple', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffffffff }),
        fc.nat({ max: 0xffffffff }),
        fc.nat({ max: 0xffffffff }),
        (o, n, e) => {
          expect(mustNotify(o, n, e)).toBe(eventCrossed(o, n, e));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
