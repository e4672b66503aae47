/**
 * A kernel oops, as every kernel model here reports one (arch/x86/kernel/dumpstack.c oops_begin/die,
 * mm/kasan/report.c): a "BUG: ..." line and the detail in the kernel log, on a numbered oops the
 * "Oops: 0000 [#n] SMP" line, and a trace event of kind 'oops' that tools and tests look for.
 * What follows differs by kernel and lives with it: dom0 panics and the run ends (`kernelOops` below),
 * a guest crashes its domain (emulator/guest/oops.ts); a user-space crash (emulator/tapdisk/crash.ts)
 * is not an oops but is traced with the same event kind.
 */
import type { Env } from '../runtime/engine.js';

/** The prefix of every oops line; scenario expectations (`expect.oops`) match on the rest. */
export const OOPS_PREFIX = 'BUG: ';

/**
 * A kernel's oops path as drivers call it: report the bug and never return (the faulting task goes no
 * further). Drivers that take one from their kernel fall back to throwing `KernelOops`.
 */
export type KernelOopsReporter = (bug: string, detail: string) => Promise<never>;

/** What an oops throws when the kernel gave no reporter (unit tests), or after reporting. */
export class KernelOops extends Error {
  override readonly name = 'KernelOops';
  constructor(
    readonly bug: string,
    readonly detail: string,
  ) {
    super(`${OOPS_PREFIX}${bug} (${detail})`);
  }
}

/** The trace event every crash report carries (kind 'oops'); `bug` names what went wrong. */
export function traceOops(
  env: Env,
  component: string,
  data: { bug: string } & Record<string, unknown>,
): void {
  env.trace.emit(component, 'oops', data);
}

/** The log lines and trace event of an oops; `number` (1-based) adds oops_begin's "Oops: ... [#n]" line. */
export function logOops(env: Env, component: string, bug: string, detail: string, number?: number): void {
  env.trace.log(component, `${OOPS_PREFIX}${bug}`);
  env.trace.log(component, detail);
  if (number !== undefined) env.trace.log(component, `Oops: 0000 [#${number}] SMP`);
  traceOops(env, component, { bug, detail });
}

/**
 * dom0's oops for use-after-free class bugs: logged as above, then the run ends with outcome 'error'
 * carrying the "BUG: ..." text (panic_on_oops, as XenServer and most distros ship: dom0's panic takes
 * the host down). The faulting access itself is not performed: the caller stops right after this.
 * Simplification: the panic is raised from a task of its own so the faulting caller's context (which
 * may belong to another component, e.g. a block completion) is not unwound through foreign code.
 */
export function kernelOops(env: Env, component: string, bug: string, detail: string): void {
  logOops(env, component, bug, detail);
  env.spawn(
    'oops',
    async () => {
      throw new Error(`${OOPS_PREFIX}${bug} (${detail})`);
    },
    { component },
  );
}
