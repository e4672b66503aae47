import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { TraceEvent } from '../../emulator/runtime/engine.js';
import { checkChromeTrace, pidOfDomain, toChromeTrace, toMicros } from '../../emulator/trace/perfetto.js';

const ev = (
  t: number,
  dom: number,
  task: string,
  comp: string,
  kind: string,
  fields?: Record<string, unknown>,
): TraceEvent => (fields === undefined ? { t, dom, task, comp, kind } : { t, dom, task, comp, kind, fields });

describe('toChromeTrace: events to trace-event JSON', () => {
  test('a request, a notification, a ring counter, a state change and a stall', () => {
    const events = [
      ev(0, 1, 'io#3', 'blkfront', 'request-start', { ring: 'xvda', id: 5n, op: 'read', sector: 0n }),
      ev(0.5, 1, 'io#3', 'evtchn', 'evtchn-send', { port: 3, flow: 1 }),
      ev(1, 0, 'upcall#2', 'evtchn', 'evtchn-upcall', { port: 7, flow: 1 }),
      ev(1, 0, 'blkback#4', 'blkback', 'ring', {
        ring: 'vbd-1-51712',
        nr_ents: 32,
        req_prod: 1,
        req_event: 2,
        rsp_prod: 0,
        rsp_event: 1,
        req_cons: 1,
        rsp_prod_pvt: 0,
      }),
      ev(2, 1, 'irq#1', 'blkfront', 'request-end', { ring: 'xvda', id: 5n, status: 0 }),
      ev(3, 1, 'xenwatch#2', 'blkfront', 'xenbus-state', {
        path: 'device/vbd/51712',
        from: 'Connected',
        to: 5,
      }),
      ev(4, -1, '-', 'runtime', 'stall', {
        chain: [{ holder: 'dom0/tap-ctl#9', waitsFor: 'DETACH_RSP from tapdisk 201' }],
        cycle: false,
        brokenBy: { timer: 'tap-ctl select() timeout', task: 'dom0/tap-ctl#9', at: 5004 },
      }),
    ];
    const trace = toChromeTrace(events, { domainNames: new Map([[1, 'guest1']]) });
    expect(trace.displayTimeUnit).toBe('ms');
    expect(trace.traceEvents).toEqual([
      { name: 'process_name', ph: 'M', pid: 1001, args: { name: 'guest1' } },
      { name: 'thread_name', ph: 'M', pid: 1001, tid: 1, args: { name: 'io#3' } },
      { name: 'process_name', ph: 'M', pid: 1000, args: { name: 'dom0' } },
      { name: 'thread_name', ph: 'M', pid: 1000, tid: 2, args: { name: 'upcall#2' } },
      { name: 'thread_name', ph: 'M', pid: 1000, tid: 3, args: { name: 'blkback#4' } },
      { name: 'thread_name', ph: 'M', pid: 1001, tid: 4, args: { name: 'irq#1' } },
      { name: 'thread_name', ph: 'M', pid: 1001, tid: 5, args: { name: 'xenwatch#2' } },
      { name: 'process_name', ph: 'M', pid: 999, args: { name: 'host (scenario driver)' } },
      { name: 'thread_name', ph: 'M', pid: 999, tid: 6, args: { name: 'host (scenario driver) (no task)' } },
      {
        name: 'read xvda',
        ph: 'b',
        cat: 'blkfront',
        id: 1,
        ts: 0,
        pid: 1001,
        tid: 1,
        args: { ring: 'xvda', id: '5', op: 'read', sector: '0' },
      },
      {
        name: 'notify port 3',
        ph: 'X',
        ts: 500,
        dur: 0,
        pid: 1001,
        tid: 1,
        cat: 'evtchn',
        args: { port: 3, flow: 1 },
      },
      { name: 'evtchn', ph: 's', cat: 'evtchn', id: 1, ts: 500, pid: 1001, tid: 1 },
      {
        name: 'upcall port 7',
        ph: 'X',
        ts: 1000,
        dur: 0,
        pid: 1000,
        tid: 2,
        cat: 'evtchn',
        args: { port: 7, flow: 1 },
      },
      { name: 'evtchn', ph: 'f', bp: 'e', cat: 'evtchn', id: 1, ts: 1000, pid: 1000, tid: 2 },
      {
        name: 'ring vbd-1-51712',
        ph: 'C',
        ts: 1000,
        pid: 1000,
        tid: 3,
        cat: 'blkback',
        args: { inflight: 1, requests: 0 },
      },
      {
        name: 'read xvda',
        ph: 'e',
        cat: 'blkfront',
        id: 1,
        ts: 2000,
        pid: 1001,
        tid: 4,
        args: { ring: 'xvda', id: '5', status: 0 },
      },
      {
        name: 'XenbusState Closing(5)',
        ph: 'i',
        s: 't',
        ts: 3000,
        pid: 1001,
        tid: 5,
        cat: 'blkfront',
        args: { path: 'device/vbd/51712', from: 'Connected(4)', to: 'Closing(5)' },
      },
      {
        name: 'STALL',
        ph: 'i',
        s: 'g',
        ts: 4000,
        pid: 999,
        tid: 6,
        cat: 'runtime',
        args: {
          chain: ['dom0/tap-ctl#9 waits for DETACH_RSP from tapdisk 201'],
          cycle: false,
          brokenBy: { timer: 'tap-ctl select() timeout', task: 'dom0/tap-ctl#9', at: 5004 },
        },
      },
    ]);
    expect(checkChromeTrace(trace)).toEqual([]);
  });

  test.each([
    [0, 0],
    [1, 1000],
    [0.0015, 1.5],
    [5000.123456, 5000123.456],
    [1 / 3, 333.333],
  ])('toMicros(%s ms) = %s µs', (ms, us) => {
    expect(toMicros(ms)).toBe(us);
  });

  test('pid per domain: host, dom0, guests', () => {
    expect([pidOfDomain(-1), pidOfDomain(0), pidOfDomain(7)]).toEqual([999, 1000, 1007]);
  });

  test('malformed known kinds and unmatched halves are written as instants carrying the problem', () => {
    const events = [
      ev(0, 1, 'io#1', 'blkfront', 'request-start', { disk: 'xvda', op: 'read' }),
      ev(1, 1, 'io#1', 'blkfront', 'request-end', { ring: 'xvda', id: 9 }),
      ev(2, 1, 'io#1', 'blkfront', 'request-start', { ring: 'xvda', id: 1, op: 'write' }),
      ev(3, 1, 'io#1', 'blkfront', 'request-start', { ring: 'xvda', id: 1, op: 'write' }),
      ev(4, 0, 'bb#2', 'blkback', 'ring', {
        ring: 'r',
        nr_ents: 24,
        req_prod: 0,
        req_event: 1,
        rsp_prod: 0,
        rsp_event: 1,
      }),
      ev(5, 0, 'bb#2', 'blkback', 'xenbus-state', { path: 'backend/vbd/1/51712', from: 'Sleepy', to: 4 }),
      ev(6, 0, 'bb#2', 'mystery', 'glow', { brightness: 3 }),
    ];
    const trace = toChromeTrace(events, { endTime: 10 });
    const body = trace.traceEvents.filter((e) => e.ph !== 'M');
    expect(body.map((e) => [e.ph, e.name, e.args?.problem])).toEqual([
      ['i', 'blkfront request-start', 'field id: missing (blkfront request-start)'],
      ['i', 'blkfront request-end', 'no start for id 9'],
      ['b', 'write xvda', undefined],
      ['i', 'blkfront request-start', 'id 1 is already in flight'],
      ['i', 'blkback ring', 'nr_ents must be a power of two, got 24 (blkback ring)'],
      ['i', 'blkback xenbus-state', 'field from: expected xenbus-state, got "Sleepy" (blkback xenbus-state)'],
      ['i', 'mystery glow', undefined],
      ['e', 'write xvda', undefined],
    ]);
    // the request still in flight is closed at the run's end
    expect(body[body.length - 1]).toMatchObject({ ph: 'e', ts: 10000, args: { unfinished: true } });
    expect(checkChromeTrace(trace)).toEqual([]);
  });

  test('flows: only pairs with both halves are drawn, the receiver never before the sender; coalesced upcalls end several', () => {
    const events = [
      ev(0, 1, 'a#1', 'evtchn', 'evtchn-send', { port: 3, flow: 1 }),
      ev(0, 1, 'a#1', 'evtchn', 'evtchn-send', { port: 3, flow: 2 }),
      ev(1, 0, 'u#2', 'evtchn', 'evtchn-upcall', { port: 7, flows: [1, 2] }),
      ev(2, 1, 'a#1', 'evtchn', 'evtchn-send', { port: 3, flow: 3 }), // never delivered
      ev(3, 0, 'u#2', 'evtchn', 'evtchn-upcall', { port: 7, flow: 4 }), // no send
      // callback stamped at the fire's instant but listed first (threads' clocks can skew): placed just after
      ev(4, 0, 'xw#3', 'xenbus', 'watch-callback', { path: 'a', token: 't', flow: 9 }),
      ev(4, 0, 'xs#4', 'xenstored', 'watch-fire', { path: 'a', token: 't', flow: 9 }),
      ev(5, 0, 'xs#4', 'xenstored', 'watch-fire', { path: 'b', token: 't', flow: 10 }),
      ev(6, 0, 'xw#3', 'xenbus', 'watch-callback', { path: 'b', token: 't', flow: 10 }),
    ];
    const trace = toChromeTrace(events);
    const flows = trace.traceEvents.filter((e) => e.ph === 's' || e.ph === 'f');
    expect(flows.map((e) => [e.ph, e.cat, e.id, e.ts])).toEqual([
      ['s', 'evtchn', 1, 0],
      ['s', 'evtchn', 2, 0],
      ['f', 'evtchn', 1, 1000],
      ['f', 'evtchn', 2, 1000],
      ['s', 'watch', 3, 4000],
      ['f', 'watch', 3, 4000.001],
      ['s', 'watch', 4, 5000],
      ['f', 'watch', 4, 6000],
    ]);
    expect(trace.traceEvents.filter((e) => e.ph === 'X')).toHaveLength(9);
    expect(checkChromeTrace(trace)).toEqual([]);
  });

  test("blkback's blk-req start/end make one async slice per request; ids are per ring", () => {
    const body = toChromeTrace([
      ev(0, 0, 'blkback.1#4', 'blkback', 'blk-req', {
        phase: 'start',
        ring: 'vbd-1-51712',
        id: '7',
        op: 'write',
      }),
      ev(0, 0, 'blkback.1#4', 'blkback', 'blk-req', {
        phase: 'start',
        ring: 'vbd-2-51712',
        id: '7',
        op: 'read',
      }),
      ev(1, 0, 'irq#6', 'blkback', 'blk-req', {
        phase: 'end',
        ring: 'vbd-2-51712',
        id: '7',
        op: 'read',
        status: 0,
      }),
      ev(2, 0, 'irq#6', 'blkback', 'blk-req', {
        phase: 'end',
        ring: 'vbd-1-51712',
        id: '7',
        op: 'write',
        status: -1,
      }),
      ev(3, 0, 'irq#6', 'blkback', 'blk-req', { phase: 'middle', ring: 'vbd-1-51712', id: '7' }),
    ]).traceEvents.filter((e) => e.ph !== 'M');
    expect(body.map((e) => [e.ph, e.name, e.id, e.ts, e.args?.problem])).toEqual([
      ['b', 'write vbd-1-51712', 1, 0, undefined],
      ['b', 'read vbd-2-51712', 2, 0, undefined],
      ['e', 'read vbd-2-51712', 2, 1000, undefined],
      ['e', 'write vbd-1-51712', 1, 2000, undefined],
      ['i', 'blkback blk-req', undefined, 3000, 'phase must be "start" or "end" (blkback blk-req)'],
    ]);
  });

  test('grant counter: explicit totals win, otherwise counts are added per domain', () => {
    const events = [
      ev(0, 0, 'bb#1', 'blkback', 'grant-map', { ref: 8 }),
      ev(1, 0, 'bb#1', 'blkback', 'grant-map', { count: 11 }),
      ev(2, 0, 'bb#1', 'blkback', 'grant-unmap', { count: 2 }),
      ev(3, 2, 'bb#5', 'blkback', 'grant-map', { mapped: 4 }),
      ev(4, 0, 'bb#1', 'blkback', 'grant-unmap', { mapped: 3 }),
      ev(5, 0, 'bb#1', 'blkback', 'grant-map', {}),
    ];
    const counters = toChromeTrace(events).traceEvents.filter((e) => e.ph === 'C');
    expect(counters.map((e) => [e.pid, e.args?.mapped])).toEqual([
      [1000, 1],
      [1000, 12],
      [1000, 10],
      [1002, 4],
      [1000, 3],
      [1000, 4],
    ]);
  });

  test('ring counter: front snapshots count unconsumed responses; indices wrap at 2^32', () => {
    const trace = toChromeTrace([
      ev(0, 1, 'fe#1', 'blkfront', 'ring', {
        ring: 'xvda',
        nr_ents: 32,
        req_prod: 2,
        req_event: 1,
        rsp_prod: 0xffffffff,
        rsp_event: 0xfffffffe,
        req_prod_pvt: 2,
        rsp_cons: 0xfffffffd,
      }),
    ]);
    expect(trace.traceEvents.find((e) => e.ph === 'C')?.args).toEqual({ inflight: 3, responses: 2 });
  });

  test('log lines: kernel msg and libxl message; no task gives a process-scoped instant', () => {
    const body = toChromeTrace([
      ev(0, 0, '-', 'blkback', 'log', { msg: 'vbd-1-51712: connected' }),
      ev(1, 0, 'xl#2', 'libxl', 'log', { level: 'error', where: 'x', message: 'timed out' }),
    ]).traceEvents.filter((e) => e.ph !== 'M');
    expect(body.map((e) => [e.name, e.s])).toEqual([
      ['vbd-1-51712: connected', 'p'],
      ['timed out', 't'],
    ]);
  });
});

