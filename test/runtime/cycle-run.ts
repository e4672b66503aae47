/**
 * The two-domain wait cycle both engines' tests run (fixtures/cycle.ts): domain a waits for b and b for
 * a, a with an optional timeout; the controller calls both and returns their results.
 */
import type { Engine } from '../../emulator/runtime/engine.js';

const cycleModule = new URL('./fixtures/cycle.ts', import.meta.url).href;

export async function runCycle(engine: Engine, timeoutMs?: number) {
  engine.addShared('flags', new SharedArrayBuffer(8));
  await engine.addDomain({ domid: 1, name: 'a', module: cycleModule, config: { me: 0, peer: 2, timeoutMs } });
  await engine.addDomain({ domid: 2, name: 'b', module: cycleModule, config: { me: 1, peer: 1 } });
  return engine.run(async (ctl) => {
    let second: unknown;
    const q = ctl.env.waitQueue('second');
    ctl.env.spawn('second', async () => {
      second = await ctl.call(2, 'run');
      q.wakeAll();
    });
    const first = await ctl.call(1, 'run');
    await ctl.env.wait(q, () => second !== undefined, { what: 'second call' });
    return [first, second];
  });
}
