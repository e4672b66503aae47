/**
 * Booting domain programs: a module already loaded is booted again without a turn of the event loop
 * (a sim run never idles), and a module that fails to load fails every time with the loader's error.
 */
import { describe, expect, test } from 'vitest';
import { createSimEngine } from '../../emulator/runtime/sim.js';

const fixture = (name: string) => new URL(`./fixtures/${name}.ts`, import.meta.url).href;

/** Whether `body` let the event loop turn (a setImmediate armed before it ran first). */
async function turnsEventLoop(body: () => Promise<unknown>): Promise<boolean> {
  let turned = false;
  const immediate = setImmediate(() => {
    turned = true;
  });
  try {
    await body();
    return turned;
  } finally {
    clearImmediate(immediate);
  }
}

describe('bootDomain', () => {
  test('a module loaded before boots again without returning to the event loop', async () => {
    const first = createSimEngine({ seed: 1 });
    await first.addDomain({ domid: 1, name: 'racer', module: fixture('racy') });
    for (const domid of [1, 2, 3]) {
      const engine = createSimEngine({ seed: domid });
      expect(
        await turnsEventLoop(() => engine.addDomain({ domid, name: 'racer', module: fixture('racy') })),
      ).toBe(false);
      // The cached module is the same program: it still runs.
      const r = await engine.run((ctl) => ctl.call(domid, 'race', 2, 5));
      expect(r.outcome).toBe('completed');
    }
  });

  test('a module that cannot be loaded fails each boot (the failure is not cached)', async () => {
    const missing = fixture('no-such-program');
    for (let i = 0; i < 2; i++) {
      const engine = createSimEngine({ seed: 1 });
      await expect(engine.addDomain({ domid: 1, name: 'ghost', module: missing })).rejects.toThrow(
        /no-such-program/,
      );
    }
  });

  test('a module without the boot export is refused by name every time', async () => {
    for (let i = 0; i < 2; i++) {
      const engine = createSimEngine({ seed: 1 });
      await expect(
        engine.addDomain({ domid: 1, name: 'racer', module: fixture('racy'), exportName: 'start' }),
      ).rejects.toThrow(/has no function export 'start'/);
    }
  });
});
