import { describe, expect, test } from 'vitest';
import type { TraceEvent } from '../../emulator/runtime/engine.js';
import {
  checkEvent,
  kindSpec,
  TRACE_KINDS,
  xenbusStateLabel,
  xenbusStateValue,
} from '../../emulator/trace/vocabulary.js';

const ev = (comp: string, kind: string, fields?: Record<string, unknown>): TraceEvent => ({
  t: 0,
  dom: 0,
  task: 't#1',
  comp,
  kind,
  ...(fields === undefined ? {} : { fields }),
});

describe('the catalogue', () => {
  test('every entry is documented, its fields are unique, flows come in out/in pairs', () => {
    for (const k of TRACE_KINDS) {
      expect(k.doc.length, k.kind).toBeGreaterThan(10);
      const names = k.fields.map((f) => f.name);
      expect(new Set(names).size, k.kind).toBe(names.length);
      if (k.flow !== undefined) expect(['flow-out', 'flow-in']).toContain(k.perfetto);
    }
    for (const family of ['evtchn', 'watch']) {
      const roles = TRACE_KINDS.filter((k) => k.flow === family).map((k) => k.perfetto);
      expect(roles.sort()).toEqual(['flow-in', 'flow-out']);
    }
  });

  test('generic names are scoped to their component', () => {
    expect(kindSpec('send', 'tap-ctl')?.kind).toBe('send');
    expect(kindSpec('send', 'hello')).toBeUndefined();
    expect(kindSpec('op', 'libxl')?.kind).toBe('op');
    expect(kindSpec('xenbus-state', 'anyone')?.kind).toBe('xenbus-state');
    expect(kindSpec('glow', 'x')).toBeUndefined();
  });
});

describe('checkEvent', () => {
  test.each<[string, TraceEvent, string | undefined]>([
    ['uncatalogued kind', ev('x', 'glow', { a: 1 }), undefined],
    ['request with disk', ev('blkfront', 'request-start', { disk: 'xvda', id: 3, op: 'read' }), undefined],
    ['request with bigint id', ev('blkfront', 'request-start', { ring: 'r', id: 3n, op: 'read' }), undefined],
    [
      'request without ring or disk',
      ev('blkfront', 'request-start', { id: 3, op: 'read' }),
      'needs ring or disk (a string) (blkfront request-start)',
    ],
    [
      'request id a float',
      ev('blkfront', 'request-end', { disk: 'xvda', id: 1.5 }),
      'field id: expected id, got 1.5 (blkfront request-end)',
    ],
    ['no fields at all', ev('blkback', 'blk-req'), 'field phase: missing (blkback blk-req)'],
    [
      'state by name',
      ev('blkback', 'xenbus-state', { path: 'p', from: 'InitWait', to: 'Connected' }),
      undefined,
    ],
    [
      'state out of range',
      ev('blkback', 'xenbus-state', { path: 'p', from: 9, to: 4 }),
      'field from: expected xenbus-state, got 9 (blkback xenbus-state)',
    ],
    [
      'upcall without flow',
      ev('evtchn', 'evtchn-upcall', { port: 1 }),
      'needs flow or flows (evtchn evtchn-upcall)',
    ],
    [
      'upcall flows not integers',
      ev('evtchn', 'evtchn-upcall', { port: 1, flows: [1, 'a'] }),
      'field flows: expected integer[], got [1,"a"] (evtchn evtchn-upcall)',
    ],
    [
      'ring index beyond 32 bits',
      ev('blkback', 'ring', { ring: 'r', req_prod: 2 ** 32, req_event: 1, rsp_prod: 0, rsp_event: 1 }),
      'req_prod must be an unsigned 32-bit index, got 4294967296 (blkback ring)',
    ],
    ['log with msg', ev('blkback', 'log', { msg: 'hi' }), undefined],
    ['log with neither', ev('libxl', 'log', { level: 'error' }), 'needs msg or message (libxl log)'],
    ['tap-ctl timeout', ev('tap-ctl', 'timeout', { from: 201, waited: 'DETACH_RSP', seconds: 5 }), undefined],
    ['hello send is not tap-ctl send', ev('hello', 'send', { n: 1 }), undefined],
  ])('%s', (_what, e, problem) => {
    expect(checkEvent(e)).toBe(problem);
  });

  test.each([
    [4, 4, 'Connected(4)'],
    ['Closing', 5, 'Closing(5)'],
    [8, 8, 'Reconfigured(8)'],
    [9, undefined, '9'],
    ['closing', undefined, 'closing'],
    [-1, undefined, '-1'],
    [null, undefined, 'null'],
  ])('XenbusState %j -> %s, %s', (input, value, label) => {
    expect(xenbusStateValue(input)).toBe(value);
    expect(xenbusStateLabel(input)).toBe(label);
  });
});
