/**
 * How tapdisk2 dies of its own bugs: a failed ASSERT (td_panic → abort(), SIGABRT) or a touch of freed
 * memory (SIGSEGV, the kernel's "segfault at" line). The faulting code throws `TapdiskCrash`, which
 * unwinds the event loop as the signal would; the program's top level reports it and raises the signal
 * on itself, so the process dies by it: exit closes its descriptors and unmaps the ring, but nothing of
 * tapdisk's own exit path runs (the control socket file is not unlinked).
 * The report is a log line in dom0's log plus the trace event a kernel oops carries (emulator/kernel/
 * oops.ts), as KASAN would give for a kernel object; a user-space crash does not end the run.
 */
import { traceOops } from '../kernel/oops.js';
import type { Process } from '../kernel/process.js';
import type { SignalName } from '../kernel/signals.js';
import type { Env } from '../runtime/engine.js';

export class TapdiskCrash extends Error {
  constructor(
    readonly signal: Extract<SignalName, 'SIGABRT' | 'SIGSEGV'>,
    /** What went wrong, e.g. "Assertion 'conn->out.done' failed". */
    readonly bug: string,
    /** Which object and access, for the second log line. */
    readonly detail: string,
  ) {
    super(`${bug} (${detail})`);
    this.name = 'TapdiskCrash';
  }
}

/** A use of a freed object (td_vbd_t): the access names what touched it. */
export function useAfterFree(object: string, freedBy: string, access: string): TapdiskCrash {
  return new TapdiskCrash(
    'SIGSEGV',
    `use-after-free of ${object}`,
    `${access} touched ${object}, freed by ${freedBy}`,
  );
}

/** Logs the crash the way it shows on a host, then kills the process with the crash's signal. */
export async function dieOf(env: Env, proc: Process, crash: TapdiskCrash): Promise<never> {
  const who = `tapdisk2[${proc.pid}]`;
  if (crash.signal === 'SIGSEGV') env.trace.log('kernel', `${who}: segfault: ${crash.bug}`);
  else env.trace.log('tapdisk', `${who}: ${crash.bug}`);
  env.trace.log('tapdisk', `${who}: ${crash.detail}`);
  traceOops(env, 'tapdisk', { pid: proc.pid, signal: crash.signal, bug: crash.bug, detail: crash.detail });
  await proc.kill(proc.pid, crash.signal);
  // The signal ends the task at the kill() syscall's exit; getting here means it was ignored.
  throw new Error(`${who}: ${crash.signal} did not end the process`);
}
