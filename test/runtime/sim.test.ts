import { describe, expect, test } from 'vitest';
import type { Controller, Engine, RunResult } from '../../emulator/runtime/engine.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import { chainVerdict } from '../../emulator/runtime/waitgraph.js';
import { runCycle } from './cycle-run.js';

const fixture = (name: string) => new URL(`./fixtures/${name}.ts`, import.meta.url).href;

async function racy(seed: number, replay?: number[]): Promise<RunResult<unknown>> {
  const engine = createSimEngine({ seed, replay });
  await engine.addDomain({ domid: 1, name: 'racer', module: fixture('racy') });
  return engine.run((ctl) => ctl.call(1, 'race', 6, 20));
}

async function hostRun<T>(seed: number, body: (ctl: Controller) => Promise<T>, engine?: Engine) {
  const e = engine ?? createSimEngine({ seed });
  return e.run(body);
}

describe('sim scheduler determinism', () => {
  test('same seed gives a byte-identical trace', async () => {
    const a = await racy(7);
    const b = await racy(7);
    expect(a.outcome).toBe('completed');
    expect(a.trace.length).toBeGreaterThan(100);
    expect(JSON.stringify(a.trace)).toBe(JSON.stringify(b.trace));
    expect(a.choices).toEqual(b.choices);
  });

  test('different seeds give different interleavings of a racy program', async () => {
    const traces = new Set<string>();
    const values = new Set<unknown>();
    for (const seed of [1, 2, 3, 4, 5]) {
      const r = await racy(seed);
      traces.add(JSON.stringify(r.trace));
      values.add(r.value);
    }
    expect(traces.size).toBe(5);
    expect(values.size).toBeGreaterThan(1); // lost updates differ with the schedule
  });

  test('replaying the choice list reproduces the trace exactly, even with another seed', async () => {
    const a = await racy(11);
    const b = await racy(999, a.choices);
    expect(JSON.stringify(b.trace)).toBe(JSON.stringify(a.trace));
    expect(b.choices).toEqual(a.choices);
  });

  test('an out-of-range replay choice is an error naming the position', async () => {
    const r = await racy(1, [0, 0, 57]);
    expect(r.outcome).toBe('error');
    expect(r.error?.message).toMatch(/replay\[2\] = 57, but only \d+ tasks were runnable/);
  });
});

describe('virtual time', () => {
  test('time jumps to the earliest timer and running code costs nothing', async () => {
    const r = await hostRun(1, async ({ env }) => {
      const seen: number[] = [];
      const q = env.waitQueue('done');
      let n = 0;
      for (const ms of [300, 100, 200]) {
        env.spawn(`s${ms}`, async () => {
          await env.sleep(ms);
          seen.push(env.now());
          n++;
          q.wakeAll();
        });
      }
      for (let i = 0; i < 1e5; i++) n += 0; // busy work: no time passes
      await env.wait(q, () => n === 3, { what: 'sleepers' });
      return seen;
    });
    expect(r.outcome).toBe('completed');
    expect(r.value).toEqual([100, 200, 300]);
    expect(r.endTime).toBe(300);
    expect(r.stalls).toEqual([]);
  });

  test('equal deadlines fire in arming order', async () => {
    const r = await hostRun(3, async ({ env }) => {
      const order: string[] = [];
      const q = env.waitQueue('done');
      for (const name of ['a', 'b', 'c', 'd']) {
        env.spawn(name, async () => {
          await env.sleep(50);
          order.push(`${name}@${env.now()}`);
          q.wakeAll();
        });
      }
      await env.wait(q, () => order.length === 4, { what: 'all' });
      return order.sort();
    });
    expect(r.value).toEqual(['a@50', 'b@50', 'c@50', 'd@50']);
  });

  test.each([
    { name: 'woken before the timeout', wakeAt: 40, timeout: 100, expected: 'ok', at: 40 },
    { name: 'timeout before the wake', wakeAt: 400, timeout: 100, expected: 'timeout', at: 100 },
    { name: 'condition already true', wakeAt: -1, timeout: 100, expected: 'ok', at: 0 },
  ])('wait with timeout: $name', async ({ wakeAt, timeout, expected, at }) => {
    const r = await hostRun(5, async ({ env }) => {
      const q = env.waitQueue('flag');
      let flag = wakeAt < 0;
      if (wakeAt >= 0) {
        env.spawn('setter', async () => {
          await env.sleep(wakeAt);
          flag = true;
          q.wakeAll();
        });
      }
      const res = await env.wait(q, () => flag, { what: 'flag', timeoutMs: timeout });
      return { res, t: env.now() };
    });
    expect(r.outcome).toBe('completed');
    expect(r.value).toEqual({ res: expected, t: at });
  });

  test('a wake with a still-false condition blocks again', async () => {
    const r = await hostRun(2, async ({ env }) => {
      const q = env.waitQueue('v');
      let v = 0;
      env.spawn('bumper', async () => {
        for (let i = 0; i < 3; i++) {
          await env.sleep(10);
          v++;
          q.wakeAll();
        }
      });
      await env.wait(q, () => v === 3, { what: 'v to reach 3' });
      return env.now();
    });
    expect(r.value).toBe(30);
  });

  test.each([
    { ms: -1, msg: 'sleep: ms must be a finite number >= 0, got -1' },
    { ms: Number.NaN, msg: 'sleep: ms must be a finite number >= 0, got NaN' },
  ])('sleep($ms) is rejected precisely', async ({ ms, msg }) => {
    const r = await hostRun(1, async ({ env }) => {
      await env.sleep(ms);
    });
    expect(r.outcome).toBe('error');
    expect(r.error?.message).toBe(msg);
  });
});

