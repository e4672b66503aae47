/**
 * A whole machine for data-path tests: dom0 with a loop-style block device over an image file (the
 * `phy` path: blkback opens /dev/loop0 directly) and a second image served by tapdisk2 through blktap2
 * (the `tap` path), one guest with both disks, booted by `xl create`. Both images start filled with
 * FILL (a random pattern: a function of the absolute offset with no short period, so a read from the
 * wrong offset cannot pass) and any read can be checked against the file.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Pattern, patternBytes } from '../../emulator/guest/pattern.js';
import type {
  MachineBlkbackParams,
  MachineBlkfrontParams,
  MachineConfig,
} from '../../emulator/machine/config.js';
import { MACHINE_DEFAULT_VERSIONS, type MachineVersions } from '../../emulator/machine/config.js';
import { buildMachine } from '../../emulator/machine/machine.js';
import type { Controller, RunResult } from '../../emulator/runtime/engine.js';
import { testTempDir } from '../temp-dirs.js';
import { THREADS_TIME_SCALE, THREADS_WATCHDOG_MS } from '../threads-time.js';

export const MiB = 1024 * 1024;
export const IMAGE_BYTES = 4 * MiB;
export const GUEST = 'guest1';
/** What both images hold at the start. */
export const FILL: Pattern = { kind: 'random', seed: 31 };
/** The disks as the guest sees them. */
export const PHY = 'xvda';
export const TAP = 'xvdb';

export interface DataMachineOptions {
  engine: 'sim' | 'threads';
  seed?: number;
  blkfront?: MachineBlkfrontParams;
  blkback?: MachineBlkbackParams;
  /** blkback version (indirect segments and persistent grants from 2013). */
  blkbackVersion?: MachineVersions['blkback'];
  /** Leave out the tap disk (faster when only the phy path is under test). */
  phyOnly?: boolean;
}

export interface DataMachine {
  ctl: Controller;
  /** Engine domain of the guest. */
  guest: number;
  phyImage: string;
  tapImage: string;
  /** Current bytes of an image file. */
  fileBytes(path: string, offset: number, length: number): Uint8Array;
}

export function machineConfig(o: DataMachineOptions, workDir: string): MachineConfig {
  const phyImage = join(workDir, 'phy.img');
  const tapImage = join(workDir, 'tap.img');
  const disks = [`format=raw, vdev=${PHY}, access=rw, backendtype=phy, target=/dev/loop0`];
  if (!o.phyOnly) disks.push(`format=raw, vdev=${TAP}, access=rw, backendtype=tap, target=${tapImage}`);
  return {
    guests: [
      {
        name: GUEST,
        memory: 32 * MiB,
        abi: 'x86_64',
        disks,
        ...(o.blkfront ? { blkfront: o.blkfront } : {}),
      },
    ],
    versions: { ...MACHINE_DEFAULT_VERSIONS, blkback: o.blkbackVersion ?? '2017' },
    memory: 96 * MiB,
    workDir,
    blockDevices: [{ name: 'loop0', backing: { kind: 'file', path: phyImage } }],
    ...(o.blkback ? { blkback: o.blkback } : {}),
  };
}

/** Builds the machine, boots the guest with `xl create`, runs `body`, closes the engine. */
export async function onDataMachine<T>(
  o: DataMachineOptions,
  body: (m: DataMachine) => Promise<T>,
): Promise<RunResult<T> & { workDir: string }> {
  const workDir = testTempDir('data');
  const phyImage = join(workDir, 'phy.img');
  const tapImage = join(workDir, 'tap.img');
  const fill = patternBytes(FILL, 0, IMAGE_BYTES);
  writeFileSync(phyImage, fill);
  writeFileSync(tapImage, fill);
  const config = machineConfig(o, workDir);
  const machine =
    o.engine === 'sim'
      ? await buildMachine(config, 'sim', { seed: o.seed ?? 1 })
      : await buildMachine(config, 'threads', {
          timeScale: THREADS_TIME_SCALE,
          watchdogMs: THREADS_WATCHDOG_MS,
        });
  try {
    const r = await machine.run(async (ctl) => {
      const create = (await ctl.call(0, 'xl', ['create', `/etc/xen/${GUEST}.cfg`])) as {
        exitCode: number;
        stdout: string[];
      };
      if (create.exitCode !== 0) throw new Error(`xl create failed: ${create.stdout.join('\n')}`);
      return body({
        ctl,
        guest: machine.engineDomainOf(GUEST),
        phyImage,
        tapImage,
        fileBytes: (path, offset, length) => readFileSync(path).subarray(offset, offset + length),
      });
    });
    return { ...r, workDir };
  } finally {
    await machine.close();
  }
}

/** Removes a work dir once a test has looked at it. */
export function removeWorkDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
