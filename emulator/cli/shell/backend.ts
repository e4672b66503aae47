/**
 * Where a shell session's machine lives: one run per session in either engine, its controller taking
 * the session's commands one at a time. sim (sim-backend.ts): commands arrive through an inbox the
 * controller waits on (`Controller.receive`), virtual time moves only as far as the commands and the
 * timers they leave need, and the trace is readable during the session. threads (threads-backend.ts):
 * real scaled time goes on between commands; the engine hands its trace over at the end of the run.
 */
import type { Machine } from '../../machine/machine.js';
import type { Millis, StallReport, TraceEvent } from '../../runtime/engine.js';
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
  /** Trace, kernel logs and stall reports so far; the threads engine hands them over only at its end. */
  trace(): readonly TraceEvent[];
  dmesg(): Record<number, string[]>;
  stalls(): readonly StallReport[];
  now(): Millis;
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
