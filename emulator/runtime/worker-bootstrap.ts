/**
 * How a threads-engine domain worker starts. Node 20 cannot start a worker from a .ts file, and tsc
 * does not copy .js files into dist/, so the bootstrap is plain JavaScript kept here as a string and
 * started with `new Worker(source, { eval: true })`: it ships with every build and needs no tsx when the
 * entry is .js. Under vitest (sources run as .ts) it registers tsx's ESM loader first, then imports the
 * entry. It uses only dynamic import, so it runs whether the worker evaluates it as CommonJS or as a
 * module (a parent started with --input-type=module passes that on).
 */

export const WORKER_BOOTSTRAP_SOURCE = `
(async () => {
  const { workerData } = await import('node:worker_threads');
  if (workerData.tsxApi) {
    const { register } = await import(workerData.tsxApi);
    register();
  }
  await import(workerData.entry);
})().catch((e) => {
  process.nextTick(() => {
    throw e;
  });
});
`;

export interface WorkerEntry {
  /** URL of worker-main (.ts from sources, .js from dist/). */
  entry: string;
  /** URL of tsx's ESM API, when the entry is TypeScript. */
  tsxApi?: string;
}

/** Pick the entry's suffix from how this very module is running. */
export function workerEntry(): WorkerEntry {
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = new URL(fromSource ? './worker-main.ts' : './worker-main.js', import.meta.url).href;
  return fromSource ? { entry, tsxApi: import.meta.resolve('tsx/esm/api') } : { entry };
}
