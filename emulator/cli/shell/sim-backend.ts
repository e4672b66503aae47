/**
 * The sim session: one run for the whole session. Its controller takes each command from an inbox
 * (`Controller.receive`), runs it, then sleeps 0 ms, which in sim returns only once nothing else can run
 * at that instant, and answers. While it waits for the next command the machine goes on only as far as
 * timers already set take it (a select() timeout left running fires then); with none left the run is
 * idle and virtual time stands still. What runs depends only on the sequence of commands, not on when
 * they arrive: the same script gives the same output.
 */
import { buildMachine, type Machine } from '../../machine/machine.js';
import type { Controller, RunResult } from '../../runtime/engine.js';
import { ExternalInbox } from '../../runtime/external-inbox.js';
import type { Scenario } from '../../scenario/model.js';
import { createImages, machineConfigFor } from '../../scenario/run.js';
import { describeRunEnd, type ExecResult, runRecord, type SessionBackend } from './backend.js';
import { type CommandOutput, type EngineCommand, executeEngineCommand } from './engine-command.js';
import { type MachineView, machineView } from './machine-buffers.js';

/**
 * Task switches a whole session may take (the engine's guard against a livelock): sessions run many
 * commands in one run, so the budget is larger than a scenario run's default of 10 million.
 */
export const SESSION_MAX_STEPS = 200_000_000;

interface Pending {
  cmd: EngineCommand;
  resolve: (out: CommandOutput | undefined) => void;
}

/** Resolves after everything queued in the microtask queue: a sim run goes on only in microtasks. */
const runQuiet = () => new Promise<void>((resolve) => setImmediate(resolve));

export class SimBackend implements SessionBackend {
  readonly engine = 'sim' as const;
  private readonly inbox = new ExternalInbox<Pending>();
  private readonly view0: MachineView;
  private runDone!: Promise<RunResult<void>>;
  private final: RunResult<void> | undefined;
  private ended: string | undefined;
  private closing = false;
  /** Answers the command in flight when the run ends under it. */
  private pendingEnd: ((out: CommandOutput | undefined) => void) | undefined;

  private constructor(readonly machine: Machine) {
    this.view0 = machineView(machine);
  }

  /** Builds the machine and runs it until it settles with no command (domain 0 booted, xenstored up). */
  static async start(scenario: Scenario, workDir: string, seed: number): Promise<SimBackend> {
    createImages(scenario, workDir);
    const machine = await buildMachine(machineConfigFor(scenario, workDir), 'sim', {
      seed,
      maxSteps: SESSION_MAX_STEPS,
    });
    const b = new SimBackend(machine);
    let booted!: () => void;
    const boot = new Promise<void>((resolve) => {
      booted = resolve;
    });
    b.runDone = machine.run(async (ctl: Controller) => {
      if (ctl.receive === undefined) throw new Error('not implemented: a sim engine without receive');
      await ctl.env.sleep(0, { what: 'the machine to settle' });
      booted();
      for (;;) {
        const p = await ctl.receive(b.inbox, 'the next shell command');
        if (p === undefined) return;
        const out = await executeEngineCommand(ctl, machine, scenario, p.cmd);
        await ctl.env.sleep(0, { what: 'the machine to settle' });
        p.resolve(out);
      }
    });
    void b.runDone.then((r) => {
      b.final = r;
      if (!b.closing || r.outcome !== 'completed') b.ended = describeRunEnd(r.outcome, r.error, r.endTime);
      booted();
      // A command the run ended under gets no output: exec reports the end.
      for (let p = b.inbox.take(); p !== undefined; p = b.inbox.take()) p.resolve(undefined);
      b.pendingEnd?.(undefined);
    });
    await boot;
    await runQuiet();
    if (b.ended !== undefined) {
      await machine.close();
      throw new Error(`shell: the machine did not boot: ${b.ended}`);
    }
    return b;
  }

  get endedBecause(): string | undefined {
    return this.ended;
  }

  async exec(cmd: EngineCommand): Promise<ExecResult> {
    if (this.ended !== undefined) throw new Error(`${this.ended}; \`run FILE\` starts a fresh machine`);
    if (this.closing) throw new Error('the session is closing');
    const before = (await this.progress()).stalls.length;
    const out = await new Promise<CommandOutput | undefined>((resolve) => {
      this.pendingEnd = resolve;
      this.inbox.push({
        cmd,
        resolve: (o) => {
          this.pendingEnd = undefined;
          resolve(o);
        },
      });
    });
    // Let the machine run on to idleness (timers the command left) before looking at its record.
    await runQuiet();
    const stalls = (await this.progress()).stalls.slice(before);
    if (out === undefined || this.ended !== undefined) {
      const ended = this.ended ?? 'the run ended';
      return { ...(out ?? { out: [], err: [] }), ok: false, stalls, ended, warnings: [] };
    }
    return { ...out, stalls, warnings: [] };
  }

  view(): MachineView {
    return this.view0;
  }

  progress() {
    return runRecord(this.machine.engine, this.final);
  }

  /** Ends the run (after the command in flight); returns the run's result. */
  async finish(): Promise<RunResult<void>> {
    this.closing = true;
    this.inbox.close();
    const r = await this.runDone;
    await this.machine.close();
    return r;
  }

  async close(): Promise<void> {
    await this.finish();
  }
}
