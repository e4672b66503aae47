/**
 * Whole-guest lifecycles in the sim engine, and `xenpv explore` throughput.
 *
 * A lifecycle is scenarios/blktap2-teardown-fixed.yaml with its write raised to 1 MiB: `xl create`
 * of a guest with a tap disk (tapdisk2 over blktap2, blkback, blkfront), 1 MiB written from the
 * guest, guest shutdown, and the libxl 4.2 destroy (backend removed before the tapdisk is destroyed).
 * Every run is checked: a lifecycle that fails its expectations stops the bench.
 *
 * The headline figure runs as benches and `explore` should: images on a RAM-backed filesystem and no
 * trace kept, one lifecycle after another in this thread. The next runs them the same way on a pool of
 * worker processes, one per core (what `explore --jobs` does): the machine's throughput. The last runs
 * one at a time as `xenpv run` does (images on disk, full trace), for comparison.
 */
import { readFileSync } from 'node:fs';
import { exploreScenario } from '../emulator/scenario/explore.js';
import { type RunScenarioOptions, runScenario } from '../emulator/scenario/run.js';
import { parseRunnableScenario } from '../emulator/scenario/run-demo.js';
import { coreCount, ScenarioRunPool } from '../emulator/scenario/run-pool.js';
import type { BenchCase } from './harness.js';

const scenarioPath = (name: string): string =>
  new URL(`../${import.meta.url.includes('/dist/') ? '../' : ''}scenarios/${name}.yaml`, import.meta.url)
    .pathname;

/** The fixed 2012 teardown with 1 MiB written (and checked) instead of 64 KiB. */
export function lifecycleScenarioText(): string {
  const text = readFileSync(scenarioPath('blktap2-teardown-fixed'), 'utf8');
  const out = text.replaceAll('length: 64KiB', 'length: 1MiB');
  if (out === text) throw new Error('bench lifecycle: the fixed scenario no longer writes "length: 64KiB"');
  return out;
}

interface Rate {
  perSecond: number;
  /** Share of the wall time the main thread spent waiting in the event loop (0..1). */
  idle: number;
}

/** Runs for about `ms` (at least `min` runs): runs per second and the event loop's idle share. */
async function perSecond(run: () => Promise<void>, ms: number, min: number): Promise<Rate> {
  let n = 0;
  const elu = performance.eventLoopUtilization();
  const start = performance.now();
  let now = start;
  while (n < min || now - start < ms) {
    await run();
    n++;
    now = performance.now();
  }
  const used = performance.eventLoopUtilization(elu);
  return { perSecond: (n * 1000) / (now - start), idle: used.idle / (used.idle + used.active) };
}

/** explore's own runs/s (it puts its images on a RAM-backed filesystem, as the lifecycles above do). */
async function exploreDeadlock(seeds: number, jobs: number): Promise<number> {
  const { scenario } = parseRunnableScenario(
    readFileSync(scenarioPath('blktap2-teardown-deadlock'), 'utf8'),
    'blktap2-teardown-deadlock.yaml',
  );
  const report = await exploreScenario(scenario, { mode: 'seeds', seeds, jobs });
  return report.runsPerSecond;
}

/** Nothing is traced in the bench: emitters that ask `trace.wants` do not even build their events. */
const NO_TRACE = (): boolean => false;

/**
 * Lifecycles per second with these run options: after half a second of warm-up (module imports and the
 * JIT's tiering are not what the figure measures), the best of three 1 s windows (other load on the
 * machine and GC pauses only ever slow a window down).
 */
async function lifecycles(options: Pick<RunScenarioOptions, 'imageStore' | 'traceFilter'>): Promise<Rate> {
  const { scenario } = parseRunnableScenario(lifecycleScenarioText(), 'lifecycle.yaml');
  let seed = 1;
  const run = async (): Promise<void> => {
    const r = await runScenario(scenario, { engine: 'sim', seed: seed++, ...options });
    if (r.verdict !== 'pass')
      throw new Error(`bench lifecycle: seed ${seed - 1} failed: ${r.failures.join('; ')}`);
  };
  await perSecond(run, 500, 5);
  let best: Rate | undefined;
  for (let i = 0; i < 3; i++) {
    const r = await perSecond(run, 1000, 5);
    if (best === undefined || r.perSecond > best.perSecond) best = r;
  }
  return best!;
}

/** Lifecycles per second over about 2 s, `jobs` at a time on a pool of worker processes. */
async function pooledLifecycles(jobs: number): Promise<number> {
  const text = lifecycleScenarioText();
  const pool = await ScenarioRunPool.open(jobs);
  try {
    let seed = 1;
    const once = async (): Promise<void> => {
      const runSeed = seed++;
      const r = await pool.run({ text, fileName: 'lifecycle.yaml', seed: runSeed, keepTrace: false });
      if (r.verdict !== 'pass')
        throw new Error(`bench lifecycle: seed ${runSeed} failed: ${r.failures.join('; ')}`);
    };
    // Each worker's first runs load the machine modules and warm its JIT: not what is measured.
    for (let i = 0; i < 10; i++) await Promise.all(Array.from({ length: jobs }, once));
    let n = 0;
    const start = performance.now();
    const loop = async (): Promise<void> => {
      while (performance.now() - start < 2000 || n < 5 * jobs) {
        await once();
        n++;
      }
    };
    await Promise.all(Array.from({ length: jobs }, loop));
    return (n * 1000) / (performance.now() - start);
  } finally {
    await pool.close();
  }
}

export function lifecycleCases(): BenchCase[] {
  // The headline measurement's idle share, reported as its own figure right after it.
  let headline: Rate | undefined;
  return [
    {
      name: 'sim lifecycles (create, tap disk, write 1 MiB, shutdown, 4.2 destroy)',
      unit: 'runs/s',
      run: async () => {
        headline = await lifecycles({ imageStore: 'memory', traceFilter: NO_TRACE });
        return headline.perSecond;
      },
    },
    {
      // A sim run never needs the event loop: any idle here is a wait on the loader, a timer or I/O.
      name: 'event-loop idle during those lifecycles (lower is better)',
      unit: '% idle',
      run: async () => {
        if (headline === undefined) throw new Error('bench lifecycle: the idle share follows the lifecycles');
        return headline.idle * 100;
      },
    },
    {
      name: `sim lifecycles on ${coreCount()} worker process(es), one per core`,
      unit: 'runs/s',
      run: () => pooledLifecycles(coreCount()),
    },
    {
      name: 'sim lifecycles, as `xenpv run` does them (images on disk, full trace)',
      unit: 'runs/s',
      run: async () => (await lifecycles({})).perSecond,
    },
    {
      name: 'explore --seeds 40 --jobs 1 on blktap2-teardown-deadlock',
      unit: 'runs/s',
      run: () => exploreDeadlock(40, 1),
    },
    {
      // What `xenpv explore` does by default; the pool's start-up is in the figure.
      name: `explore --seeds 200 --jobs ${coreCount()} on blktap2-teardown-deadlock`,
      unit: 'runs/s',
      run: () => exploreDeadlock(200, coreCount()),
    },
  ];
}
