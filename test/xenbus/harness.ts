// Builds a sim host for xenbus tests: dom0 (xenstored + ring transport + dom0 xenbus) and guests.
import { createEngine } from '../../emulator/runtime/create-engine.js';
import type { Controller, Engine, RunResult } from '../../emulator/runtime/engine.js';
import { shareXsRings } from '../fixtures/dom0-xenstore.js';
import { THREADS_TIME_SCALE } from '../threads-time.js';

const fixture = (name: string) => new URL(`./fixtures/${name}.ts`, import.meta.url).href;

export interface HostOptions {
  seed?: number;
  guests?: number[];
  guestConfig?: Record<string, unknown>;
  /** 'threads' runs dom0 and each guest in its own worker (time scaled by THREADS_TIME_SCALE). */
  engine?: 'sim' | 'threads';
}

export async function runHost<T>(
  body: (ctl: Controller) => Promise<T>,
  opts: HostOptions = {},
): Promise<RunResult<T>> {
  const guests = opts.guests ?? [1];
  const engine: Engine =
    opts.engine === 'threads'
      ? createEngine('threads', { timeScale: THREADS_TIME_SCALE })
      : createEngine('sim', { seed: opts.seed ?? 1 });
  try {
    return await build(engine, guests, body, opts);
  } finally {
    await engine.close();
  }
}

async function build<T>(
  engine: Engine,
  guests: number[],
  body: (ctl: Controller) => Promise<T>,
  opts: HostOptions,
): Promise<RunResult<T>> {
  shareXsRings(engine, guests);
  await engine.addDomain({ domid: 0, name: 'dom0', module: fixture('xs-dom0'), config: { guests } });
  for (const g of guests) {
    await engine.addDomain({
      domid: g,
      name: `guest${g}`,
      module: fixture('xs-guest'),
      config: opts.guestConfig,
    });
  }
  return engine.run(body);
}

/** Run and insist the run completed; returns the controller's value. */
export async function hostValue<T>(
  body: (ctl: Controller) => Promise<T>,
  opts: HostOptions = {},
): Promise<T> {
  const r = await runHost(body, opts);
  if (r.outcome !== 'completed') {
    throw new Error(`run ended ${r.outcome}: ${r.error?.message ?? JSON.stringify(r.stalls)}`);
  }
  return r.value as T;
}
