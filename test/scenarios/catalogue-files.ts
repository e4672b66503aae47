/**
 * What the catalogue tests share: the path of a scenario file by name, and the check that a list of
 * files reaches in the threads engine the verdict it reaches in sim (one test per file).
 */
import { describe, expect, test } from 'vitest';
import { runScenario } from '../../emulator/scenario/run.js';
import { THREADS_TIME_SCALE, THREADS_WATCHDOG_MS } from '../threads-time.js';

/** scenarios/<name>.yaml */
export const scenarioFile = (name: string): string =>
  new URL(`../../scenarios/${name}.yaml`, import.meta.url).pathname;

/** A describe block with one threads-engine run per file: every expectation holds, as in sim. */
export function describeThreadsVerdicts(title: string, names: readonly string[]): void {
  describe(title, () => {
    test.each(names)(
      '%s',
      async (name) => {
        const r = await runScenario(scenarioFile(name), {
          engine: 'threads',
          timeScale: THREADS_TIME_SCALE,
          watchdogMs: THREADS_WATCHDOG_MS,
        });
        expect(r.failures).toEqual([]);
        expect(r.verdict).toBe('pass');
      },
      60_000,
    );
  });
}
