/**
 * The sim session: each new command rebuilds the machine (images rewritten from their fill pattern)
 * and runs every earlier command again before it, with the same seed; see backend.ts for why. After
 * every command the controller sleeps 0 ms, which in sim returns only once nothing else can run at
 * that instant: each command's effects settle before the next command, the same way in every replay.
 */
import { isDeepStrictEqual } from 'node:util';
import { buildMachine, type Machine } from '../../machine/machine.js';
import type { Controller, RunResult } from '../../runtime/engine.js';
import type { Scenario } from '../../scenario/model.js';
import { createImages, machineConfigFor } from '../../scenario/run.js';
import { describeRunEnd, type ExecResult, type SessionBackend } from './backend.js';
import { type CommandOutput, type EngineCommand, executeEngineCommand } from './engine-command.js';
import { type MachineView, machineView } from './machine-buffers.js';

interface Done {
  cmd: EngineCommand;
  output: CommandOutput;
}

export class SimBackend implements SessionBackend {
  readonly engine = 'sim' as const;
  private readonly done: Done[] = [];
  private current!: { machine: Machine; result: RunResult<void>; view: MachineView };
  private ended: string | undefined;

  private constructor(
    private readonly scenario: Scenario,
    private readonly workDir: string,
    private readonly seed: number,
  ) {}

  /** Builds the machine and runs it until it settles with no command (domain 0 booted, xenstored up). */
  static async start(scenario: Scenario, workDir: string, seed: number): Promise<SimBackend> {
    const b = new SimBackend(scenario, workDir, seed);
    const r = await b.replay(undefined);
    if (r.result.outcome !== 'completed') {
      throw new Error(
        `shell: the machine did not boot: ${describeRunEnd(r.result.outcome, r.result.error, r.result.endTime)}`,
      );
    }
    return b;
  }

  get machine(): Machine {
    return this.current.machine;
  }

  get endedBecause(): string | undefined {
    return this.ended;
  }

  private async replay(
    next: EngineCommand | undefined,
  ): Promise<{ outputs: CommandOutput[]; result: RunResult<void> }> {
    createImages(this.scenario, this.workDir);
    const machine = await buildMachine(machineConfigFor(this.scenario, this.workDir), 'sim', {
      seed: this.seed,
    });
    const outputs: CommandOutput[] = [];
    const commands = this.done.map((d) => d.cmd);
    if (next !== undefined) commands.push(next);
    let result: RunResult<void>;
    try {
      result = await machine.run(async (ctl: Controller) => {
        await ctl.env.sleep(0, { what: 'the machine to settle' });
        for (const c of commands) {
          outputs.push(await executeEngineCommand(ctl, machine, this.scenario, c));
          await ctl.env.sleep(0, { what: 'the machine to settle' });
        }
      });
    } finally {
      await machine.close();
    }
    this.current = { machine, result, view: machineView(machine) };
    return { outputs, result };
  }

  async exec(cmd: EngineCommand): Promise<ExecResult> {
    if (this.ended !== undefined) {
      throw new Error(`${this.ended}; \`run FILE\` starts a fresh machine`);
    }
    const before = this.current.result.stalls.length;
    const { outputs, result } = await this.replay(cmd);
    const warnings: string[] = [];
    const n = this.done.length;
    for (let i = 0; i < Math.min(n, outputs.length); i++) {
      if (!isDeepStrictEqual(outputs[i], this.done[i].output)) {
        warnings.push(
          `replay diverged: command ${i + 1} of this session printed something else the second time (sim is not deterministic here)`,
        );
        break;
      }
    }
    const stalls = result.stalls.slice(before);
    if (outputs.length <= n || result.outcome !== 'completed') {
      this.ended = describeRunEnd(result.outcome, result.error, result.endTime);
      const partial = outputs[n] ?? { out: [], err: [], ok: false };
      return { ...partial, ok: false, stalls, ended: this.ended, warnings };
    }
    this.done.push({ cmd, output: outputs[n] });
    return { ...outputs[n], stalls, warnings };
  }

  view(): MachineView {
    return this.current.view;
  }

  trace() {
    return this.current.result.trace;
  }

  dmesg() {
    return this.current.result.dmesg;
  }

  stalls() {
    return this.current.result.stalls;
  }

  now() {
    return this.current.result.endTime;
  }

  async close(): Promise<void> {
    // Every replay's engine is closed when its run ends.
  }
}
