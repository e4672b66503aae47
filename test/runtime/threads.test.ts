import { afterEach, describe, expect, test } from 'vitest';
import { createEngine } from '../../emulator/runtime/create-engine.js';
import type { Engine } from '../../emulator/runtime/engine.js';
import { chainVerdict } from '../../emulator/runtime/waitgraph.js';
import { runCycle } from './cycle-run.js';

const fixture = (name: string) => new URL(`./fixtures/${name}.ts`, import.meta.url).href;

let engines: Engine[] = [];
afterEach(async () => {
  await Promise.all(engines.map((e) => e.close()));
  engines = [];
});

function make(kind: 'sim' | 'threads', watchdogMs = 50): Engine {
  const e =
    kind === 'sim' ? createEngine('sim', { seed: 5 }) : createEngine('threads', { timeScale: 1, watchdogMs });
  engines.push(e);
  return e;
}

describe('threads engine', () => {
  test('two workers ping-pong 10,000 times through a shared Int32Array and kicks', async () => {
    const engine = make('threads');
    const ball = new SharedArrayBuffer(4);
    engine.addShared('ball', ball);
    await engine.addDomain({
      domid: 1,
      name: 'ping',
      module: fixture('pingpong'),
      config: { peer: 2, parity: 0 },
    });
    await engine.addDomain({
      domid: 2,
      name: 'pong',
      module: fixture('pingpong'),
      config: { peer: 1, parity: 1 },
    });
    const r = await engine.run(async (ctl) => {
      let pong: unknown;
      const q = ctl.env.waitQueue('pong');
      ctl.env.spawn('pong', async () => {
        pong = await ctl.call(2, 'play', 20_000);
        q.wakeAll();
      });
      const ping = await ctl.call(1, 'play', 20_000);
      await ctl.env.wait(q, () => pong !== undefined, { what: 'pong to finish' });
      return [ping, pong];
    });
    expect(r.error).toBeUndefined();
    expect(r.outcome).toBe('completed');
    expect(r.value).toEqual([10_000, 10_000]);
    expect(new Int32Array(ball)[0]).toBe(20_000);
    expect(r.stalls).toEqual([]);
  });

  test('call errors propagate with the same message and name', async () => {
    const engine = make('threads');
    await engine.addDomain({ domid: 1, name: 'f', module: fixture('failing') });
    const r = await engine.run(async (ctl) => {
      const out: string[] = [];
      for (const m of ['explode', 'nosuch']) {
        try {
          await ctl.call(1, m, 'disk');
        } catch (e) {
          out.push(`${(e as Error).name}: ${(e as Error).message}`);
        }
      }
      out.push(JSON.stringify(await ctl.call(1, 'echo', { a: [1, 2] })));
      return out;
    });
    expect(r.value).toEqual([
      'RangeError: bad disk',
      "Error: call: dom1 has no method 'nosuch' (methods: explode, echo)",
      '{"a":[1,2]}',
    ]);
  });

  test('a domain whose module lacks the boot export is refused precisely', async () => {
    const engine = make('threads');
    await expect(
      engine.addDomain({ domid: 4, name: 'x', module: fixture('failing'), exportName: 'nope' }),
    ).rejects.toThrow(`addDomain dom4: ${fixture('failing')} has no function export 'nope'`);
  });
});

describe('cross-worker stalls, and the same verdicts in both engines', () => {
  const cycleRun = (kind: 'sim' | 'threads', timeoutMs?: number) => runCycle(make(kind), timeoutMs);

  test('a cross-worker cycle with no timeout is a deadlock naming both links', async () => {
    const [sim, threads] = [await cycleRun('sim'), await cycleRun('threads')];
    expect(threads.outcome).toBe('deadlock');
    expect(threads.stalls).toHaveLength(1);
    const verdict = chainVerdict(threads.stalls[0]);
    expect(verdict).toEqual({
      links: [
        { holder: 'host/controller', waitsFor: 'dom1.run to return' },
        { holder: 'dom1/run', waitsFor: 'flag of dom2' },
        { holder: 'dom2/run', waitsFor: 'flag of dom1' },
      ],
      cycle: true,
    });
    expect(sim.outcome).toBe(threads.outcome);
    expect(chainVerdict(sim.stalls[0])).toEqual(verdict);
  });

  test('with a timeout on one side the watchdog reports a stall that the timeout breaks', async () => {
    const threads = await cycleRun('threads', 1000);
    const sim = await cycleRun('sim', 1000);
    expect(threads.outcome).toBe('completed');
    expect(threads.value).toEqual(['timeout', 'ok']);
    expect(threads.stalls).toHaveLength(1);
    const s = threads.stalls[0];
    expect(chainVerdict(s)).toEqual(chainVerdict(sim.stalls[0]));
    expect(chainVerdict(s).links.map((l) => l.holder)).toEqual(['dom1/run', 'dom2/run']);
    expect(s.brokenBy?.timer).toBe('peer flag timeout');
    expect(s.end?.by).toBe('timeout');
    expect(threads.endTime).toBeGreaterThanOrEqual(1000);
    expect(threads.trace.filter((e) => e.kind.startsWith('stall')).map((e) => e.kind)).toEqual([
      'stall',
      'stall-end',
    ]);
  });
});

describe('threads watchdog and housekeeping', () => {
  test('background sleeps do not keep a deadlocked run alive; plain sleeps are not stalls', async () => {
    const engine = make('threads', 60);
    const r = await engine.run(async ({ env }) => {
      env.spawn(
        'purge',
        async () => {
          for (;;) await env.sleep(5, { background: true, what: 'purge interval' });
        },
        { daemon: true },
      );
      await env.sleep(150); // longer than the watchdog period: idleness, not a stall
      await env.wait(env.waitQueue('never'), () => false, { what: 'a wake that never comes' });
    });
    expect(r.outcome).toBe('deadlock');
    expect(r.stalls).toHaveLength(1);
    expect(r.stalls[0].chain).toEqual([
      { holder: expect.stringMatching(/^host\/controller#\d+$/), waitsFor: 'a wake that never comes' },
    ]);
    expect(r.endTime).toBeGreaterThanOrEqual(150);
  });
});
