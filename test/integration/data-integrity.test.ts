/**
 * Data integrity through the real machine, in both engines: `xl create` boots a guest whose xvda is a
 * `phy` disk (blkback opens dom0's /dev/loop0, attached to an image file) and whose xvdb is a `tap`
 * disk (tapdisk2 over blktap2, aio on an image file). For each combination of direct/indirect
 * requests and with/without persistent grants the guest
 * - reads back the image's own bytes,
 * - writes, flushes, and the controller then finds the bytes in the image file,
 * - runs fio-like jobs with verification at queue depths 1 and 32 (64 KiB blocks: 16 segments, so
 *   one indirect request, or two direct ones when indirect descriptors are off).
 * How requests travelled (indirect or not, persistent grants or not) is read from the trace and the
 * guest's blkfront line, so a variant that silently fell back to another would fail.
 */
import { describe, expect, test } from 'vitest';
import { firstMismatch, type Pattern } from '../../emulator/guest/pattern.js';
import type { MachineBlkfrontParams } from '../../emulator/machine/config.js';
import type { TraceEvent } from '../../emulator/runtime/engine.js';
import { type DataMachine, FILL, MiB, onDataMachine, PHY, removeWorkDir, TAP } from './data-machine.js';

const KiB = 1024;
const BS = 64 * KiB;

interface Variant {
  name: string;
  blkfront: MachineBlkfrontParams;
  indirect: boolean;
  persistent: boolean;
}

const VARIANTS: Variant[] = [
  {
    name: 'direct',
    blkfront: { maxIndirectSegments: 0, featurePersistent: false },
    indirect: false,
    persistent: false,
  },
  { name: 'indirect', blkfront: { featurePersistent: false }, indirect: true, persistent: false },
  { name: 'direct + persistent', blkfront: { maxIndirectSegments: 0 }, indirect: false, persistent: true },
  { name: 'indirect + persistent', blkfront: {}, indirect: true, persistent: true },
];

interface JobResult {
  ios: number;
  reads: number;
  writes: number;
  errors: number;
  verifyErrors: number;
  failures: string[];
}

/** Everything one disk goes through; returns what the assertions look at. */
async function exercise(m: DataMachine, disk: string, image: string, salt: number) {
  const call = (method: string, a: Record<string, unknown>) => m.ctl.call(m.guest, method, { disk, ...a });
  // 1. The image's own bytes, across a 256 KiB read at an odd page.
  const read = (await call('read', { offset: MiB + 4096, length: 256 * KiB, verify: FILL })) as {
    mismatchAt: number;
  };
  // 2. fio reads of the image at queue depth 1 and 32.
  const rd1 = (await call('fio', {
    rw: 'randread',
    bs: BS,
    iodepth: 1,
    count: 16,
    pattern: FILL,
    verify: true,
  })) as JobResult;
  const rd32 = (await call('fio', {
    rw: 'randread',
    bs: BS,
    iodepth: 32,
    count: 128,
    pattern: FILL,
    verify: true,
  })) as JobResult;
  // 3. Write, flush, and the bytes are in the file.
  const pattern: Pattern = { kind: 'random', seed: 2000 + salt };
  await call('write', { offset: 512 * KiB, length: 192 * KiB, pattern });
  await call('flush', {});
  const flushed = firstMismatch(pattern, 512 * KiB, m.fileBytes(image, 512 * KiB, 192 * KiB));
  // 4. fio writes over a region first overwritten with other bytes, verified by reading back; a lost or
  // misplaced write shows as old bytes. Then a flush, and the file holds exactly what was acknowledged.
  const region = MiB;
  const old: Pattern = { kind: 'random', seed: 3000 + salt };
  const fresh: Pattern = { kind: 'random', seed: 4000 + salt };
  await call('write', { offset: 0, length: region, pattern: old });
  const wr1 = (await call('fio', {
    rw: 'write',
    bs: BS,
    iodepth: 1,
    count: 4,
    size: region,
    pattern: fresh,
    verify: true,
  })) as JobResult;
  const wr32 = (await call('fio', {
    rw: 'randwrite',
    bs: BS,
    iodepth: 32,
    count: 64,
    size: region,
    pattern: fresh,
    verify: true,
  })) as JobResult;
  await call('flush', {});
  const file = m.fileBytes(image, 0, region);
  const blocks: string[] = [];
  for (let off = 0; off < region; off += BS) {
    const got = file.subarray(off, off + BS);
    blocks.push(
      firstMismatch(fresh, off, got) === -1 ? 'new' : firstMismatch(old, off, got) === -1 ? 'old' : 'torn',
    );
  }
  return { read: read.mismatchAt, flushed, rd1, rd32, wr1, wr32, blocks };
}

