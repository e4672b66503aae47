/**
 * Runs tap-ctl commands as processes on a sim-engine dom0 kernel. By default the real pieces are
 * installed: the blktap2 driver (drivers/blktap) and tapdisk2 (emulator/tapdisk). With `peers` the
 * scripted test peers of tap-ctl-peers.ts stand in for both, for failure injection the real pieces
 * cannot produce (each test that uses them says which).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BlktapDriver, type DestroySemantics, installBlktap } from '../../drivers/blktap/driver.js';
import type { BlockDevice } from '../../emulator/kernel/block-device.js';
import { Kernel, namedHolder } from '../../emulator/kernel/kernel.js';
import type { Process } from '../../emulator/kernel/process.js';
import type { Env, Holder, RunResult, TraceEvent } from '../../emulator/runtime/engine.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import { DEFAULT_TAPDISK_OPTIONS, type TapdiskOptions } from '../../emulator/tapdisk/options.js';
import { registerTapdisk } from '../../emulator/tapdisk/server.js';
import { runTapCtl } from '../../emulator/toolstack/tap-ctl/command.js';
import { type TapCtlContext, tapCtlContext } from '../../emulator/toolstack/tap-ctl/context.js';
import type { TapCtlVariant } from '../../emulator/toolstack/tap-ctl-args.js';
import { testTempDir } from '../temp-dirs.js';
import { installTapdisk, type TapdiskLog, type TapdiskScript, TestBlktap } from './tap-ctl-peers.js';

export interface TapCtlRun {
  code: number;
  out: string[];
  start: number;
  end: number;
}

export interface Host {
  k: Kernel;
  env: Env;
  /** The real blktap2 driver (undefined with peers or without the module). */
  drv: BlktapDriver | undefined;
  /** The peer control device (only with `peers`). */
  blktap: TestBlktap | undefined;
  /** What the peer tapdisks received (only with `peers`; the real tapdisk traces 'tapdisk'/'message'). */
  log: TapdiskLog;
  /** `tap-ctl <argv>` as its own process: exit code, output lines, start and end times. */
  tapCtl(argv: readonly string[], options?: { tty?: boolean; variant?: TapCtlVariant }): Promise<TapCtlRun>;
  /** Runs `fn` with the library inside a process named `name` (as libxl runs it inside xl). */
  library<T>(fn: (ctx: TapCtlContext) => Promise<T>, name?: string): Promise<T>;
  /** The gendisk tapdevN of the real driver. */
  tapdev(minor: number): BlockDevice;
  /** A block-device opener that is not a task, standing in for blkback: opens tapdevN now. */
  holdTapdev(minor: number, label?: string): Promise<{ holder: Holder; release(): Promise<void> }>;
}

export interface HostOptions {
  /** Use the scripted peers instead of the real driver and tapdisk2. */
  peers?: { script?: TapdiskScript };
  /** Load no blktap module at all. */
  blktap?: boolean;
  semantics?: DestroySemantics;
  tapdisk?: Partial<TapdiskOptions>;
  seed?: number;
}

export async function onHost<T>(
  body: (h: Host) => Promise<T>,
  options: HostOptions = {},
): Promise<RunResult<T>> {
  const engine = createSimEngine({ seed: options.seed ?? 1 });
  return engine.run(async (ctl) => {
    const k = new Kernel(ctl.env);
    const log: TapdiskLog = { received: [], replyErrors: [] };
    let drv: BlktapDriver | undefined;
    let blktap: TestBlktap | undefined;
    if (options.peers !== undefined) {
      if (options.blktap !== false) blktap = new TestBlktap(k);
      installTapdisk(k, options.peers.script ?? {}, log);
    } else {
      if (options.blktap !== false) {
        drv = installBlktap(k, { destroySemantics: options.semantics ?? '2010-08' });
      }
      registerTapdisk(k, { ...DEFAULT_TAPDISK_OPTIONS, ...options.tapdisk });
    }
    const h: Host = {
      k,
      env: ctl.env,
      drv,
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
      tapdev(minor) {
        if (drv === undefined) throw new Error('tapdev: the real blktap driver is not loaded');
        const bdev = k.blocks.lookup(drv.deviceMajor, minor);
        if (bdev === undefined) throw new Error(`tapdev${minor}: no gendisk`);
        return bdev;
      },
      async holdTapdev(minor, label = `blkback vbd-1-${51712 + minor * 16}`) {
        const bdev = h.tapdev(minor);
        const holder = namedHolder(label);
        await k.blocks.open(bdev, holder, { write: true });
        return { holder, release: () => k.blocks.close(bdev, holder) };
      },
    };
    return body(h);
  });
}

/** Like onHost, failing the test unless the run completed. */
export async function host<T>(body: (h: Host) => Promise<T>, options: HostOptions = {}): Promise<T> {
  const r = await onHost(body, options);
  if (r.outcome !== 'completed') {
    throw new Error(`run ended with ${r.outcome}: ${r.error?.stack ?? JSON.stringify(r.stalls)}`);
  }
  return r.value as T;
}

/** `<pid> <TYPE> <cookie> @<ms>` for each control message the real tapdisks handled, from the trace. */
export function tapdiskMessages(trace: readonly TraceEvent[]): string[] {
  return trace
    .filter((e) => e.comp === 'tapdisk' && e.kind === 'message')
    .map((e) => `${e.fields?.pid} ${e.fields?.type} ${e.fields?.cookie} @${e.t}`);
}

/** A fresh raw image of `bytes` bytes whose every 512-byte sector starts with its sector number. */
export function makeImage(bytes: number, name = 'disk.img'): string {
  const dir = testTempDir('tap-ctl');
  const path = join(dir, name);
  const data = new Uint8Array(bytes);
  const view = new DataView(data.buffer);
  for (let s = 0; s < bytes / 512; s++) view.setUint32(s * 512, s, true);
  writeFileSync(path, data);
  return path;
}
