import { describe, expect, it } from 'vitest';
import { patternBytes } from '../../emulator/guest/pattern.js';
import { checkEvent } from '../../emulator/trace/vocabulary.js';
import { connect, GUEST, type HostOptions, hostValue } from './fixtures/host.js';

const variants: Array<{ name: string; opts: HostOptions; indirect: boolean; persistent: boolean }> = [
  {
    name: 'direct, grants per request',
    opts: { blkfront: { maxIndirectSegments: 0, featurePersistent: false } },
    indirect: false,
    persistent: false,
  },
  {
    name: 'indirect, grants per request',
    opts: { blkfront: { featurePersistent: false } },
    indirect: true,
    persistent: false,
  },
  {
    name: 'direct, persistent grants',
    opts: { blkfront: { maxIndirectSegments: 0 } },
    indirect: false,
    persistent: true,
  },
  { name: 'indirect, persistent grants', opts: {}, indirect: true, persistent: true },
  {
    name: 'indirect, 4-page ring',
    opts: { blkfront: { maxRingPageOrder: 2, featurePersistent: false } },
    indirect: true,
    persistent: false,
  },
];

describe('blkfront data path', () => {
  it.each(variants)(
    'writes and reads back exactly the image bytes ($name)',
    async ({ opts, indirect, persistent }) => {
      const { value } = await hostValue(async (ctl) => {
        await connect(ctl);
        const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
        // 96 KiB: 24 segments (indirect when negotiated, else split into direct requests).
        const w = await ctl.call(GUEST, 'write', h, 4096, 96 * 1024, 'random:9');
        const r = await ctl.call(GUEST, 'read', h, 4096, 96 * 1024, 'random:9');
        const small = await ctl.call(GUEST, 'write', h, 512, 1024, 'seq');
        const image = (await ctl.call(0, 'diskBytes', 0, 104 * 1024)) as Uint8Array;
        await ctl.call(0, 'fillDisk', 200 * 1024, patternBytes({ kind: 'ones' }, 0, 8192));
        const back = (await ctl.call(GUEST, 'readBytes', h, 200 * 1024, 8192)) as Uint8Array;
        await ctl.call(GUEST, 'close', h);
        return {
          w,
          r,
          small,
          image,
          back,
          stats: await ctl.call(0, 'stats'),
          state: await ctl.call(GUEST, 'state'),
        };
      }, opts);
      expect(value.w).toMatchObject({ error: undefined });
      expect(value.r).toMatchObject({ error: undefined, mismatchAt: -1 });
      expect(value.small).toMatchObject({ error: undefined });
      expect([...value.image.subarray(4096, 4096 + 96 * 1024)]).toEqual([
        ...patternBytes({ kind: 'random', seed: 9 }, 4096, 96 * 1024),
      ]);
      expect([...value.image.subarray(512, 1536)]).toEqual([...patternBytes({ kind: 'seq' }, 512, 1024)]);
      expect(value.image[0]).toBe(0);
      expect(value.back.every((b) => b === 0xff)).toBe(true);
      const stats = value.stats as {
        indirect: number;
        maxSegments: number;
        persistentMapped: number;
        ringPages: number;
      };
      expect(stats.indirect > 0).toBe(indirect);
      expect(stats.maxSegments).toBe(indirect ? 24 : 11);
      expect(stats.persistentMapped > 0).toBe(persistent);
    },
  );

  it.each([1, 32])('fio random write then verify at queue depth %i', async (iodepth) => {
    const { value } = await hostValue(
      async (ctl) => {
        await connect(ctl);
        const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
        const job = await ctl.call(GUEST, 'job', h, {
          rw: 'randwrite',
          bs: 8192,
          iodepth,
          count: 64,
          pattern: 'random:3',
          verify: true,
        });
        const rd = await ctl.call(GUEST, 'job', h, {
          rw: 'read',
          bs: 65536,
          iodepth,
          count: 16,
          pattern: 'random:3',
          verify: false,
        });
        return { job, rd, stats: await ctl.call(0, 'stats'), grants: await ctl.call(GUEST, 'grants') };
      },
      { backend: { latencyMs: 1 } },
    );
    const job = value.job as {
      ios: number;
      writes: number;
      errors: number;
      verifyErrors: number;
      bytesWritten: number;
      latency: { max: number };
    };
    expect(job).toMatchObject({ ios: 64, writes: 64, errors: 0, verifyErrors: 0, bytesWritten: 64 * 8192 });
    expect(job.latency.max).toBeGreaterThan(0);
    expect((value.rd as { errors: number; reads: number }).reads).toBe(16);
    const stats = value.stats as { maxInFlight: number };
    if (iodepth === 32) expect(stats.maxInFlight).toBeGreaterThan(1);
    else expect(stats.maxInFlight).toBe(1);
  });

  it('backpressure: more outstanding I/O than ring slots waits for a free slot and completes', async () => {
    const { value, result } = await hostValue(
      async (ctl) => {
        await connect(ctl);
        const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
        return ctl.call(GUEST, 'job', h, {
          rw: 'randwrite',
          bs: 4096,
          iodepth: 64,
          count: 128,
          pattern: 'seq',
          verify: true,
        });
      },
      { backend: { latencyMs: 5 }, blkfront: { featurePersistent: false } },
    );
    expect(value).toMatchObject({ ios: 128, errors: 0, verifyErrors: 0 });
    expect(result.trace.some((e) => e.kind === 'request-start' && e.fields?.id === 31)).toBe(true);
  });

  it('flush and discard reach the backend; EOPNOTSUPP on flush switches the feature off', async () => {
    const { value, result } = await hostValue(
      async (ctl) => {
        await connect(ctl);
        const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
        await ctl.call(GUEST, 'write', h, 0, 8192, 'ones');
        const d = await ctl.call(GUEST, 'discard', h, 0, 4096);
        const f1 = await ctl.call(GUEST, 'flush', h);
        const before = await ctl.call(GUEST, 'state');
        const f2 = await ctl.call(GUEST, 'flush', h);
        return {
          d,
          f1,
          f2,
          before,
          after: await ctl.call(GUEST, 'state'),
          image: await ctl.call(0, 'diskBytes', 0, 8192),
        };
      },
      { backend: { discard: true, flushNotSupported: true } },
    );
    expect(value.d).toMatchObject({ error: undefined });
    expect(value.f1).toMatchObject({ error: undefined }); // not supported is not an error for the caller
    expect(value.before).toMatchObject({ flush: false });
    expect(value.f2).toMatchObject({ error: undefined });
    const img = value.image as Uint8Array;
    expect(img.subarray(0, 4096).every((b) => b === 0)).toBe(true);
    expect(img.subarray(4096).every((b) => b === 0xff)).toBe(true);
    expect((result.dmesg[GUEST] ?? []).some((l) => l.includes('blkfront: xvda: flush op failed'))).toBe(true);
  });

  it('every blkfront trace event fits the trace vocabulary (request-start/end, ring, xenbus-state)', async () => {
    const { result } = await hostValue(async (ctl) => {
      await connect(ctl);
      const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
      await ctl.call(GUEST, 'job', h, {
        rw: 'randwrite',
        bs: 65536,
        iodepth: 4,
        count: 8,
        pattern: 'seq',
        verify: true,
      });
    });
    const mine = result.trace.filter((e) => e.comp === 'blkfront');
    const kinds = new Set(mine.map((e) => e.kind));
    for (const k of ['request-start', 'request-end', 'ring', 'xenbus-state']) expect(kinds.has(k)).toBe(true);
    expect(mine.map(checkEvent).filter((p) => p !== undefined)).toEqual([]);
    const ring = mine.filter((e) => e.kind === 'ring').at(-1)!;
    expect(ring.fields).toMatchObject({ ring: 'xvda', nr_ents: 32, inflight: 0 });
  });

  it('requests queued together are published in one push (flush_requests once per dispatch pass)', async () => {
    for (const n of [1, 5, 12]) {
      const { value, result } = await hostValue(async (ctl) => {
        await connect(ctl);
        const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
        return ctl.call(GUEST, 'readMany', h, n);
      });
      expect(value).toEqual(new Array(n).fill(0));
      // The front ring's snapshots after each push: req_prod moved by all n at once.
      const pushes = result.trace
        .filter((e) => e.dom === GUEST && e.comp === 'blkfront' && e.kind === 'ring')
        .map((e) => e.fields?.req_prod as number);
      const starts = result.trace.filter((e) => e.dom === GUEST && e.kind === 'request-start');
      expect(starts).toHaveLength(n);
      expect(pushes.length).toBeGreaterThan(0);
      expect(pushes[0]).toBe(n);
    }
  });

  it('grant shortage: requests wait in busdma (deferred) and complete once refs come back', async () => {
    const { value, result } = await hostValue(
      async (ctl) => {
        await connect(ctl);
        const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
        // 32 × 64 KiB in flight needs 32 × (16 data + 1 indirect) refs > the 504 of one grant frame.
        return ctl.call(GUEST, 'job', h, {
          rw: 'randwrite',
          bs: 65536,
          iodepth: 32,
          count: 96,
          pattern: 'random:4',
          verify: true,
        });
      },
      { guestMaxGrantFrames: 1, blkfront: { featurePersistent: false }, backend: { latencyMs: 2 } },
    );
    expect(value).toMatchObject({ ios: 96, errors: 0, verifyErrors: 0 });
    const deferred = result.trace.filter(
      (e) => e.comp === 'busdma' && e.kind === 'map-state' && e.fields?.to === 'deferred',
    );
    expect(deferred.length).toBeGreaterThan(0);
  });
});

