/**
 * Test host: a dom0 kernel in the sim engine with the blktap2 driver loaded and tapdisk2 installed, plus
 * small user-space helpers (a tap-ctl-like client speaking the message codec over ctl<pid>, and
 * control-device calls made from a process, as the kernel requires).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BLKTAP2_CONTROL_DEVICE,
  BLKTAP2_HANDLE_SIZE,
  BlktapIoctl,
  controlSocketPath,
  decodeBlktapHandle,
} from '../../drivers/blktap/abi.js';
import { type BlktapDriver, type DestroySemantics, installBlktap } from '../../drivers/blktap/driver.js';
import { KernelError } from '../../emulator/kernel/errno.js';
import { Kernel } from '../../emulator/kernel/kernel.js';
import type { Process } from '../../emulator/kernel/process.js';
import type { Env, RunResult } from '../../emulator/runtime/engine.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import {
  decodeTapdiskMessage,
  encodeTapdiskMessage,
  type TapdiskMessage,
  TapdiskMessageType,
} from '../../emulator/tapdisk/message.js';
import { DEFAULT_TAPDISK_OPTIONS, type TapdiskOptions } from '../../emulator/tapdisk/options.js';
import { registerTapdisk, TAPDISK2_PATH } from '../../emulator/tapdisk/server.js';
import { testTempDir } from '../temp-dirs.js';

export interface Host {
  k: Kernel;
  env: Env;
  drv: BlktapDriver;
}

export async function runHost<T>(
  config: { semantics: DestroySemantics; tapdisk?: Partial<TapdiskOptions> },
  body: (h: Host) => Promise<T>,
  seed = 1,
): Promise<RunResult<T>> {
  const engine = createSimEngine({ seed });
  return engine.run(async (ctl) => {
    const k = new Kernel(ctl.env);
    const drv = installBlktap(k, { destroySemantics: config.semantics });
    registerTapdisk(k, { ...DEFAULT_TAPDISK_OPTIONS, ...config.tapdisk });
    return body({ k, env: ctl.env, drv });
  });
}

export async function inHost<T>(
  config: { semantics: DestroySemantics; tapdisk?: Partial<TapdiskOptions> },
  body: (h: Host) => Promise<T>,
  seed = 1,
): Promise<T> {
  const r = await runHost(config, body, seed);
  if (r.outcome !== 'completed') {
    throw new Error(`run ended with ${r.outcome}: ${r.error?.stack ?? JSON.stringify(r.stalls)}`);
  }
  return r.value as T;
}

/** Runs `body` as a process and returns its result (KernelErrors come back as their code). */
export async function asProcess<T>(
  k: Kernel,
  name: string,
  body: (p: Process) => Promise<T>,
): Promise<T | string> {
  let out: T | string = 'not run';
  const proc = k.spawn(
    async (p: Process) => {
      try {
        out = await body(p);
      } catch (e) {
        if (!(e instanceof KernelError)) throw e;
        out = e.code;
      }
    },
    [],
    { name },
  );
  await k.processes.waitExit(proc);
  return out;
}

export async function allocTap(k: Kernel): Promise<number> {
  const r = await asProcess(k, 'tap-ctl', async (p) => {
    const fd = await p.open(BLKTAP2_CONTROL_DEVICE, { read: true, write: true });
    const h = new Uint8Array(BLKTAP2_HANDLE_SIZE);
    await p.ioctl(fd, BlktapIoctl.ALLOC_TAP, h);
    await p.close(fd);
    return decodeBlktapHandle(h).minor;
  });
  if (typeof r !== 'number') throw new Error(`ALLOC_TAP failed: ${r}`);
  return r;
}

export async function freeTap(k: Kernel, minor: number): Promise<string> {
  const r = await asProcess(k, 'tap-ctl', async (p) => {
    const fd = await p.open(BLKTAP2_CONTROL_DEVICE, { read: true, write: true });
    try {
      await p.ioctl(fd, BlktapIoctl.FREE_TAP, minor);
    } finally {
      await p.close(fd);
    }
    return 'ok';
  });
  return r;
}

export function spawnTapdisk(k: Kernel, args: string[] = []): Process {
  return k.spawn(TAPDISK2_PATH, args);
}

export type Reply = TapdiskMessage[] | 'timeout' | string;

/**
 * One tap-ctl exchange: connect to ctl<pid>, send, select() for the reply with a timeout, read replies
 * (LIST: until the terminator). Returns the replies, 'timeout', or the errno code of a failed syscall.
 */
export function tapCtl(k: Kernel, pid: number, msg: TapdiskMessage, timeoutMs = 5000): Promise<Reply> {
  return asProcess(k, 'tap-ctl', async (p) => {
    const fd = await p.connect(controlSocketPath(pid));
    await p.write(fd, encodeTapdiskMessage(msg));
    const out: TapdiskMessage[] = [];
    for (;;) {
      const ready = await p.select([fd], [], {
        timeoutMs,
        timeoutName: `tap-ctl select() ${timeoutMs / 1000} s`,
        what: `${msgName(msg)} reply from tapdisk ${pid}`,
      });
      if (ready.readable.length === 0) {
        await p.close(fd);
        return 'timeout';
      }
      const bytes = await p.read(fd);
      if (bytes === null) break;
      const m = decodeTapdiskMessage(bytes);
      out.push(m);
      if (m.type !== TapdiskMessageType.LIST_RSP || (m.body.kind === 'list' && m.body.count === 0)) break;
    }
    await p.close(fd);
    return out;
  });
}

function msgName(msg: TapdiskMessage): string {
  return Object.entries(TapdiskMessageType).find(([, v]) => v === msg.type)?.[0] ?? String(msg.type);
}

/** A fresh image file of `bytes` bytes whose every 512-byte sector starts with its sector number. */
export function makeImage(bytes: number): string {
  const dir = testTempDir('tapdisk');
  const path = join(dir, 'disk.img');
  const data = new Uint8Array(bytes);
  for (let s = 0; s < bytes / 512; s++) new DataView(data.buffer).setUint32(s * 512, s, true);
  writeFileSync(path, data);
  return path;
}

export function rspError(r: Reply): number | string {
  if (typeof r === 'string') return r;
  const m = r[0];
  if (m === undefined) return 'no reply';
  return m.body.kind === 'response' ? m.body.error : `type ${m.type}`;
}
