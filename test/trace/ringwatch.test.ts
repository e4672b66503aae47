import { describe, expect, test } from 'vitest';
import type { TraceEvent } from '../../emulator/runtime/engine.js';
import {
  classifyRequests,
  classifyResponses,
  type HalfState,
  ioRingLines,
  nextPushNotifies,
  type RingSample,
  ringSampleOf,
  ringwatchLines,
} from '../../emulator/trace/ringwatch.js';

/** req: [prod, cons, event]; rsp: [prod, pvt, event]. */
function sample(req: [number, number, number], rsp: [number, number, number], t = 0): RingSample {
  return {
    t,
    dom: 0,
    ring: 'vbd-1-51712',
    size: 32,
    reqProd: req[0],
    reqCons: req[1],
    reqEvent: req[2],
    rspProd: rsp[0],
    rspProdPvt: rsp[1],
    rspEvent: rsp[2],
  };
}

const idle = sample([5, 5, 6], [5, 5, 6]);
const U = 0xffffffff;

describe('classification of each half against the previous sample', () => {
  test.each<[string, RingSample | undefined, RingSample, HalfState, HalfState]>([
    ['idle ring', undefined, idle, 'IDLE', 'IDLE'],
    ['idle again', idle, idle, 'IDLE', 'IDLE'],
    ['first sample with work: not yet judged stuck', undefined, sample([7, 5, 6], [5, 5, 6]), 'BUSY', 'IDLE'],
    ['new requests since an idle sample', idle, sample([7, 5, 6], [5, 5, 6]), 'BUSY', 'IDLE'],
    ['backend consumed one', sample([7, 5, 6], [5, 5, 6]), sample([7, 6, 6], [5, 5, 6]), 'BUSY', 'IDLE'],
    [
      'requests pending, req_cons still: lost kick',
      sample([7, 5, 6], [5, 5, 6]),
      sample([8, 5, 6], [5, 5, 6]),
      'STUCK',
      'IDLE',
    ],
    ['indices wrap at 2^32', sample([1, U, U], [U, U, 0]), sample([1, U, U], [U, U, 0]), 'STUCK', 'IDLE'],
    ['responses pushed, frontend has not re-armed', undefined, sample([7, 7, 8], [7, 7, 6]), 'IDLE', 'BUSY'],
    [
      'responses still unacked, rsp_event still',
      sample([7, 7, 8], [7, 7, 6]),
      sample([7, 7, 8], [7, 7, 6]),
      'IDLE',
      'STUCK',
    ],
    [
      'more responses, rsp_event still',
      sample([7, 7, 8], [6, 6, 6]),
      sample([7, 7, 8], [7, 7, 6]),
      'IDLE',
      'STUCK',
    ],
    ['frontend caught up', sample([7, 7, 8], [7, 7, 6]), sample([7, 7, 8], [7, 7, 8]), 'IDLE', 'IDLE'],
    ['frontend consumed some', sample([9, 9, 10], [9, 9, 6]), sample([9, 9, 10], [9, 9, 8]), 'IDLE', 'BUSY'],
    [
      'produced but not pushed, push moving',
      sample([9, 9, 10], [6, 8, 7]),
      sample([9, 9, 10], [7, 9, 8]),
      'IDLE',
      'BUSY',
    ],
    [
      'produced but never pushed',
      sample([9, 9, 10], [7, 9, 8]),
      sample([9, 9, 10], [7, 9, 8]),
      'IDLE',
      'STUCK',
    ],
  ])('%s', (_what, prev, cur, req, rsp) => {
    expect([classifyRequests(prev, cur), classifyResponses(prev, cur)]).toEqual([req, rsp]);
  });

  test.each([
    [5, 6, true],
    [5, 7, false],
    [5, 5, false],
    [U, 0, true],
    [U - 1, 0, false],
  ])('next push with prod %s and event %s notifies: %s', (prod, event, notifies) => {
    expect(nextPushNotifies(prod, event)).toBe(notifies);
  });
});

const ring = (t: number, fields: Record<string, unknown>, dom = 0): TraceEvent => ({
  t,
  dom,
  task: 'blkback.1#5',
  comp: 'blkback',
  kind: 'ring',
  fields: { ring: 'vbd-1-51712', ...fields },
});

const back = (reqProd: number, reqCons: number, rspProd: number, rspEvent: number) => ({
  nr_ents: 32,
  req_prod: reqProd,
  req_cons: reqCons,
  req_event: reqCons + 1,
  rsp_prod: rspProd,
  rsp_prod_pvt: rspProd,
  rsp_event: rspEvent,
});

