/**
 * Where a shell session's machine lives. The sim engine runs once and must never wait for the outside
 * world (a sim task awaiting stdin would fail the run), so the sim backend runs the session's commands
 * again from the start on a fresh machine for each new one: same seed, same commands, same schedule,
 * so the machine reaches the same state and only then runs the new command (replay). The threads
 * backend keeps one run going for the whole session; its controller polls for the next command.
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
  /** Warnings about the session itself (a replay that did not reproduce an earlier output). */
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
