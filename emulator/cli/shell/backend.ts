/**
 * Where a shell session's machine lives: one run per session in either engine, its controller taking
 * the session's commands one at a time. sim (sim-backend.ts): commands arrive through an inbox the
 * controller waits on (`Controller.receive`), virtual time moves only as far as the commands and the
 * timers they leave need. threads (threads-backend.ts): real scaled time goes on between commands. In
 * both the record so far (trace, kernel logs, stalls) comes from `Engine.progress` during the run and
 * from the RunResult once it has ended.
 */
import type { Machine } from '../../machine/machine.js';
import type { Engine, EngineProgress, Millis, RunResult, StallReport } from '../../runtime/engine.js';
import type { CommandOutput, EngineCommand } from './engine-command.js';
import type { MachineView } from './machine-buffers.js';

export interface ExecResult extends CommandOutput {
  /** Stalls that began while this command ran. */
  stalls: StallReport[];
  /** Set when the run ended during the command (deadlock, a failed task): the machine is gone. */
  ended?: string;
  /** Warnings about the session itself. */
  warnings: string[];
}

export interface SessionBackend {
  readonly engine: 'sim' | 'threads';
  readonly machine: Machine;
  exec(cmd: EngineCommand): Promise<ExecResult>;
  /** The hypervisor and slot table as they are now (sim: at the end of the last command). */
  view(): MachineView;
  /** Trace, kernel logs, stall reports and the clock so far. */
  progress(): Promise<EngineProgress>;
  /** Why the machine can no longer run commands, if it cannot. */
  readonly endedBecause: string | undefined;
  close(): Promise<void>;
}

/** One line describing how a run ended, for errors. */
export function describeRunEnd(outcome: string, error: Error | undefined, at: Millis): string {
  const when = `at ${(at / 1000).toFixed(6)} s`;
  if (outcome === 'deadlock') return `the machine deadlocked ${when} (see \`stalls\`)`;
  return `the run ended ${when}: ${error?.message ?? outcome}`;
}

/** The run's record: from the engine while it runs, from its result once it has ended. */
export function runRecord(engine: Engine, final: RunResult<unknown> | undefined): Promise<EngineProgress> {
  if (final !== undefined) {
    return Promise.resolve({
      now: final.endTime,
      trace: final.trace,
      stalls: final.stalls,
      dmesg: final.dmesg,
    });
  }
  if (engine.progress === undefined) {
    return Promise.reject(
      new Error(`shell: the ${engine.kind} engine cannot report its record during a run`),
    );
  }
  return engine.progress();
}