describe('mutex', () => {
  test('FIFO hand-off: waiters get the lock in arrival order', async () => {
    const r = await hostRun(9, async ({ env }) => {
      const m = env.mutex('bd_mutex');
      const order: string[] = [];
      const q = env.waitQueue('done');
      await m.lock();
      for (const name of ['a', 'b', 'c']) {
        env.spawn(name, async () => {
          await m.lock();
          order.push(name);
          await env.sleep(5);
          m.unlock();
          q.wakeAll();
        });
        await env.sleep(1); // a, b, c queue up in this order
      }
      m.unlock();
      await env.wait(q, () => order.length === 3, { what: 'all' });
      return order;
    });
    expect(r.value).toEqual(['a', 'b', 'c']);
  });

  test('tryLock fails while held, succeeds when free; unlock by a non-owner throws', async () => {
    const r = await hostRun(4, async ({ env }) => {
      const m = env.mutex('m');
      const results: unknown[] = [m.tryLock()];
      let err = '';
      const q = env.waitQueue('done');
      let done = false;
      env.spawn('other', async () => {
        results.push(m.tryLock());
        try {
          m.unlock();
        } catch (e) {
          err = (e as Error).message;
        }
        done = true;
        q.wakeAll();
      });
      await env.wait(q, () => done, { what: 'other' });
      m.unlock();
      results.push(m.tryLock(), m.owner?.name);
      return { results, err };
    });
    expect(r.value).toEqual({
      results: [true, false, true, 'controller'],
      err: expect.stringMatching(
        /^mutex m: unlock by host\/other#\d+, but it is owned by host\/controller#\d+$/,
      ),
    });
  });
});

