/**
 * Guest block I/O over the `phy` path on the threads engine: one guest (blkfront) and dom0 (blkback)
 * in their own worker threads, dom0's disk a RAM disk (/dev/ram0: the kernel model's memory-backed
 * image disk, no service latency), the guest booted by `xl create` with blkfront's and blkback's
 * default module parameters (indirect descriptors, persistent grants, one-page ring).
 *
 * Figures, each from the guest's fio-like job (emulator/guest/workload.ts) after a warm-up:
 * - 4 KiB random reads at queue depth 32, in ops/s: compared with the transport limit (a) directly,
 *   since (a) moves one 4 KiB copy per ring entry;
 * - 1 MiB sequential reads at queue depth 8, in MiB/s, and the same run as 4 KiB-equivalent ops/s
 *   (bytes / 4096 per second), which is what is compared with (a): (a) × 4096 B is its copy bandwidth.
 * At time scale 1 the engine's clock is real time, so the job's elapsed time is wall-clock time.
 */

import { MACHINE_DEFAULT_VERSIONS, type MachineConfig } from '../emulator/machine/config.js';
import { buildMachine } from '../emulator/machine/machine.js';
import type { BenchCase } from './harness.js';

const MiB = 1024 * 1024;
const KiB = 1024;
const GUEST = 'bench1';
const DISK = 'xvda';

export interface BlkIoOptions {
  /** Real ms each measured job runs (default 2000). */
  measureMs?: number;
  /** I/Os of the warm-up job before each measurement (default 3000). */
  warmupIos?: number;
}

export interface JobFigures {
  ios: number;
  bytes: number;
  elapsedMs: number;
  opsPerSecond: number;
  mibPerSecond: number;
}

export interface BlkIoFigures {
  random4k: JobFigures;
  seq1m: JobFigures;
}

interface FioResult {
  ios: number;
  bytesRead: number;
  errors: number;
  failures: string[];
  elapsedMs: number;
}

export function blkIoMachineConfig(): MachineConfig {
  return {
    guests: [
      {
        name: GUEST,
        memory: 64 * MiB,
        abi: 'x86_64',
        disks: [`format=raw, vdev=${DISK}, access=rw, backendtype=phy, target=/dev/ram0`],
      },
    ],
    versions: { ...MACHINE_DEFAULT_VERSIONS },
    memory: 160 * MiB,
    blockDevices: [{ name: 'ram0', backing: { kind: 'memory', sizeBytes: 64 * MiB } }],
  };
}

function figures(r: FioResult, what: string): JobFigures {
  if (r.errors !== 0) throw new Error(`bench ${what}: ${r.errors} I/O errors: ${r.failures.join('; ')}`);
  if (!(r.elapsedMs > 0) || r.ios === 0) throw new Error(`bench ${what}: no I/O measured`);
  return {
    ios: r.ios,
    bytes: r.bytesRead,
    elapsedMs: r.elapsedMs,
    opsPerSecond: (r.ios * 1000) / r.elapsedMs,
    mibPerSecond: (r.bytesRead / MiB) * (1000 / r.elapsedMs),
  };
}

/** Builds the machine, boots the guest, runs both jobs (each after a warm-up) and closes the engine. */
export async function measureBlkIo(o: BlkIoOptions = {}): Promise<BlkIoFigures> {
  const measureMs = o.measureMs ?? 2000;
  const warmupIos = o.warmupIos ?? 3000;
  // The trace is not looked at: keep only log lines, so workers neither build nor post request events.
  const machine = await buildMachine(blkIoMachineConfig(), 'threads', {
    timeScale: 1,
    watchdogMs: 1000,
    traceKeep: { kinds: ['log'] },
  });
  try {
    const r = await machine.run(async (ctl) => {
      const create = (await ctl.call(0, 'xl', ['create', `/etc/xen/${GUEST}.cfg`])) as {
        exitCode: number;
        stdout: string[];
      };
      if (create.exitCode !== 0) throw new Error(`bench: xl create failed: ${create.stdout.join(' | ')}`);
      const guest = machine.engineDomainOf(GUEST);
      const fio = async (job: Record<string, unknown>) =>
        (await ctl.call(guest, 'fio', { disk: DISK, verify: false, ...job })) as FioResult;
      const random = { rw: 'randread', bs: 4 * KiB, iodepth: 32 };
      await fio({ ...random, count: warmupIos });
      const random4k = figures(await fio({ ...random, duration: measureMs }), '4 KiB random reads');
      const seq = { rw: 'read', bs: MiB, iodepth: 8 };
      await fio({ ...seq, count: Math.max(8, Math.ceil(warmupIos / 64)) });
      const seq1m = figures(await fio({ ...seq, duration: measureMs }), '1 MiB sequential reads');
      return { random4k, seq1m };
    });
    if (r.outcome !== 'completed' || r.value === undefined) {
      throw new Error(`bench blk-io: run ${r.outcome}: ${r.error?.message ?? 'no value'}`);
    }
    return r.value;
  } finally {
    await machine.close();
  }
}

/** The `npm run bench` cases; one machine run serves all of them. */
export function blkIoCases(transportLimit: string, o: BlkIoOptions = {}): BenchCase[] {
  let measured: Promise<BlkIoFigures> | undefined;
  const get = () => {
    measured ??= measureBlkIo(o);
    return measured;
  };
  return [
    {
      name: 'threads phy: 4 KiB random reads, qd 32 (RAM disk)',
      unit: 'ops/s',
      baseline: transportLimit,
      run: async () => (await get()).random4k.opsPerSecond,
    },
    {
      name: 'threads phy: 1 MiB sequential reads, qd 8 (RAM disk)',
      unit: 'MiB/s',
      // Not a baseline itself: its ratio is on the 4 KiB-equivalent line below (units differ here).
      baseline: transportLimit,
      run: async () => (await get()).seq1m.mibPerSecond,
    },
    {
      name: 'threads phy: 1 MiB sequential reads as 4 KiB ops',
      unit: 'ops/s',
      baseline: transportLimit,
      run: async () => {
        const s = (await get()).seq1m;
        return ((s.bytes / (4 * KiB)) * 1000) / s.elapsedMs;
      },
    },
  ];
}