describe('ring lines', () => {
  test('the io_ring node lines', () => {
    expect(ioRingLines(sample([7, 5, 6], [5, 5, 6]))).toEqual([
      'nr_ents 32',
      'req prod 7 cons 5 event 6',
      'rsp prod 5 pvt 5 event 6',
    ]);
    const { size: _size, ...noSize } = sample([U, U, 0], [U, U, 0]);
    expect(ioRingLines(noSize)).toEqual([
      'req prod 4294967295 cons 4294967295 event 0',
      'rsp prod 4294967295 pvt 4294967295 event 0',
    ]);
  });

  test('one block per backend snapshot; front snapshots and other kinds are skipped', () => {
    const events: TraceEvent[] = [
      ring(1, back(1, 0, 0, 1)),
      {
        t: 1.5,
        dom: 1,
        task: 'io#2',
        comp: 'blkfront',
        kind: 'ring',
        fields: {
          ring: 'xvda',
          req_prod: 1,
          req_event: 1,
          rsp_prod: 0,
          rsp_event: 1,
          req_prod_pvt: 1,
          rsp_cons: 0,
        },
      },
      { t: 1.7, dom: 0, task: 'x#1', comp: 'blkback', kind: 'vbd-open', fields: {} },
      ring(2, back(1, 1, 1, 1)),
      ring(3, back(1, 1, 1, 2)),
    ];
    expect(ringwatchLines(events, { domainNames: new Map([[0, 'Domain-0']]) })).toEqual([
      '0.001000 Domain-0 vbd-1-51712',
      '  nr_ents 32',
      '  req prod 1 cons 0 event 1  BUSY (next push silent)',
      '  rsp prod 0 pvt 0 event 1  IDLE (next push notifies)',
      '0.002000 Domain-0 vbd-1-51712',
      '  nr_ents 32',
      '  req prod 1 cons 1 event 2  IDLE (next push notifies)',
      '  rsp prod 1 pvt 1 event 1  BUSY (next push silent)',
      '0.003000 Domain-0 vbd-1-51712',
      '  nr_ents 32',
      '  req prod 1 cons 1 event 2  IDLE (next push notifies)',
      '  rsp prod 1 pvt 1 event 2  IDLE (next push notifies)',
    ]);
  });

  test('polling: a ring that does not move across a period with work pending is STUCK', () => {
    const events = [ring(0, back(0, 0, 0, 1)), ring(10, back(3, 0, 0, 1)), ring(25, back(3, 3, 3, 4))];
    const lines = ringwatchLines(events, { intervalMs: 10 });
    expect(lines.filter((l) => l.includes('req prod'))).toEqual([
      '  req prod 0 cons 0 event 1  IDLE (next push notifies)', // t=0
      '  req prod 3 cons 0 event 1  BUSY (next push silent)', // t=10: new work
      '  req prod 3 cons 0 event 1  STUCK (next push silent)', // t=20: no progress
      '  req prod 3 cons 3 event 4  IDLE (next push notifies)', // t=30
    ]);
    expect(lines.filter((l) => !l.startsWith('  '))).toEqual([
      '0.000000 dom0 vbd-1-51712',
      '0.010000 dom0 vbd-1-51712',
      '0.020000 dom0 vbd-1-51712',
      '0.030000 dom0 vbd-1-51712',
    ]);
  });

  test('snapshots of one instant are judged against the ring at an earlier instant, never each other', () => {
    // One xenblkd wake at 5 ms: the wake, its pass, two responses pushed before the frontend could run;
    // then the next wake at 9 ms finds the frontend's re-armed rsp_event, and at 12 ms it has not moved.
    const events = [
      ring(5, back(2, 0, 0, 1)),
      ring(5, back(2, 2, 0, 1)),
      ring(5, back(2, 2, 1, 1)),
      ring(5, back(2, 2, 2, 1)),
      ring(9, back(2, 2, 2, 3)),
      ring(12, { ...back(3, 2, 3, 3), rsp_prod_pvt: 3 }),
      ring(14, { ...back(3, 2, 3, 3), rsp_prod_pvt: 3 }),
    ];
    const halves = ringwatchLines(events)
      .filter((l) => l.startsWith('  req') || l.startsWith('  rsp'))
      .map((l) => l.split('  ')[2]!.split(' ')[0]);
    expect(halves).toEqual([
      ...['BUSY', 'IDLE'], // 5 ms wake: new requests
      ...['IDLE', 'IDLE'], // 5 ms pass: both consumed
      ...['IDLE', 'BUSY'], // 5 ms first response: not yet acknowledged
      ...['IDLE', 'BUSY'], // 5 ms second response: the same instant, so not STUCK
      ...['IDLE', 'IDLE'], // 9 ms: the frontend re-armed rsp_event past both
      ...['BUSY', 'BUSY'], // 12 ms: a new request, a new response
      ...['STUCK', 'STUCK'], // 14 ms: neither consumer moved since 12 ms
    ]);
  });

  test('rings are tracked separately', () => {
    const other = (t: number, f: Record<string, unknown>) => ring(t, { ...f, ring: 'vbd-2-51712' }, 0);
    const events = [ring(0, back(2, 0, 0, 1)), other(1, back(0, 0, 0, 1)), ring(2, back(2, 0, 0, 1))];
    const states = ringwatchLines(events)
      .filter((l) => l.includes('req prod'))
      .map((l) => l.split('  ')[2]);
    expect(states).toEqual([
      'BUSY (next push silent)',
      'IDLE (next push notifies)',
      'STUCK (next push silent)',
    ]);
  });

  test('bad input gets a precise error', () => {
    expect(() => ringSampleOf(ring(4, { ...back(0, 0, 0, 1), req_cons: -1 }))).toThrow(
      'ring snapshot at 4 ms: req_cons must be an unsigned 32-bit index, got -1 (blkback ring)',
    );
    expect(() => ringSampleOf(ring(4, { req_prod: 0 }))).toThrow('field req_event: missing');
    expect(() => ringwatchLines([ring(0, back(0, 0, 0, 1))], { intervalMs: 0 })).toThrow(
      'intervalMs must be a positive number of milliseconds, got 0',
    );
    expect(() =>
      ringwatchLines([ring(0, back(0, 0, 0, 1)), ring(1e9, back(0, 0, 0, 1))], { intervalMs: 1 }),
    ).toThrow(/at most 100000/);
  });
});
