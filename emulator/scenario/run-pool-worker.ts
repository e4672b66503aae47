/**
 * One worker process of a ScenarioRunPool (run-pool.ts): parses the scenario text it is sent (the last
 * one is kept, as explore sends the same text over and over), runs it in the sim engine in this
 * worker's own work dir, and sends back the PooledRun. It exits after `close` (and when its parent
 * goes: the IPC channel closes).
 */
import { makeWorkDir, removeWorkDir } from './images.js';
import type { Scenario } from './model.js';
import { runScenario } from './run.js';
import { type DemoSpec, parseRunnableScenario } from './run-demo.js';
import { type PoolFromWorker, type PoolToWorker, pooledRun } from './run-pool.js';

const send = process.send?.bind(process);
if (send === undefined) throw new Error('run-pool-worker: start it with fork() (ScenarioRunPool)');

const workDir = makeWorkDir('pool', 'memory');
let parsed: { text: string; scenario: Scenario; demo: DemoSpec | undefined } | undefined;
/** Trace events are not even built unless the run's trace is wanted. */
const NO_TRACE = (): boolean => false;

process.on('disconnect', () => {
  removeWorkDir(workDir);
  process.exit(0);
});

process.on('message', (msg: PoolToWorker) => {
  if ('close' in msg) {
    removeWorkDir(workDir);
    send({ id: msg.id, closed: true } satisfies PoolFromWorker, undefined, {}, () => process.disconnect());
    return;
  }
  const { request } = msg;
  (async () => {
    if (parsed?.text !== request.text) {
      const p = parseRunnableScenario(request.text, request.fileName);
      parsed = { text: request.text, scenario: p.scenario, demo: p.demo };
    }
    const r = await runScenario(parsed.scenario, {
      engine: 'sim',
      seed: request.seed,
      workDir,
      ...(request.replay !== undefined ? { replay: request.replay } : {}),
      ...(parsed.demo !== undefined ? { demo: parsed.demo } : {}),
      ...(request.keepTrace ? {} : { traceFilter: NO_TRACE }),
    });
    return pooledRun(r, request.keepTrace);
  })().then(
    (run) => send({ id: msg.id, run } satisfies PoolFromWorker),
    (e: unknown) =>
      send({
        id: msg.id,
        error: e instanceof Error ? e.message : String(e),
      } satisfies PoolFromWorker),
  );
});
