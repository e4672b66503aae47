import { afterEach, describe, expect, test } from 'vitest';
import { createEngine } from '../../emulator/runtime/create-engine.js';
import type { Engine, EngineProgress } from '../../emulator/runtime/engine.js';
import { ExternalInbox } from '../../emulator/runtime/external-inbox.js';

const fixture = (name: string) => new URL(`./fixtures/${name}.ts`, import.meta.url).href;

let engines: Engine[] = [];
afterEach(async () => {
  await Promise.all(engines.map((e) => e.close()));
  engines = [];
});

interface Say {
  n: number;
  done: (total: number) => void;
}

const said = (p: EngineProgress) =>
  p.trace.filter((e) => e.comp === 'chatty' && e.kind === 'said').map((e) => [e.dom, e.fields?.i]);

describe.each(['sim', 'threads'] as const)('Engine.progress (%s)', (kind) => {
  test('shows the trace, kernel logs and clock while the run waits for outside input', async () => {
    const engine =
      kind === 'sim'
        ? createEngine('sim', { seed: 3 })
        : createEngine('threads', { timeScale: 1, watchdogMs: 50 });
    engines.push(engine);
    await engine.addDomain({ domid: 1, name: 'chatty', module: fixture('chatty') });
    const inbox = new ExternalInbox<Say>();
    const run = engine.run(async (ctl) => {
      for (;;) {
        const s = await ctl.receive!(inbox, 'the next request');
        if (s === undefined) return;
        s.done((await ctl.call(1, 'say', s.n)) as number);
      }
    });
    const say = (n: number) => new Promise<number>((resolve) => inbox.push({ n, done: resolve }));

    const before = await engine.progress!();
    expect(said(before)).toEqual([]);
    expect(before.stalls).toEqual([]);

    expect(await say(2)).toBe(2);
    const first = await engine.progress!();
    expect(said(first)).toEqual([
      [1, 0],
      [1, 1],
    ]);
    expect(first.dmesg[1]?.map((l) => l.replace(/^\[[ \d.]+\] /, ''))).toEqual([
      'chatty: line 0',
      'chatty: line 1',
    ]);
    expect(first.now).toBeGreaterThanOrEqual(2);
    expect(first.stalls).toEqual([]);

    expect(await say(3)).toBe(5);
    const second = await engine.progress!();
    expect(said(second)).toEqual([0, 1, 2, 3, 4].map((i) => [1, i]));
    expect(second.dmesg[1]).toHaveLength(5);
    expect(second.now).toBeGreaterThanOrEqual(first.now + 3);
    // A snapshot: what was returned earlier does not grow with the run.
    expect(said(first)).toHaveLength(2);
    for (let i = 1; i < second.trace.length; i++)
      expect(second.trace[i].t).toBeGreaterThanOrEqual(second.trace[i - 1].t);

    inbox.close();
    const r = await run;
    expect(r.error).toBeUndefined();
    expect(r.outcome).toBe('completed');
    // What progress handed over is still in the end result, once each.
    expect(said({ ...second, trace: r.trace })).toEqual(said(second));
    expect(r.dmesg[1]).toEqual(second.dmesg[1]);
  }, 30_000);
});

test('progress on a closed threads engine is a precise error', async () => {
  const engine = createEngine('threads', { timeScale: 1 });
  await engine.close();
  await expect(engine.progress!()).rejects.toThrow('progress: the engine is closed');
});
