// Every file in scenarios/ (and the course's examples in docs/course/) runs in the sim engine and its
// expectations hold: a scenario added without a test of its own is still checked here.
import { readdirSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { runScenario } from '../../emulator/scenario/run.js';
import { loadRunnableScenario } from '../../emulator/scenario/run-demo.js';

const dirs = ['../../scenarios/', '../../docs/course/'].map((d) => new URL(d, import.meta.url));
const files = dirs.flatMap((dir) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => new URL(f, dir).pathname),
);

describe('the catalogue, in the sim engine', () => {
  test('there is a catalogue to run', () => {
    expect(files.length).toBeGreaterThanOrEqual(25);
  });

  test.each(files.map((f) => [f.slice(f.lastIndexOf('/', f.lastIndexOf('/') - 1) + 1), f]))(
    '%s: its expectations hold',
    async (_name, path) => {
      const { scenario, demo } = loadRunnableScenario(path);
      const r = await runScenario(scenario, {
        engine: 'sim',
        imageStore: 'memory',
        ...(demo ? { demo } : {}),
      });
      expect(r.failures).toEqual([]);
      expect(r.verdict).toBe('pass');
    },
    60_000,
  );
});