describe('stalls and deadlocks', () => {
  const cycleRun = (timeoutMs?: number) => runCycle(createSimEngine({ seed: 3 }), timeoutMs);

  test('two tasks waiting on each other with no timeout: deadlock naming both links', async () => {
    const r = await cycleRun();
    expect(r.outcome).toBe('deadlock');
    expect(r.stalls).toHaveLength(1);
    const s = r.stalls[0];
    expect(s.brokenBy).toBeUndefined();
    expect(chainVerdict(s)).toEqual({
      links: [
        { holder: 'host/controller', waitsFor: 'dom1.run to return' },
        { holder: 'dom1/run', waitsFor: 'flag of dom2' },
        { holder: 'dom2/run', waitsFor: 'flag of dom1' },
      ],
      cycle: true,
    });
    expect(s.chain[2].heldBy).toBe(s.chain[1].holder);
    expect(r.trace.some((e) => e.kind === 'deadlock')).toBe(true);
  });

  test('the same cycle with a 5 s timeout on one side: a stall broken by that timeout', async () => {
    const r = await cycleRun(5000);
    expect(r.outcome).toBe('completed');
    expect(r.value).toEqual(['timeout', 'ok']);
    expect(r.stalls).toHaveLength(1);
    const s = r.stalls[0];
    expect(s.at).toBe(0);
    expect(s.cycle).toBe(true);
    expect(chainVerdict(s).links.map((l) => l.holder)).toEqual(['dom1/run', 'dom2/run']);
    expect(s.chain[0].deadline).toBe(5000);
    expect(s.brokenBy).toEqual({ timer: 'peer flag timeout', task: s.chain[0].holder, at: 5000 });
    expect(s.end).toEqual({ at: 5000, by: 'timeout', task: s.chain[0].holder });
    expect(r.endTime).toBeGreaterThanOrEqual(5000);
    const kinds = r.trace.filter((e) => e.kind.startsWith('stall')).map((e) => [e.kind, e.t]);
    expect(kinds).toEqual([
      ['stall', 0],
      ['stall-end', 5000],
    ]);
  });

  test('ordinary sleeps do not raise stalls, even long ones beside a timeout', async () => {
    const r = await hostRun(1, async ({ env }) => {
      const q = env.waitQueue('never');
      env.spawn('worker', async () => {
        await env.sleep(60_000);
      });
      // The worker's sleep ends first: waiting for it is not a stall.
      return env.wait(q, () => false, { what: 'nothing', timeoutMs: 70_000 });
    });
    expect(r.value).toBe('timeout');
    // After the worker is done only the timeout is left: that part is a stall.
    expect(r.stalls).toHaveLength(1);
    expect(r.stalls[0].at).toBe(60_000);
  });

  test('a wait broken by a wake ends the stall with that task', async () => {
    const r = await hostRun(1, async ({ env }) => {
      const q = env.waitQueue('x');
      let ready = false;
      env.spawn(
        'purger',
        async () => {
          await env.sleep(2000, { background: true });
          ready = true;
          q.wakeAll();
        },
        { daemon: true },
      );
      return env.wait(q, () => ready, { what: 'ready', timeoutMs: 5000, timeoutName: 'ready timeout' });
    });
    expect(r.value).toBe('ok');
    expect(r.stalls).toHaveLength(1);
    expect(r.stalls[0].brokenBy?.timer).toBe('ready timeout');
    expect(r.stalls[0].end).toEqual({
      at: 2000,
      by: 'wake',
      task: expect.stringMatching(/^host\/controller#/),
    });
  });

  test('background sleeps do not keep a deadlocked run alive', async () => {
    const r = await hostRun(1, async ({ env }) => {
      env.spawn(
        'purge',
        async () => {
          for (;;) await env.sleep(1000, { background: true, what: 'purge interval' });
        },
        { daemon: true },
      );
      const q = env.waitQueue('never');
      await env.wait(q, () => false, { what: 'a wake that never comes' });
    });
    expect(r.outcome).toBe('deadlock');
    expect(r.endTime).toBe(0);
    expect(r.stalls[0].chain).toEqual([
      { holder: expect.stringMatching(/^host\/controller#\d+$/), waitsFor: 'a wake that never comes' },
    ]);
  });

  test('a finished controller ends the run; blocked daemons are abandoned', async () => {
    const r = await hostRun(1, async ({ env }) => {
      env.spawn(
        'daemon',
        async () => {
          await env.wait(env.waitQueue('q'), () => false, { what: 'work' });
        },
        { daemon: true },
      );
      await env.sleep(10);
      return 'done';
    });
    expect(r).toMatchObject({ outcome: 'completed', value: 'done', endTime: 10, stalls: [] });
  });
});

describe('upcalls, calls and errors', () => {
  test('kicks before the upcall task runs coalesce into one handler run', async () => {
    const e2 = createSimEngine({ seed: 1 });
    e2.addShared('ball', new SharedArrayBuffer(4));
    await e2.addDomain({ domid: 3, name: 'k', module: fixture('kicks') });
    const r2 = await e2.run(async (ctl) => {
      e2.kicker.kick(3);
      e2.kicker.kick(3);
      e2.kicker.kick(3);
      await ctl.env.sleep(1);
      e2.kicker.kick(3);
      await ctl.env.sleep(1);
      return ctl.call(3, 'runs');
    });
    expect(r2.value).toBe(2);
    expect(() => e2.kicker.kick(9)).toThrow('kick: no domain 9');
  });

  test('call errors propagate with the same message and name', async () => {
    const engine = createSimEngine({ seed: 1 });
    await engine.addDomain({ domid: 1, name: 'f', module: fixture('failing') });
    const r = await engine.run(async (ctl) => {
      const out: string[] = [];
      for (const [m, a] of [
        ['explode', 'disk'],
        ['nosuch', 1],
      ] as const) {
        try {
          await ctl.call(1, m, a);
        } catch (e) {
          out.push(`${(e as Error).name}: ${(e as Error).message}`);
        }
      }
      try {
        await ctl.call(7, 'echo');
      } catch (e) {
        out.push((e as Error).message);
      }
      out.push(JSON.stringify(await ctl.call(1, 'echo', { a: [1, 2] })));
      return out;
    });
    expect(r.value).toEqual([
      'RangeError: bad disk',
      "Error: call: dom1 has no method 'nosuch' (methods: explode, echo)",
      'call: no domain 7 (domains: 1)',
      '{"a":[1,2]}',
    ]);
  });

  test('a task awaiting a foreign promise fails the run with its label', async () => {
    const r = await hostRun(1, async () => {
      await new Promise((res) => setTimeout(res, 1));
    });
    expect(r.outcome).toBe('error');
    expect(r.error?.message).toMatch(
      /^sim: host\/controller#\d+ awaited a promise the engine does not control/,
    );
  });

  test('a spawned task that throws fails the run and is logged in dmesg', async () => {
    const r = await hostRun(1, async ({ env }) => {
      env.spawn('bad', async () => {
        await env.sleep(1500);
        throw new Error('boom');
      });
      await env.sleep(2000);
    });
    expect(r.outcome).toBe('error');
    expect(r.error?.message).toMatch(/^task host\/bad#\d+ failed: boom$/);
    expect(r.dmesg[-1]).toEqual([
      expect.stringMatching(/^\[ {4}1\.500000\] bad: task host\/bad#\d+ failed: boom$/),
    ]);
  });
});

describe('guards', () => {
  test('maxSteps ends a livelock with an error', async () => {
    const engine = createSimEngine({ seed: 1, maxSteps: 1000 });
    const r = await engine.run(async ({ env }) => {
      for (;;) await env.yield();
    });
    expect(r.outcome).toBe('error');
    expect(r.error?.message).toBe('sim: more than 1000 task switches (maxSteps) at t=0 ms');
  });

  test.each([
    [{ seed: 1.5 }, 'createSimEngine: seed must be a safe integer, got 1.5'],
    [{ seed: 1, maxSteps: 0 }, 'createSimEngine: maxSteps must be a positive integer, got 0'],
  ])('bad options %j are refused', (opts, msg) => {
    expect(() => createSimEngine(opts)).toThrow(msg);
  });

  test.each([
    [
      { domid: -1, name: 'x', module: 'file:///x.ts' },
      'addDomain: domid must be an integer in 0..32751, got -1',
    ],
    [
      { domid: 1, name: '', module: 'file:///x.ts' },
      'addDomain dom1: name must be a non-empty string, got ""',
    ],
    [
      { domid: 1, name: 'x', module: './x.ts' },
      'addDomain dom1: module must be a file URL (file:///...), got "./x.ts"',
    ],
  ])('bad domain spec %j is refused', async (spec, msg) => {
    await expect(createSimEngine({ seed: 1 }).addDomain(spec)).rejects.toThrow(msg);
  });

  test('a wait without a description is refused', async () => {
    const r = await createSimEngine({ seed: 1 }).run(async ({ env }) => {
      await env.wait(env.waitQueue('q'), () => false, { what: '' });
    });
    expect(r.error?.message).toBe('wait: options.what must say what is awaited, got ""');
  });
});
