/** Runs tap-ctl commands as processes on a sim-engine kernel with the test peers installed. */
import { Kernel } from '../../emulator/kernel/kernel.js';
import type { Process } from '../../emulator/kernel/process.js';
import type { Env, RunResult } from '../../emulator/runtime/engine.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import { runTapCtl } from '../../emulator/toolstack/tap-ctl/command.js';
import { type TapCtlContext, tapCtlContext } from '../../emulator/toolstack/tap-ctl/context.js';
import type { TapCtlVariant } from '../../emulator/toolstack/tap-ctl-args.js';
import { installTapdisk, type TapdiskLog, type TapdiskScript, TestBlktap } from './tap-ctl-peers.js';

export interface Host {
  k: Kernel;
  env: Env;
  blktap: TestBlktap | undefined;
  log: TapdiskLog;
  /** `tap-ctl <argv>` as its own process: exit code, output lines, start and end times. */
  tapCtl(
    argv: readonly string[],
    options?: { tty?: boolean; variant?: TapCtlVariant },
  ): Promise<{ code: number; out: string[]; start: number; end: number }>;
  /** Runs `fn` with the library inside a process named `name` (as libxl runs it inside xl). */
  library<T>(fn: (ctx: TapCtlContext) => Promise<T>, name?: string): Promise<T>;
}

export async function onHost<T>(
  body: (h: Host) => Promise<T>,
  options: { script?: TapdiskScript; blktap?: boolean; seed?: number } = {},
): Promise<RunResult<T>> {
  const engine = createSimEngine({ seed: options.seed ?? 1 });
  return engine.run(async (ctl) => {
    const k = new Kernel(ctl.env);
    const blktap = options.blktap === false ? undefined : new TestBlktap(k);
    const log: TapdiskLog = { received: [], replyErrors: [] };
    installTapdisk(k, options.script ?? {}, log);
    const h: Host = {
      k,
      env: ctl.env,
      blktap,
      log,
      async tapCtl(argv, o = {}) {
        const start = ctl.env.now();
        let code = -1;
        const proc = k.spawn(
          async (p: Process) => {
            code = await runTapCtl(p, argv, { variant: o.variant ?? 'xen', tty: o.tty ?? false, kernel: k });
            return code;
          },
          argv,
          { name: 'tap-ctl' },
        );
        const status = await k.processes.waitExit(proc);
        return { code: status?.code ?? code, out: [...proc.output], start, end: ctl.env.now() };
      },
      async library(fn, name = 'xl') {
        let result: { value: Awaited<ReturnType<typeof fn>> } | undefined;
        const proc = k.spawn(
          async (p: Process) => {
            result = { value: await fn(tapCtlContext(p, k)) };
          },
          [],
          { name },
        );
        await k.processes.waitExit(proc);
        if (result === undefined)
          throw new Error(`${name} did not finish: ${JSON.stringify(proc.exitStatus)}`);
        return result.value;
      },
    };
    return body(h);
  });
}

/** Like onHost, failing the test unless the run completed. */
export async function host<T>(
  body: (h: Host) => Promise<T>,
  options: { script?: TapdiskScript; blktap?: boolean; seed?: number } = {},
): Promise<T> {
  const r = await onHost(body, options);
  if (r.outcome !== 'completed') {
    throw new Error(`run ended with ${r.outcome}: ${r.error?.stack ?? JSON.stringify(r.stalls)}`);
  }
  return r.value as T;
}