describe('checkChromeTrace finds what breaks the format', () => {
  const meta = [
    { name: 'process_name', ph: 'M', pid: 1, args: { name: 'p' } },
    { name: 'thread_name', ph: 'M', pid: 1, tid: 1, args: { name: 't' } },
  ];
  test.each([
    ['no traceEvents', {}, 'traceEvents: missing'],
    ['bad unit', { traceEvents: [], displayTimeUnit: 's' }, 'displayTimeUnit'],
    ['unknown phase', { traceEvents: [{ name: 'a', ph: 'Q', pid: 1, ts: 0 }] }, 'unknown phase'],
    ['missing ts', { traceEvents: [...meta, { name: 'a', ph: 'i', pid: 1, tid: 1 }] }, '.ts: must be'],
    [
      'X without dur',
      { traceEvents: [...meta, { name: 'a', ph: 'X', pid: 1, tid: 1, ts: 0 }] },
      'X needs a finite dur',
    ],
    [
      'e before b',
      {
        traceEvents: [
          ...meta,
          { name: 'r', ph: 'b', cat: 'c', id: 1, pid: 1, tid: 1, ts: 5 },
          { name: 'r', ph: 'e', cat: 'c', id: 1, pid: 1, tid: 1, ts: 4 },
        ],
      },
      'before its b',
    ],
    [
      'e with another category',
      {
        traceEvents: [
          ...meta,
          { name: 'r', ph: 'b', cat: 'c', id: 1, pid: 1, tid: 1, ts: 5 },
          { name: 'r', ph: 'e', cat: 'd', id: 1, pid: 1, tid: 1, ts: 6 },
        ],
      },
      'without an open b',
    ],
    [
      'b never ended',
      { traceEvents: [...meta, { name: 'r', ph: 'b', cat: 'c', id: 1, pid: 1, tid: 1, ts: 5 }] },
      'b without e',
    ],
    [
      'async without id',
      { traceEvents: [...meta, { name: 'r', ph: 'b', cat: 'c', pid: 1, tid: 1, ts: 5 }] },
      'need an integer id',
    ],
    [
      'flow without f',
      {
        traceEvents: [
          ...meta,
          { name: 'x', ph: 'X', dur: 0, pid: 1, tid: 1, ts: 1 },
          { name: 'f', ph: 's', cat: 'c', id: 1, pid: 1, tid: 1, ts: 1 },
        ],
      },
      's without f',
    ],
    [
      'f before s',
      {
        traceEvents: [
          ...meta,
          { name: 'x', ph: 'X', dur: 0, pid: 1, tid: 1, ts: 1 },
          { name: 'f', ph: 'f', bp: 'e', cat: 'c', id: 1, pid: 1, tid: 1, ts: 1 },
        ],
      },
      'before its s',
    ],
    [
      'flow point outside any slice',
      {
        traceEvents: [
          ...meta,
          { name: 'f', ph: 's', cat: 'c', id: 1, pid: 1, tid: 1, ts: 1 },
          { name: 'f', ph: 'f', bp: 'e', cat: 'c', id: 1, pid: 1, tid: 1, ts: 2 },
        ],
      },
      'encloses the flow point',
    ],
    [
      'time goes back on a thread',
      {
        traceEvents: [
          ...meta,
          { name: 'a', ph: 'i', s: 't', pid: 1, tid: 1, ts: 5 },
          { name: 'b', ph: 'i', s: 't', pid: 1, tid: 1, ts: 4 },
        ],
      },
      'goes back in time',
    ],
    [
      'overlapping X slices',
      {
        traceEvents: [
          ...meta,
          { name: 'a', ph: 'X', dur: 10, pid: 1, tid: 1, ts: 0 },
          { name: 'b', ph: 'X', dur: 10, pid: 1, tid: 1, ts: 5 },
        ],
      },
      'overlaps an enclosing slice',
    ],
    [
      'E without B',
      { traceEvents: [...meta, { name: 'a', ph: 'E', pid: 1, tid: 1, ts: 0 }] },
      'E without an open B',
    ],
    [
      'counter with text',
      { traceEvents: [...meta, { name: 'c', ph: 'C', pid: 1, tid: 1, ts: 0, args: { v: 'x' } }] },
      'counter values must be finite numbers',
    ],
    ['unnamed process', { traceEvents: [{ name: 'a', ph: 'i', s: 'g', pid: 2, ts: 0 }] }, 'no process_name'],
    [
      'unnamed thread',
      { traceEvents: [meta[0], { name: 'a', ph: 'i', s: 't', pid: 1, tid: 3, ts: 0 }] },
      'no thread_name',
    ],
    [
      'bad instant scope',
      { traceEvents: [meta[0], { name: 'a', ph: 'i', s: 'x', pid: 1, ts: 0 }] },
      'instant scope',
    ],
  ])('%s', (_what, trace, problem) => {
    const problems = checkChromeTrace(trace);
    expect(
      problems.some((p) => p.includes(problem)),
      problems.join('\n'),
    ).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------------
// Random well-formed runs always give a valid trace.
// ---------------------------------------------------------------------------------------------------

type Action =
  | { a: 'start'; dom: number; task: number; ring: number; id: number }
  | { a: 'end'; dom: number; task: number; ring: number; id: number }
  | { a: 'send'; dom: number; task: number }
  | { a: 'upcall'; dom: number; task: number; n: number }
  | { a: 'fire'; task: number }
  | { a: 'callback'; dom: number; task: number }
  | { a: 'snapshot'; dom: number; task: number; prod: number; cons: number }
  | { a: 'grant'; dom: number; map: boolean; count: number }
  | { a: 'state'; dom: number; from: number; to: number }
  | { a: 'stall' }
  | { a: 'log'; dom: number; task: number; text: string }
  | { a: 'other'; dom: number; kind: string };

const dom = fc.integer({ min: 0, max: 3 });
const task = fc.integer({ min: 0, max: 4 });
const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ a: fc.constant('start' as const), dom, task, ring: fc.nat(2), id: fc.nat(5) }),
  fc.record({ a: fc.constant('end' as const), dom, task, ring: fc.nat(2), id: fc.nat(5) }),
  fc.record({ a: fc.constant('send' as const), dom, task }),
  fc.record({ a: fc.constant('upcall' as const), dom, task, n: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ a: fc.constant('fire' as const), task }),
  fc.record({ a: fc.constant('callback' as const), dom, task }),
  fc.record({ a: fc.constant('snapshot' as const), dom, task, prod: fc.nat(), cons: fc.nat() }),
  fc.record({
    a: fc.constant('grant' as const),
    dom,
    map: fc.boolean(),
    count: fc.integer({ min: 1, max: 11 }),
  }),
  fc.record({ a: fc.constant('state' as const), dom, from: fc.nat(8), to: fc.nat(8) }),
  fc.record({ a: fc.constant('stall' as const) }),
  fc.record({ a: fc.constant('log' as const), dom, task, text: fc.string() }),
  fc.record({ a: fc.constant('other' as const), dom, kind: fc.string({ minLength: 1, maxLength: 8 }) }),
);

/** Turn actions into a plausible run: flow ids from counters, upcalls deliver pending sends. */
function runOf(steps: Array<{ dt: number; act: Action }>): TraceEvent[] {
  const out: TraceEvent[] = [];
  let t = 0;
  let nextFlow = 1;
  const pendingSends: number[] = [];
  const pendingFires: number[] = [];
  for (const { dt, act } of steps) {
    t += dt;
    const name = (n: number) => `task${n}#${n}`;
    switch (act.a) {
      case 'start':
      case 'end':
        out.push(
          ev(t, act.dom, name(act.task), 'blkfront', act.a === 'start' ? 'request-start' : 'request-end', {
            ring: `r${act.ring}`,
            id: BigInt(act.id),
            op: 'read',
          }),
        );
        break;
      case 'send': {
        const flow = nextFlow++;
        pendingSends.push(flow);
        out.push(ev(t, act.dom, name(act.task), 'evtchn', 'evtchn-send', { port: 1, flow }));
        break;
      }
      case 'upcall': {
        const flows = pendingSends.splice(0, act.n);
        if (flows.length > 0)
          out.push(ev(t, act.dom, name(act.task), 'evtchn', 'evtchn-upcall', { port: 2, flows }));
        break;
      }
      case 'fire': {
        const flow = nextFlow++;
        pendingFires.push(flow);
        out.push(ev(t, 0, name(act.task), 'xenstored', 'watch-fire', { path: 'p', token: 'k', flow }));
        break;
      }
      case 'callback': {
        const flow = pendingFires.shift();
        if (flow !== undefined)
          out.push(
            ev(t, act.dom, name(act.task), 'xenbus', 'watch-callback', { path: 'p', token: 'k', flow }),
          );
        break;
      }
      case 'snapshot':
        out.push(
          ev(t, act.dom, name(act.task), 'blkback', 'ring', {
            ring: 'r',
            nr_ents: 32,
            req_prod: act.prod,
            req_event: act.cons + 1,
            rsp_prod: act.cons,
            rsp_event: act.cons + 1,
            req_cons: act.cons,
            rsp_prod_pvt: act.cons,
          }),
        );
        break;
      case 'grant':
        out.push(
          ev(t, act.dom, 'bb#1', 'blkback', act.map ? 'grant-map' : 'grant-unmap', { count: act.count }),
        );
        break;
      case 'state':
        out.push(
          ev(t, act.dom, 'xenwatch#1', 'xenbus', 'xenbus-state', {
            path: 'device/vbd/1',
            from: act.from,
            to: act.to,
          }),
        );
        break;
      case 'stall':
        out.push(ev(t, -1, '-', 'runtime', 'stall', { chain: [], cycle: false }));
        break;
      case 'log':
        out.push(ev(t, act.dom, name(act.task), 'blkback', 'log', { msg: act.text }));
        break;
      case 'other':
        out.push(ev(t, act.dom, '-', 'x', act.kind, { v: 1n }));
        break;
    }
  }
  return out;
}

describe('property: random runs give valid traces', () => {
  test('every generated trace passes checkChromeTrace', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ dt: fc.constantFrom(0, 0, 0.001, 0.25, 3), act: action }), { maxLength: 120 }),
        (steps) => {
          const events = runOf(steps);
          const trace = toChromeTrace(events);
          expect(checkChromeTrace(trace)).toEqual([]);
          // nothing dropped: one or more trace events per input event
          const body = trace.traceEvents.filter((e) => e.ph !== 'M' && e.ph !== 's' && e.ph !== 'f');
          const unfinished = body.filter((e) => e.args?.unfinished === true).length;
          expect(body.length - unfinished).toBe(events.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a large synthetic run (40 000 events) is valid and keeps every request', () => {
    const steps = [];
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const open = new Set<number>();
    for (let i = 0; i < 40_000; i++) {
      const r = rnd(10);
      const id = rnd(64);
      let act: Action;
      if (r < 3)
        act = open.has(id)
          ? { a: 'end', dom: 1, task: 1, ring: 0, id }
          : { a: 'start', dom: 1, task: 0, ring: 0, id };
      else if (r < 5) act = { a: 'send', dom: rnd(2), task: rnd(3) };
      else if (r < 7) act = { a: 'upcall', dom: rnd(2), task: 3, n: 2 };
      else if (r < 8) act = { a: 'snapshot', dom: 0, task: 2, prod: i, cons: i - rnd(4) };
      else act = { a: 'grant', dom: 0, map: rnd(2) === 0, count: 1 };
      if (act.a === 'start') open.add(id);
      if (act.a === 'end') open.delete(id);
      steps.push({ dt: rnd(3) * 0.01, act });
    }
    const events = runOf(steps);
    const trace = toChromeTrace(events);
    expect(checkChromeTrace(trace)).toEqual([]);
    const begins = trace.traceEvents.filter((e) => e.ph === 'b').length;
    const starts = events.filter((e) => e.kind === 'request-start').length;
    expect(begins).toBe(starts);
    expect(trace.traceEvents.filter((e) => e.ph === 'e')).toHaveLength(begins);
  });
});