describe('blkfront: bios as vec lists', () => {
  // Vecs that are not back to back in memory (each in a page of its own, or on the JS heap); lengths
  // chosen so the 11-segment split falls inside a vec (12.6 vecs of 3.5 KiB per 44 KiB request).
  const writeVecs = Array(13).fill(3584) as number[];
  const readVecs = [512, 4096, 1024, 4096, 4096, 2048, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 2048];
  const total = writeVecs.reduce((a, b) => a + b, 0);
  it.each(
    variants.flatMap((v) => [
      { ...v, where: 'guest' as const },
      { ...v, where: 'heap' as const },
    ]),
  )('scattered vecs are written and read back in order ($name, $where memory)', async ({ opts, where }) => {
    expect(readVecs.reduce((a, b) => a + b, 0)).toBe(total);
    const { value } = await hostValue(async (ctl) => {
      await connect(ctl);
      const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
      const w = await ctl.call(GUEST, 'vecIo', h, 'write', 8192, writeVecs, where, 'random:4');
      const r = await ctl.call(GUEST, 'vecIo', h, 'read', 8192, readVecs, where);
      const image = (await ctl.call(0, 'diskBytes', 0, 8192 + total + 512)) as Uint8Array;
      await ctl.call(GUEST, 'close', h);
      return { w, r, image };
    }, opts);
    const w = value.w as { status: number };
    const r = value.r as { status: number; data: Uint8Array };
    const expected = patternBytes({ kind: 'random', seed: 4 }, 8192, total);
    expect(w.status).toBe(0);
    expect(r.status).toBe(0);
    expect(Buffer.from(value.image.subarray(8192, 8192 + total)).equals(Buffer.from(expected))).toBe(true);
    expect(value.image.subarray(8192 + total).every((b) => b === 0)).toBe(true);
    expect(Buffer.from(r.data).equals(Buffer.from(expected))).toBe(true);
  });
});
