import { afterEach, describe, expect, test } from 'vitest';
import { createEngine } from '../../emulator/runtime/create-engine.js';
import type { Engine, EngineKind, TraceFilter, TraceKeep } from '../../emulator/runtime/engine.js';
import { compileTraceKeep, TraceSink } from '../../emulator/runtime/trace-sink.js';

const fixture = (name: string) => new URL(`./fixtures/${name}.ts`, import.meta.url).href;

const PAIRS: [string, string][] = [
  ['blkback', 'req'],
  ['blkback', 'log'],
  ['blkfront', 'req'],
  ['xenstored', 'watch'],
  ['xenstored', 'log'],
];

describe('compileTraceKeep', () => {
  // Expected: which of PAIRS are kept.
  test.each<[string, TraceKeep | undefined, boolean[]]>([
    ['undefined', undefined, [true, true, true, true, true]],
    ["'all'", 'all', [true, true, true, true, true]],
    ["'none'", 'none', [false, false, false, false, false]],
    ['{}', {}, [true, true, true, true, true]],
    ['kinds only', { kinds: ['log'] }, [false, true, false, false, true]],
    ['comps only', { comps: ['blkback'] }, [true, true, false, false, false]],
    [
      'kinds and comps',
      { kinds: ['req', 'watch'], comps: ['blkfront', 'xenstored'] },
      [false, false, true, true, false],
    ],
    ['empty kinds', { kinds: [] }, [false, false, false, false, false]],
    ['empty comps', { kinds: ['log'], comps: [] }, [false, false, false, false, false]],
  ])('%s', (_name, keep, expected) => {
    const f = compileTraceKeep(keep);
    expect(PAIRS.map(([c, k]) => f === undefined || f(c, k))).toEqual(expected);
  });

  test('a spec keeping everything compiles to no check at all', () => {
    expect(compileTraceKeep('all')).toBeUndefined();
    expect(compileTraceKeep({})).toBeUndefined();
  });

  test.each<[unknown, string]>([
    ['some', `traceKeep must be 'all', 'none' or { kinds?, comps? }, got "some"`],
    [null, `traceKeep must be 'all', 'none' or { kinds?, comps? }, got null`],
    [['log'], `traceKeep must be 'all', 'none' or { kinds?, comps? }, got ["log"]`],
    [{ kind: ['log'] }, 'traceKeep: unknown field "kind"'],
    [{ kinds: 'log' }, 'traceKeep.kinds must be an array of strings, got "log"'],
    [{ comps: ['a', 3] }, 'traceKeep.comps[1] must be a string, got 3'],
  ])('rejects %j', (keep, message) => {
    expect(() => compileTraceKeep(keep as TraceKeep)).toThrow(message);
    expect(() => createEngine('sim', { seed: 1, traceKeep: keep as TraceKeep })).toThrow(message);
    expect(() => createEngine('threads', { timeScale: 1, traceKeep: keep as TraceKeep })).toThrow(message);
  });
});

describe('TraceSink with keep', () => {
  test('dropped events are not recorded, wants says so, and dmesg still keeps every log line', () => {
    const filter: TraceFilter = (comp) => comp !== 'xenstored';
    const sink = new TraceSink({ now: () => 7, keep: { kinds: ['req', 'log'] }, filter });
    const tr = sink.tracer(3, () => 'task#1');
    for (const [c, k] of PAIRS) {
      if (k === 'log') tr.log(c, 'hi');
      else tr.emit(c, k);
    }
    // keep and filter must both keep an event
    expect(PAIRS.map(([c, k]) => tr.wants?.(c, k))).toEqual([true, true, true, false, false]);
    expect(sink.events.map((e) => `${e.comp}/${e.kind}`)).toEqual([
      'blkback/req',
      'blkback/log',
      'blkfront/req',
    ]);
    expect(sink.dmesg()).toEqual({ 3: ['[    0.007000] blkback: hi', '[    0.007000] xenstored: hi'] });
  });
});

let engines: Engine[] = [];
afterEach(async () => {
  await Promise.all(engines.map((e) => e.close()));
  engines = [];
});

async function probeRun(kind: EngineKind, keep: TraceKeep | undefined, traceFilter?: TraceFilter) {
  const opts = {
    ...(keep === undefined ? {} : { traceKeep: keep }),
    ...(traceFilter ? { traceFilter } : {}),
  };
  const engine =
    kind === 'sim'
      ? createEngine('sim', { seed: 3, ...opts })
      : createEngine('threads', { timeScale: 1, watchdogMs: 1000, ...opts });
  engines.push(engine);
  await engine.addDomain({ domid: 1, name: 'probe', module: fixture('trace-probe') });
  const r = await engine.run(async (ctl) => {
    const wanted = await ctl.call(1, 'probe', PAIRS);
    ctl.env.trace.emit('host', 'done');
    return wanted;
  });
  expect(r.error).toBeUndefined();
  const domTrace = r.trace.filter((e) => e.dom === 1 && PAIRS.some(([c, k]) => c === e.comp && k === e.kind));
  return {
    wanted: r.value,
    trace: domTrace.map((e) => `${e.comp}/${e.kind}`),
    host: r.trace.filter((e) => e.comp === 'host').map((e) => e.kind),
    dmesg: r.dmesg[1]?.map((l) => l.replace(/^\[[ .\d]+\] /, '')),
  };
}

describe.each<EngineKind>(['sim', 'threads'])('traceKeep in the %s engine', (kind) => {
  test('the domain itself wants only what the spec keeps; the trace holds nothing else', async () => {
    const r = await probeRun(kind, { comps: ['blkback', 'host'] });
    expect(r.wanted).toEqual([true, true, false, false, false]);
    expect(r.trace).toEqual(['blkback/req', 'blkback/log']);
    expect(r.host).toEqual(['done']); // the controller's events go through the same spec
    expect(r.dmesg).toEqual(['blkback: blkback says hello', 'xenstored: xenstored says hello']);
  });

  test("'none' keeps no event, yet dmesg keeps its lines", async () => {
    const r = await probeRun(kind, 'none');
    expect(r.wanted).toEqual([false, false, false, false, false]);
    expect(r.trace).toEqual([]);
    expect(r.host).toEqual([]);
    expect(r.dmesg).toEqual(['blkback: blkback says hello', 'xenstored: xenstored says hello']);
  });

  test('a traceFilter function still applies, together with the spec', async () => {
    const r = await probeRun(kind, { kinds: ['req', 'log', 'done'] }, (comp) => comp !== 'blkfront');
    expect(r.trace).toEqual(['blkback/req', 'blkback/log', 'xenstored/log']);
    expect(r.host).toEqual(['done']);
  });
});

test('threads: a traceFilter function alone is applied in the main thread (workers still record)', async () => {
  const r = await probeRun('threads', undefined, (_comp, k) => k === 'log');
  expect(r.wanted).toEqual([true, true, true, true, true]);
  expect(r.trace).toEqual(['blkback/log', 'xenstored/log']);
});
