/** Test helper: a Kernel on the sim engine's controller Env (seeded, virtual time). */
import { Kernel } from '../../emulator/kernel/kernel.js';
import type { Env, RunResult } from '../../emulator/runtime/engine.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';

export async function runKernel<T>(
  body: (k: Kernel, env: Env) => Promise<T>,
  seed = 1,
): Promise<RunResult<T>> {
  const engine = createSimEngine({ seed });
  return engine.run(async (ctl) => body(new Kernel(ctl.env), ctl.env));
}

/** Runs and returns the value, failing the test with the engine's error when the run did not complete. */
export async function inKernel<T>(body: (k: Kernel, env: Env) => Promise<T>, seed = 1): Promise<T> {
  const r = await runKernel(body, seed);
  if (r.outcome !== 'completed') {
    throw new Error(`run ended with ${r.outcome}: ${r.error?.stack ?? JSON.stringify(r.stalls)}`);
  }
  return r.value as T;
}
