import { describe, expect, test } from 'vitest';
import { traceWanted } from '../../emulator/runtime/engine.js';
import { dmesgStamp, mergeByTime, TraceSink } from '../../emulator/runtime/trace-sink.js';

describe('dmesg', () => {
  test.each([
    [0, '[    0.000000]'],
    [5000.123, '[    5.000123]'],
    [1.5, '[    0.001500]'],
    [123_456_789.25, '[123456.789250]'],
  ])('stamp(%s ms) = %s', (ms, stamp) => {
    expect(dmesgStamp(ms)).toBe(stamp);
  });

  test('lines are kept per domain in a bounded ring, oldest dropped first, and traced as "log"', () => {
    let t = 0;
    const sink = new TraceSink({ now: () => t, dmesgLines: 3 });
    const tr = sink.tracer(1, () => 'xenwatch#2');
    for (let i = 0; i < 5; i++) {
      t = i * 1000;
      tr.log('blkback', `line ${i}`);
    }
    sink.tracer(0, () => '-').log('xenstored', 'hello');
    expect(sink.dmesg()).toEqual({
      1: [
        '[    2.000000] blkback: line 2',
        '[    3.000000] blkback: line 3',
        '[    4.000000] blkback: line 4',
      ],
      0: ['[    4.000000] xenstored: hello'],
    });
    expect(sink.events[0]).toEqual({
      t: 0,
      dom: 1,
      task: 'xenwatch#2',
      comp: 'blkback',
      kind: 'log',
      fields: { msg: 'line 0' },
    });
    expect(sink.events).toHaveLength(6); // the trace keeps every line; only dmesg is bounded
  });

  test('a bad ring size is refused', () => {
    expect(() => new TraceSink({ now: () => 0, dmesgLines: 0 })).toThrow(
      'dmesgLines must be a positive integer, got 0',
    );
  });
});

describe('events', () => {
  test('emit fills time, domain and task; the filter runs before the event is built', () => {
    let t = 7;
    const sink = new TraceSink({ now: () => t, filter: (comp, kind) => comp !== 'ring' || kind === 'stuck' });
    const tr = sink.tracer(2, () => 'blkfront#5');
    tr.emit('ring', 'push', { prod: 1 });
    tr.emit('ring', 'stuck');
    t = 9;
    tr.emit('blkfront', 'connect', { state: 4 });
    expect(sink.drain()).toEqual([
      { t: 7, dom: 2, task: 'blkfront#5', comp: 'ring', kind: 'stuck' },
      { t: 9, dom: 2, task: 'blkfront#5', comp: 'blkfront', kind: 'connect', fields: { state: 4 } },
    ]);
    expect(sink.events).toEqual([]);
  });

  test('mergeByTime is stable across lists', () => {
    const e = (t: number, dom: number, kind: string) => ({ t, dom, task: '-', comp: 'c', kind });
    expect(
      mergeByTime([
        [e(1, 0, 'a'), e(3, 0, 'b')],
        [e(1, 1, 'c'), e(2, 1, 'd')],
      ]).map((x) => x.kind),
    ).toEqual(['a', 'c', 'd', 'b']);
  });
});

describe('wants', () => {
  test.each([
    ['ring', 'stuck', true],
    ['ring', 'state', false],
    ['blkfront', 'request-start', true],
  ])('with a filter, wants(%s, %s) = %s and emit agrees', (comp, kind, kept) => {
    const sink = new TraceSink({ now: () => 0, filter: (c, k) => c !== 'ring' || k === 'stuck' });
    let asked = 0;
    const tr = sink.tracer(2, () => {
      asked++;
      return 'ring#1';
    });
    expect(tr.wants?.(comp, kind)).toBe(kept);
    tr.emit(comp, kind, { x: 1 });
    expect(sink.events.length).toBe(kept ? 1 : 0);
    // A dropped event never looks up the running task's name.
    expect(asked).toBe(kept ? 1 : 0);
  });

  test('without a filter everything is wanted; traceWanted treats a Tracer without wants as keeping all', () => {
    const sink = new TraceSink({ now: () => 0 });
    const tr = sink.tracer(0, () => '-');
    expect(tr.wants?.('any', 'thing')).toBe(true);
    expect(traceWanted({ emit: () => {}, log: () => {} }, 'any', 'thing')).toBe(true);
    expect(
      traceWanted(
        new TraceSink({ now: () => 0, filter: () => false }).tracer(0, () => '-'),
        'a',
        'b',
      ),
    ).toBe(false);
  });
});
