/**
 * Sim runs of scenarios spread over worker processes, for `xenpv explore --jobs N` and the lifecycle
 * bench. Each worker is a child Node process with its own machine modules and its own work dir (a run
 * rewrites its images), and runs one scenario at a time, start to end, exactly as `runScenario` does in
 * this process: the sim engine is deterministic, so a run's result does not depend on the worker it ran
 * in. A run goes out as scenario file text and comes back as the part of the result that explore reads
 * (`PooledRun`). Processes, not worker threads: every run maps a fresh machine memory, and threads of
 * one process fault those pages in under one address-space lock (2 threads made 8 runs/s where 1 made
 * 37, on a loaded 2-core host).
 *
 *   const pool = await ScenarioRunPool.open(2);
 *   const r = await pool.run({ text, fileName: 'x.yaml', seed: 7, keepTrace: false });
 *   await pool.close();
 */
import { type ChildProcess, fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { TraceEvent } from '../runtime/engine.js';
import type { RunScenarioResult } from './run.js';

/** One sim run: the scenario as file text (demo block included), and how to run it. */
export interface PoolRunRequest {
  text: string;
  /** Shown in errors about the text. */
  fileName: string;
  seed: number;
  replay?: number[];
  /** Keep the run's trace (it is built and sent back only then). */
  keepTrace: boolean;
}

/** What comes back: what explore classifies, reports and replays. */
export type PooledRun = Pick<
  RunScenarioResult,
  | 'verdict'
  | 'outcome'
  | 'checks'
  | 'steps'
  | 'stalls'
  | 'error'
  | 'expectedOops'
  | 'failures'
  | 'choices'
  | 'choiceWidths'
> & { trace?: TraceEvent[] };

/** The whole result cut down to a PooledRun (shared by the worker and in-process runs). */
export function pooledRun(r: RunScenarioResult, keepTrace: boolean): PooledRun {
  return {
    verdict: r.verdict,
    outcome: r.outcome,
    checks: r.checks,
    steps: r.steps,
    stalls: r.stalls,
    ...(r.error !== undefined ? { error: r.error } : {}),
    expectedOops: r.expectedOops,
    failures: r.failures,
    ...(r.choices !== undefined ? { choices: r.choices } : {}),
    ...(r.choiceWidths !== undefined ? { choiceWidths: r.choiceWidths } : {}),
    ...(keepTrace ? { trace: r.trace } : {}),
  };
}

export type PoolToWorker = { id: number; request: PoolRunRequest } | { id: number; close: true };
export type PoolFromWorker =
  | { id: number; run: PooledRun }
  | { id: number; error: string }
  | { id: number; closed: true };

/**
 * The default number of jobs: one per two cores. A sim run keeps about 1.4 cores busy (V8 collects
 * garbage on helper threads beside it), so on this project's 2-core machine two jobs ran no faster than
 * one (explore: 82 vs 83 runs/s) and one job needs no pool at all.
 */
export function defaultJobs(): number {
  return Math.max(1, Math.floor(availableParallelism() / 2));
}

/** Cores the host gives this process (the bench runs one job per core to show the ceiling). */
export function coreCount(): number {
  return Math.max(1, availableParallelism());
}

interface PoolWorker {
  child: ChildProcess;
  /** The request in flight and how to settle it. */
  pending: Map<number, { resolve: (m: PoolFromWorker) => void; reject: (e: Error) => void }>;
}

export class ScenarioRunPool {
  private readonly idle: PoolWorker[] = [];
  private readonly waiting: ((w: PoolWorker) => void)[] = [];
  private nextId = 1;
  private closed = false;

  private constructor(private readonly workers: PoolWorker[]) {
    this.idle.push(...workers);
  }

  /** Starts `jobs` worker processes, each with a fresh work dir on a RAM-backed filesystem. */
  static async open(jobs: number): Promise<ScenarioRunPool> {
    if (!Number.isSafeInteger(jobs) || jobs < 1) {
      throw new Error(`ScenarioRunPool: jobs must be a whole number >= 1, got ${jobs}`);
    }
    // From sources (vitest, tsx) the worker is TypeScript too: the child loads tsx first.
    const fromSource = import.meta.url.endsWith('.ts');
    const entry = fileURLToPath(new URL(`./run-pool-worker.${fromSource ? 'ts' : 'js'}`, import.meta.url));
    const execArgv = fromSource ? ['--import', import.meta.resolve('tsx')] : [];
    const workers = Array.from({ length: jobs }, (): PoolWorker => {
      const child = fork(entry, [], { execArgv, serialization: 'advanced', stdio: 'inherit' });
      const w: PoolWorker = { child, pending: new Map() };
      child.on('message', (m: PoolFromWorker) => {
        const p = w.pending.get(m.id);
        w.pending.delete(m.id);
        p?.resolve(m);
      });
      // A worker that dies takes its run with it: the run fails with the reason, the others go on.
      const fail = (e: Error) => {
        for (const p of w.pending.values()) p.reject(e);
        w.pending.clear();
      };
      child.on('error', fail);
      child.on('exit', (code, signal) =>
        fail(new Error(`scenario run worker ${child.pid} exited (${signal ?? `code ${code}`})`)),
      );
      return w;
    });
    return new ScenarioRunPool(workers);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Runs one scenario in the next free worker. */
  async run(request: PoolRunRequest): Promise<PooledRun> {
    if (this.closed) throw new Error('ScenarioRunPool: run after close');
    const w = await this.acquire();
    try {
      const m = await this.send(w, { id: this.nextId++, request });
      if ('error' in m) throw new Error(m.error);
      if (!('run' in m)) throw new Error('ScenarioRunPool: a worker answered a run with no result');
      return m.run;
    } finally {
      this.release(w);
    }
  }

  /** Lets every worker remove its work dir and exit. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      this.workers.map(async (w) => {
        const exited = new Promise((resolve) => {
          if (w.child.exitCode !== null || w.child.signalCode !== null) resolve(undefined);
          else w.child.once('exit', resolve);
        });
        await this.send(w, { id: this.nextId++, close: true }).catch(() => undefined);
        await exited;
      }),
    );
  }

  private send(w: PoolWorker, msg: PoolToWorker): Promise<PoolFromWorker> {
    return new Promise((resolve, reject) => {
      w.pending.set(msg.id, { resolve, reject });
      w.child.send(msg, (e) => {
        if (e === null) return;
        w.pending.delete(msg.id);
        reject(e);
      });
    });
  }

  private acquire(): Promise<PoolWorker> {
    const w = this.idle.pop();
    if (w !== undefined) return Promise.resolve(w);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(w: PoolWorker): void {
    const next = this.waiting.shift();
    if (next !== undefined) next(w);
    else this.idle.push(w);
  }
}
