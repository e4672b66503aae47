/**
 * The threads session: one run for the whole session, real time scaled by timeScale. The controller
 * takes commands from a queue; while the queue is empty it sleeps in short slices (a plain sleep is
 * idleness to the watchdog, so an idle shell is neither a stall nor a deadlock) and time goes on.
 * The record so far is asked of the engine, which asks each worker (Engine.progress).
 */
import { buildMachine, type Machine } from '../../machine/machine.js';
import type { Controller, RunResult } from '../../runtime/engine.js';
import type { Scenario } from '../../scenario/model.js';
import { createImages, machineConfigFor } from '../../scenario/run.js';
import { describeRunEnd, type ExecResult, runRecord, type SessionBackend } from './backend.js';
import { type EngineCommand, executeEngineCommand } from './engine-command.js';
import { type MachineView, machineView } from './machine-buffers.js';

/** Real milliseconds between two looks at the command queue while the shell is idle. */
const POLL_REAL_MS = 10;

interface Pending {
  cmd: EngineCommand;
  resolve: (r: ExecResult) => void;
}

export class ThreadsBackend implements SessionBackend {
  readonly engine = 'threads' as const;
  private readonly queue: Pending[] = [];
  private inFlight: Pending | undefined;
  private closing = false;
  private ended: string | undefined;
  private runDone!: Promise<RunResult<void>>;
  private final: RunResult<void> | undefined;
  private readonly view0: MachineView;

  private constructor(readonly machine: Machine) {
    this.view0 = machineView(machine);
  }

  static async start(
    scenario: Scenario,
    workDir: string,
    options: { timeScale: number; watchdogMs?: number },
  ): Promise<ThreadsBackend> {
    createImages(scenario, workDir);
    const machine = await buildMachine(machineConfigFor(scenario, workDir), 'threads', {
      timeScale: options.timeScale,
      watchdogMs: options.watchdogMs ?? 20,
    });
    const b = new ThreadsBackend(machine);
    const pollMs = POLL_REAL_MS / options.timeScale;
    b.runDone = machine.run(async (ctl: Controller) => {
      for (;;) {
        while (b.queue.length === 0 && !b.closing)
          await ctl.env.sleep(pollMs, { what: 'the next shell command' });
        const p = b.queue.shift();
        if (p === undefined) return;
        b.inFlight = p;
        const out = await executeEngineCommand(ctl, machine, scenario, p.cmd);
        b.inFlight = undefined;
        p.resolve({ ...out, stalls: [], warnings: [] });
      }
    });
    void b.runDone.then((r) => {
      b.final = r;
      if (!b.closing || r.outcome !== 'completed') {
        b.ended = describeRunEnd(r.outcome, r.error, r.endTime);
      }
      const failed = { out: [], err: [], ok: false, stalls: r.stalls, ended: b.ended, warnings: [] };
      b.inFlight?.resolve(failed);
      for (const p of b.queue.splice(0)) p.resolve(failed);
    });
    return b;
  }

  get endedBecause(): string | undefined {
    return this.ended;
  }

  exec(cmd: EngineCommand): Promise<ExecResult> {
    if (this.ended !== undefined) return Promise.reject(new Error(this.ended));
    if (this.closing) return Promise.reject(new Error('the session is closing'));
    return new Promise((resolve) => this.queue.push({ cmd, resolve }));
  }

  view(): MachineView {
    return this.view0;
  }

  progress() {
    return runRecord(this.machine.engine, this.final);
  }

  /** Ends the run (after the command in flight) and stops the workers; returns the run's result. */
  async finish(): Promise<RunResult<void>> {
    this.closing = true;
    const r = await this.runDone;
    await this.machine.close();
    return r;
  }

  async close(): Promise<void> {
    await this.finish();
  }
}
