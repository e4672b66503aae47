/**
 * A sim lifecycle never waits on the event loop: image setup and removal, machine boot, the run and
 * its checks are all synchronous or microtasks (module loading happens once per process). A turn of
 * the loop inside a run would be idle time in every lifecycle of `explore` and the bench.
 */
import { expect, test } from 'vitest';
import { type RunScenarioResult, runScenario } from '../../emulator/scenario/run.js';
import { loadRunnableScenario } from '../../emulator/scenario/run-demo.js';

const file = (name: string) => new URL(`../../scenarios/${name}.yaml`, import.meta.url).pathname;

/** The trace with the run's own work dir (a fresh temp dir each run) written as <work>. */
const traceOf = (r: RunScenarioResult) => JSON.stringify(r.trace).replaceAll(r.workDir, '<work>');

test('a repeated sim lifecycle runs without a turn of the event loop and with the same trace', async () => {
  const { scenario } = loadRunnableScenario(file('blktap2-teardown-fixed'));
  const first = await runScenario(scenario, { engine: 'sim', seed: 3, imageStore: 'memory' });
  expect(first.verdict).toBe('pass');
  let turned = false;
  const immediate = setImmediate(() => {
    turned = true;
  });
  try {
    for (const store of ['memory', 'disk'] as const) {
      const again = await runScenario(scenario, { engine: 'sim', seed: 3, imageStore: store });
      expect(again.verdict).toBe('pass');
      expect(again.workDirKept).toBe(false);
      expect(traceOf(again)).toBe(traceOf(first));
      expect(again.choices).toEqual(first.choices);
    }
    expect(turned).toBe(false);
  } finally {
    clearImmediate(immediate);
  }
});
