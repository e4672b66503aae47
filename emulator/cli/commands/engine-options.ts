/** The options of every command that runs a machine: which engine, the sim seed, the threads time scale. */
import type { Argv } from 'yargs';

export interface EngineArgs {
  engine: 'sim' | 'threads';
  seed?: number;
  timeScale: number;
}

export function engineOptions<T>(y: Argv<T>) {
  return y
    .option('engine', {
      choices: ['sim', 'threads'] as const,
      default: 'sim' as const,
      describe: 'sim: one thread, virtual time, seeded; threads: a worker per domain, real scaled time',
    })
    .option('seed', {
      type: 'number',
      describe: 'sim: scheduler seed (default: the scenario seed, else 1)',
    })
    .option('time-scale', {
      type: 'number',
      default: 0.01,
      describe: 'threads: virtual ms per real ms is 1/X (0.01: 5 s takes 50 ms)',
    });
}
