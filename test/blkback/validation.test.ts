import { describe, expect, it } from 'vitest';
import type { ReqSpec } from './fixtures/frontend.js';
import { hostValue } from './harness.js';

const full = { first: 0, last: 7 };

// request -> BLKIF status and the dmesg line blkback logs (Linux wording, grants-busdma-hostile-inputs B3).
const CASES: Array<{ name: string; req: ReqSpec; status: number; log?: string }> = [
  { name: 'valid read', req: { op: 0, sector: 8, segs: [full] }, status: 0 },
  {
    name: 'unknown operation 4 (RESERVED_1)',
    req: { op: 4, rawOp: 4 },
    status: -2,
    log: 'unknown operation 4',
  },
  { name: 'unknown operation 200', req: { op: 200, rawOp: 200 }, status: -2, log: 'unknown operation 200' },
  {
    name: 'read with 0 segments',
    req: { op: 0, segs: [] },
    status: -1,
    log: 'Bad number of segments in request (0)',
  },
  {
    name: 'write with nr_segments 12',
    req: { op: 1, segs: Array.from({ length: 11 }, () => full), nrSegments: 12 },
    status: -1,
    log: 'Bad number of segments in request (12)',
  },
  { name: 'last_sect 8', req: { op: 0, segs: [{ first: 0, last: 8 }] }, status: -1, log: 'last_sect 8' },
  {
    name: 'first_sect > last_sect',
    req: { op: 0, segs: [{ first: 4, last: 2 }] },
    status: -1,
    log: 'first_sect 4 last_sect 2',
  },
  {
    name: 'beyond the disk end',
    req: { op: 1, sector: 2047, segs: [{ first: 0, last: 1 }] },
    status: -1,
    log: 'beyond the disk end 2048',
  },
  {
    name: 'sector number wraps 2^64',
    req: { op: 0, sector: '18446744073709551615', segs: [full], id: '77' },
    status: -1,
    log: 'wraps past 2^64',
  },
  {
    name: 'indirect with indirect_op WRITE_BARRIER',
    req: { op: 2, indirect: true, segs: [full] },
    status: -1,
    log: 'Invalid indirect operation (2)',
  },
  {
    name: 'indirect with 257 segments',
    req: { op: 0, indirect: true, segs: [full], nrSegments: 257 },
    status: -1,
    log: 'Bad number of segments in request (257)',
  },
  {
    name: 'indirect segment last_sect 9',
    req: { op: 0, indirect: true, segs: [full, { first: 0, last: 9 }] },
    status: -1,
    log: 'segment 1: first_sect 0 last_sect 9',
  },
  {
    name: 'valid indirect read of 3 segments',
    req: { op: 0, indirect: true, sector: 24, segs: [full, full, full] },
    status: 0,
  },
  {
    name: 'ungranted data gref',
    req: { op: 0, segs: [{ gref: 4000, first: 0, last: 7 }] },
    status: -1,
    log: 'invalid buffer -- could not remap it',
  },
  { name: 'pure flush', req: { op: 3, segs: [] }, status: 0 },
  { name: 'write barrier with data', req: { op: 2, sector: 40, segs: [full], fill: 1 }, status: 0 },
  {
    name: 'discard on a disk without discard',
    req: { op: 5, sector: 0, nrSectors: '8' },
    status: -2,
    log: 'discard op failed, not supported',
  },
  {
    name: 'discard beyond the end',
    req: { op: 5, sector: 2040, nrSectors: '16' },
    status: -1,
    log: 'access denied: DISCARD [2040->2056]',
  },
];

describe('blkback request validation (one host, cases in order)', () => {
  it('answers every bad request with Linux status and logs why', async () => {
    const r = await hostValue(async (ctl) => {
      await ctl.call(0, 'start');
      await ctl.call(0, 'addVbd', 1, 51712);
      await ctl.call(0, 'hotplug', 1, 51712, 0);
      await ctl.call(1, 'connect', {});
      const out: unknown[] = [];
      for (const c of CASES) {
        out.push(await ctl.call(1, 'io', [c.req]));
        // Past the 5 s printk_ratelimit window, so every case's line is printed.
        await ctl.call(1, 'settle', 5000);
      }
      return { out, inUse: await ctl.call(1, 'grantsInUse') };
    });
    const out = r.value!.out as Array<{ ok: boolean; responses: Array<{ op: number; status: number }> }>;
    const dmesg = r.dmesg[0]!.join('\n');
    CASES.forEach((c, i) => {
      expect({ name: c.name, ok: out[i]!.ok, status: out[i]!.responses[0]?.status }).toEqual({
        name: c.name,
        ok: true,
        status: c.status,
      });
      if (c.log) expect(dmesg, c.name).toContain(c.log);
    });
    // Indirect answers carry the inner operation (what blkfront checks).
    expect(out[12]!.responses[0]!.op).toBe(0);
    expect(r.value!.inUse).toBe(0);
  });

  it('a read-only vbd refuses writes, flushes and discards', async () => {
    const r = await hostValue(async (ctl) => {
      await ctl.call(0, 'start');
      await ctl.call(0, 'addVbd', 1, 51712, { mode: 'r' });
      await ctl.call(0, 'hotplug', 1, 51712, 0);
      await ctl.call(1, 'connect', {});
      const info = await ctl.call(0, 'read', '/local/domain/0/backend/vbd/1/51712/info');
      const res = await ctl.call(1, 'io', [
        { op: 1, segs: [full] },
        { op: 3, segs: [] },
        { op: 0, segs: [full] },
      ]);
      return { info, res };
    });
    expect(r.value!.info).toBe('4');
    const res = r.value!.res as { responses: Array<{ status: number }> };
    expect(res.responses.map((x) => x.status)).toEqual([-1, -1, 0]);
    expect(r.dmesg[0]!.join('\n')).toContain('access denied: WRITE on a read-only vbd');
  });

  it('rate-limits repeated lines (10 per 5 s) and says how many it suppressed', async () => {
    const r = await hostValue(async (ctl) => {
      await ctl.call(0, 'start');
      await ctl.call(0, 'addVbd', 1, 51712);
      await ctl.call(0, 'hotplug', 1, 51712, 0);
      await ctl.call(1, 'connect', {});
      await ctl.call(
        1,
        'io',
        Array.from({ length: 15 }, () => ({ op: 0, segs: [] })),
      );
      await ctl.call(1, 'settle', 6000);
      await ctl.call(1, 'io', [{ op: 0, segs: [] }]);
      return null;
    });
    const lines = r.dmesg[0]!.filter((l) => l.includes('Bad number of segments'));
    expect(lines).toHaveLength(11);
    expect(r.dmesg[0]!.some((l) => l.includes('5 callbacks suppressed'))).toBe(true);
  });
});
