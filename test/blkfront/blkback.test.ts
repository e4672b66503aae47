// blkfront against the real blkback (drivers/blkback) over an image disk in dom0's kernel model:
// data integrity through the whole path, fio-like jobs with verification, direct and indirect requests,
// with and without persistent grants.
import { describe, expect, it } from 'vitest';
import type { BlkfrontOptions } from '../../drivers/blkfront/info.js';
import { patternBytes } from '../../emulator/guest/pattern.js';
import type { Controller, RunResult } from '../../emulator/runtime/engine.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import { Hypervisor } from '../../hypervisor/index.js';
import { shareXsRings } from '../fixtures/dom0-xenstore.js';
import { shareHypervisor } from '../fixtures/hv.js';

const GUEST = 1;
const FE = `/local/domain/${GUEST}/device/vbd/51712`;
const BE = `/local/domain/0/backend/vbd/${GUEST}/51712`;

async function run<T>(
  blkfront: BlkfrontOptions,
  body: (ctl: Controller) => Promise<T>,
  dom0: Record<string, unknown> = {},
) {
  const hv = Hypervisor.create({ frames: 8192, maxDomains: 4 });
  const d0 = hv.hypercalls(0);
  const domid = d0.createDomain({ maxGrantFrames: 4 });
  if (domid !== GUEST) throw new Error(`guest domid ${domid}`);
  d0.unpauseDomain(domid);
  const engine = createSimEngine({ seed: 3 });
  let r: RunResult<T>;
  try {
    shareHypervisor(engine, hv);
    shareXsRings(engine, [GUEST]);
    await engine.addDomain({
      domid: 0,
      name: 'dom0',
      module: new URL('../blkback/fixtures/dom0.ts', import.meta.url).href,
      config: { guests: [GUEST], disks: 1, diskSectors: 4096, ...dom0 },
    });
    await engine.addDomain({
      domid: GUEST,
      name: 'guest1',
      module: new URL('./fixtures/guest.ts', import.meta.url).href,
      config: { blkfront },
    });
    r = await engine.run(async (ctl) => {
      await ctl.call(0, 'start');
      await ctl.call(GUEST, 'start');
      await ctl.call(0, 'addVbd', GUEST, 51712);
      await ctl.call(0, 'settle', 10);
      await ctl.call(0, 'hotplug', GUEST, 51712, 0);
      await ctl.call(0, 'settle', 50);
      return body(ctl);
    });
  } finally {
    await engine.close();
  }
  if (r.outcome !== 'completed') {
    throw new Error(
      `run ended ${r.outcome}: ${r.error?.stack} ${JSON.stringify(r.stalls)}\n${(r.dmesg[GUEST] ?? []).join('\n')}\n${(r.dmesg[0] ?? []).join('\n')}`,
    );
  }
  return { value: r.value as T, result: r };
}

const variants: Array<{ name: string; opts: BlkfrontOptions }> = [
  { name: 'direct, no persistent grants', opts: { maxIndirectSegments: 0, featurePersistent: false } },
  { name: 'indirect, no persistent grants', opts: { featurePersistent: false } },
  { name: 'direct, persistent grants', opts: { maxIndirectSegments: 0 } },
  { name: 'indirect, persistent grants', opts: {} },
];

describe('blkfront + real blkback', () => {
  it.each(variants)('connects and moves exact bytes both ways ($name)', async ({ opts }) => {
    const { value } = await run(opts, async (ctl) => {
      const states = {
        fe: await ctl.call(0, 'read', `${FE}/state`),
        be: await ctl.call(0, 'read', `${BE}/state`),
      };
      const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
      const w = await ctl.call(GUEST, 'write', h, 8192, 128 * 1024, 'random:5');
      const r = await ctl.call(GUEST, 'read', h, 8192, 128 * 1024, 'random:5');
      const image = (await ctl.call(0, 'diskBytes', 0, 8192, 128 * 1024)) as string;
      await ctl.call(0, 'fillDisk', 0, 512 * 1024, 4096, 0x5a);
      const back = (await ctl.call(GUEST, 'readBytes', h, 512 * 1024, 4096)) as Uint8Array;
      await ctl.call(GUEST, 'close', h);
      return { states, w, r, image, back, state: await ctl.call(GUEST, 'state') };
    });
    expect(value.states).toEqual({ fe: '4', be: '4' });
    expect(value.w).toMatchObject({ error: undefined });
    expect(value.r).toMatchObject({ error: undefined, mismatchAt: -1 });
    expect(
      Buffer.from(value.image, 'base64').equals(
        Buffer.from(patternBytes({ kind: 'random', seed: 5 }, 8192, 128 * 1024)),
      ),
    ).toBe(true);
    expect(value.back.every((b) => b === 0x5a)).toBe(true);
    const st = value.state as { persistent: boolean; indirect: number };
    expect(st.persistent).toBe(opts.featurePersistent !== false);
    expect(st.indirect > 0).toBe(opts.maxIndirectSegments !== 0);
  });

  it.each([
    { iodepth: 1, opts: { featurePersistent: false } },
    { iodepth: 32, opts: { featurePersistent: false } },
    { iodepth: 1, opts: {} },
    { iodepth: 32, opts: {} },
  ])('fio randwrite + verify at depth $iodepth ($opts)', async ({ iodepth, opts }) => {
    const { value } = await run(
      opts,
      async (ctl) => {
        const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
        const w = await ctl.call(GUEST, 'job', h, {
          rw: 'randwrite',
          bs: 16384,
          iodepth,
          count: 48,
          pattern: 'random:11',
          verify: true,
        });
        const r = await ctl.call(GUEST, 'job', h, {
          rw: 'randread',
          bs: 4096,
          iodepth,
          count: 48,
          pattern: 'zero',
          verify: false,
        });
        return { w, r };
      },
      { latencyMs: 1 },
    );
    expect(value.w).toMatchObject({ ios: 48, errors: 0, verifyErrors: 0, bytesWritten: 48 * 16384 });
    expect(value.r).toMatchObject({ ios: 48, errors: 0 });
  });
});