function summarize(trace: readonly TraceEvent[], disk: string) {
  const starts = trace.filter(
    (e) => e.comp === 'blkfront' && e.kind === 'request-start' && e.fields?.disk === disk,
  );
  return {
    requests: starts.length,
    indirect: starts.filter((e) => e.fields?.indirect === true).length,
    maxSegments: Math.max(...starts.map((e) => Number(e.fields?.nseg ?? 0))),
  };
}

function expectClean(r: Awaited<ReturnType<typeof exercise>>) {
  expect(r.read).toBe(-1);
  expect(r.flushed).toBe(-1);
  for (const [job, ios] of [
    [r.rd1, 16],
    [r.rd32, 128],
    [r.wr1, 4],
    [r.wr32, 64],
  ] as const) {
    expect(job).toMatchObject({ ios, errors: 0, verifyErrors: 0, failures: [] });
  }
  // The sequential job wrote the first 4 blocks; every block is wholly old or wholly new.
  expect(r.blocks.slice(0, 4)).toEqual(['new', 'new', 'new', 'new']);
  expect(r.blocks).not.toContain('torn');
}

async function runVariant(engine: 'sim' | 'threads', v: Variant) {
  const r = await onDataMachine({ engine, blkfront: v.blkfront }, async (m) => ({
    phy: await exercise(m, PHY, m.phyImage, 1),
    tap: await exercise(m, TAP, m.tapImage, 2),
  }));
  removeWorkDir(r.workDir);
  expect(r.error).toBeUndefined();
  expect(r.outcome).toBe('completed');
  expect(r.stalls).toEqual([]);
  const v2 = r.value!;
  expectClean(v2.phy);
  expectClean(v2.tap);
  const guestLog = Object.values(r.dmesg).flat();
  // blkback's connect line names persistent grants only when both ends enabled them.
  const backLines = guestLog.filter((l) => l.includes('xen-blkback: backend/vbd/1/'));
  expect(backLines).toHaveLength(2);
  for (const l of backLines) expect(l.endsWith(' persistent grants')).toBe(v.persistent);
  if (engine === 'sim') {
    // Queue depth 32 of 64 KiB bios keeps the 32-slot ring full (sim schedules every worker first).
    const inflight = r.trace
      .filter((e) => e.comp === 'blkfront' && e.kind === 'ring')
      .map((e) => Number(e.fields?.inflight));
    expect(Math.max(...inflight)).toBe(32);
  }
  for (const disk of [PHY, TAP]) {
    const line = guestLog.find((l) => l.includes(`blkfront: ${disk}:`));
    expect(line).toContain(`persistent grants: ${v.persistent ? 'enabled' : 'disabled'};`);
    expect(line).toContain(`indirect descriptors: ${v.indirect ? 'enabled' : 'disabled'};`);
    const s = summarize(r.trace, disk);
    expect(s.requests).toBeGreaterThan(0);
    if (v.indirect) {
      expect(s.indirect).toBeGreaterThan(0);
      // The 256 KiB read fills requests up to blkfront's max_indirect_segments default (32).
      expect(s.maxSegments).toBe(32);
    } else {
      expect(s.indirect).toBe(0);
      expect(s.maxSegments).toBe(11); // BLKIF_MAX_SEGMENTS_PER_REQUEST
    }
  }
  return r;
}

describe('data integrity through the machine (sim): phy and tap disks', () => {
  test.each(VARIANTS)(
    '$name: image bytes read, flushed writes in the file, fio verify at qd 1 and 32',
    async (v) => {
      await runVariant('sim', v);
    },
    120_000,
  );

  test('the same seed gives the same request stream', async () => {
    const streams = [];
    for (let i = 0; i < 2; i++) {
      const r = await onDataMachine({ engine: 'sim', seed: 7, phyOnly: true }, async (m) =>
        m.ctl.call(m.guest, 'fio', {
          disk: PHY,
          rw: 'randread',
          bs: 4096,
          iodepth: 32,
          count: 64,
          pattern: FILL,
          verify: true,
        }),
      );
      removeWorkDir(r.workDir);
      expect(r.value).toMatchObject({ ios: 64, errors: 0, verifyErrors: 0 });
      streams.push(
        r.trace
          .filter((e) => e.comp === 'blkfront' && e.kind === 'request-start')
          .map((e) => `${e.t} ${e.fields?.id} ${e.fields?.sector}`),
      );
    }
    expect(streams[0].length).toBe(64);
    expect(streams[1]).toEqual(streams[0]);
  }, 60_000);
});

describe('data integrity through the machine (threads): phy and tap disks', () => {
  test.each(VARIANTS)(
    '$name: image bytes read, flushed writes in the file, fio verify at qd 1 and 32',
    async (v) => {
      await runVariant('threads', v);
    },
    120_000,
  );
});
