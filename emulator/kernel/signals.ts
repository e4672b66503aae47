/**
 * The signals the model delivers (x86 numbers from arch/x86/include/uapi/asm/signal.h) and their default
 * actions. Simplification: no user handlers; a signal is either taken with its default action or ignored.
 */

export const SIGNALS = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGABRT: 6,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGPIPE: 13,
  SIGTERM: 15,
  SIGCHLD: 17,
} as const;

export type SignalName = keyof typeof SIGNALS;

export type SignalDisposition = 'default' | 'ignore';

/** Default action: terminate the process, or ignore (SIGCHLD). */
export function defaultTerminates(signal: SignalName): boolean {
  return signal !== 'SIGCHLD';
}

/** SIGKILL cannot be caught or ignored (sigaction returns EINVAL). */
export function canIgnore(signal: SignalName): boolean {
  return signal !== 'SIGKILL';
}

export function isSignalName(name: string): name is SignalName {
  return Object.hasOwn(SIGNALS, name);
}

/** Thrown through a task's stack to end it because its process is dying (fatal signal or exit_group). */
export class TaskKilled extends Error {
  constructor(
    readonly pid: number,
    readonly reason: string,
  ) {
    super(`process ${pid} is exiting: ${reason}`);
    this.name = 'TaskKilled';
  }
}
