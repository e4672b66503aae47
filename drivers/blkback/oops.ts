/**
 * A kernel oops for use-after-free class bugs, reported the way KASAN / the page-fault handler would:
 * a "BUG: ..." line in the kernel log, a trace event of kind 'oops', and the run ends with outcome
 * 'error' carrying the same text (a dom0 oops with panic_on_oops, as XenServer and most distros ship).
 * The faulting access itself is not performed: the caller stops right after reporting.
 * Simplification: the oops is raised from a task of its own so the faulting caller's context (which may
 * belong to another component, e.g. a block completion) is not unwound through foreign code.
 */
import type { Env } from '../../emulator/runtime/engine.js';

/** The message every oops starts with; scenario expectations match on the rest. */
export const OOPS_PREFIX = 'BUG: ';

export function kernelOops(env: Env, component: string, bug: string, detail: string): void {
  const line = `${OOPS_PREFIX}${bug}`;
  env.trace.log(component, line);
  env.trace.log(component, detail);
  env.trace.emit(component, 'oops', { bug, detail });
  env.spawn(
    'oops',
    async () => {
      throw new Error(`${line} (${detail})`);
    },
    { component },
  );
}
