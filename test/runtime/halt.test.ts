import { afterEach, describe, expect, test } from 'vitest';
import { createEngine } from '../../emulator/runtime/create-engine.js';
import type { Controller, Engine, EngineKind } from '../../emulator/runtime/engine.js';

const fixture = new URL('./fixtures/haltable.ts', import.meta.url).href;

let engines: Engine[] = [];
afterEach(async () => {
  await Promise.all(engines.map((e) => e.close()));
  engines = [];
});

async function make(kind: EngineKind): Promise<{ engine: Engine; counts: Int32Array }> {
  const engine =
    kind === 'sim'
      ? createEngine('sim', { seed: 3 })
      : createEngine('threads', { timeScale: 0.1, watchdogMs: 40 });
  engines.push(engine);
  const buf = new SharedArrayBuffer(4 * 32);
  engine.addShared('counts', buf);
  await engine.addDomain({ domid: 1, name: 'guest', module: fixture });
  return { engine, counts: new Int32Array(buf) };
}

/** Sleep in the controller until `cond` holds (bounded). */
async function until(ctl: Controller, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !cond(); i++) await ctl.env.sleep(1);
  if (!cond()) throw new Error('condition never held');
}

describe.each(['sim', 'threads'] as const)('haltDomain (%s)', (kind) => {
  test('halted tasks never run again, the call that halted fails, a later boot starts fresh', async () => {
    const { engine, counts } = await make(kind);
    const r = await engine.run(async (ctl) => {
      await ctl.call(1, 'start');
      await until(ctl, () => Atomics.load(counts, 1) >= 3);
      let haltError = '';
      try {
        await ctl.call(1, 'haltSelf');
      } catch (e) {
        haltError = (e as Error).message;
      }
      const frozen = Atomics.load(counts, 1);
      await ctl.env.sleep(200); // the ticker sleeps 1 ms; the waiter's 50 ms timeout would have fired
      const afterHalt = Atomics.load(counts, 1);
      const liveAfterHalt = await ctl.call(1, 'live');
      await ctl.call(1, 'requestBoot');
      await until(ctl, () => Atomics.load(counts, 2) >= 3);
      return {
        haltError,
        frozen,
        afterHalt,
        liveAfterHalt,
        waiterRanBeforeHalt: Atomics.load(counts, 20),
        waiterRan: Atomics.load(counts, 11),
      };
    });
    expect(r.error).toBeUndefined();
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.haltError).toBe('call: dom1 halted while running haltSelf');
    expect(v.afterHalt).toBe(v.frozen);
    // Only the `live` call itself runs (the upcall daemon is not counted).
    expect(v.liveAfterHalt).toBe(1);
    // The waiter's timer was armed just before the halt: it never resumes the waiter after it. In
    // sim the halt comes at once; in threads a loaded host may let the 50 ms pass first.
    expect(v.waiterRan).toBe(v.waiterRanBeforeHalt);
    if (kind === 'sim') expect(v.waiterRanBeforeHalt).toBe(0);
    expect(Atomics.load(counts, 2)).toBeGreaterThanOrEqual(3);
  });

  test('a failure the domain marks as death halts the domain instead of failing the run', async () => {
    const { engine, counts } = await make(kind);
    const r = await engine.run(async (ctl) => {
      await ctl.call(1, 'start');
      await until(ctl, () => Atomics.load(counts, 1) >= 2);
      let msg = '';
      try {
        await ctl.call(1, 'failDead');
      } catch (e) {
        msg = (e as Error).message;
      }
      const frozen = Atomics.load(counts, 1);
      await ctl.env.sleep(100);
      return { msg, frozen, after: Atomics.load(counts, 1) };
    });
    expect(r.outcome).toBe('completed');
    expect(r.value!.msg).toBe('call: dom1 halted while running failDead');
    expect(r.value!.after).toBe(r.value!.frozen);
  });

  test('other failures still fail the call (and are not halts)', async () => {
    const { engine } = await make(kind);
    const r = await engine.run(async (ctl) => {
      try {
        await ctl.call(1, 'failOther');
        return 'no error';
      } catch (e) {
        return (e as Error).message;
      }
    });
    expect(r.value).toBe('EINVAL: bad');
  });
});
