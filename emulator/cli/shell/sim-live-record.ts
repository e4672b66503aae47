/**
 * What a sim run has recorded so far — trace events, kernel logs, stall reports, virtual time — read
 * while the run goes on. The Engine contract hands these over only in the RunResult at the end of a
 * run, and a sim shell session is one run that ends only when the session does.
 * Simplification until the runtime offers such a method: the sim engine's own fields are read, and
 * checked here, so a change in the engine fails with this message instead of printing nothing.
 */
import type { Engine, Millis, StallReport, TraceEvent } from '../../runtime/engine.js';

export interface LiveRecord {
  trace(): readonly TraceEvent[];
  dmesg(): Record<number, string[]>;
  stalls(): readonly StallReport[];
  now(): Millis;
}

interface SimEngineInsides {
  sink?: { events?: unknown; dmesg?: unknown };
  stalls?: unknown;
  vnow?: unknown;
}

export function simLiveRecord(engine: Engine): LiveRecord {
  const e = engine as unknown as SimEngineInsides;
  const sink = e.sink;
  if (
    engine.kind !== 'sim' ||
    sink === undefined ||
    !Array.isArray(sink.events) ||
    typeof sink.dmesg !== 'function' ||
    !Array.isArray(e.stalls) ||
    typeof e.vnow !== 'number'
  ) {
    throw new Error(
      'shell: the sim engine no longer keeps its trace sink, stall list and clock where the shell reads them during a run (emulator/cli/shell/sim-live-record.ts)',
    );
  }
  const dmesg = sink.dmesg as () => Record<number, string[]>;
  return {
    // Read each time: the sink may replace its event array (drain) and the engine its stall list.
    trace: () => (e.sink as { events: TraceEvent[] }).events,
    dmesg: () => dmesg.call(e.sink),
    stalls: () => e.stalls as StallReport[],
    now: () => e.vnow as Millis,
  };
}
