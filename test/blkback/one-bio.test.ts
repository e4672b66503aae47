import { describe, expect, it } from 'vitest';
import type { ReqSpec } from './fixtures/frontend.js';
import { hostValue } from './harness.js';

const full = { first: 0, last: 7 };
const page = 4096;

type SeenBio = { op: string; sector: number; vecs: number[] };

// request -> the bios the disk sees (dispatch_rw_block_io: bio_add_page per segment, one bio per request,
// a REQ_PREFLUSH flush ahead of the data of a flush or barrier).
const CASES: Array<{ name: string; req: ReqSpec; bios: SeenBio[] }> = [
  {
    name: 'read of 1 page',
    req: { op: 0, sector: 8, segs: [full] },
    bios: [{ op: 'read', sector: 8, vecs: [page] }],
  },
  {
    name: 'write of 11 pages',
    req: { op: 1, sector: 64, segs: Array.from({ length: 11 }, () => full), fill: 7 },
    bios: [{ op: 'write', sector: 64, vecs: Array(11).fill(page) }],
  },
  {
    name: 'read of partial segments keeps first_sect/last_sect',
    req: {
      op: 0,
      sector: 100,
      segs: [{ first: 2, last: 5 }, full, { first: 0, last: 3 }, { first: 7, last: 7 }],
    },
    bios: [{ op: 'read', sector: 100, vecs: [2048, page, 2048, 512] }],
  },
  {
    name: 'write of partial segments',
    req: {
      op: 1,
      sector: 300,
      segs: [
        { first: 6, last: 7 },
        { first: 1, last: 1 },
      ],
      fill: 9,
    },
    bios: [{ op: 'write', sector: 300, vecs: [1024, 512] }],
  },
  {
    name: 'indirect read of 20 segments',
    req: { op: 0, indirect: true, sector: 400, segs: Array.from({ length: 20 }, () => full) },
    bios: [{ op: 'read', sector: 400, vecs: Array(20).fill(page) }],
  },
  { name: 'pure flush', req: { op: 3, segs: [] }, bios: [{ op: 'flush', sector: 0, vecs: [] }] },
  {
    name: 'write barrier with 2 segments',
    req: { op: 2, sector: 40, segs: [full, { first: 0, last: 1 }], fill: 1 },
    bios: [
      { op: 'flush', sector: 0, vecs: [] },
      { op: 'write', sector: 40, vecs: [page, 1024] },
    ],
  },
];

async function connected(ctl: Parameters<Parameters<typeof hostValue>[0]>[0]): Promise<void> {
  await ctl.call(0, 'start');
  await ctl.call(0, 'addVbd', 1, 51712);
  await ctl.call(0, 'hotplug', 1, 51712, 0);
  await ctl.call(1, 'connect', {});
  await ctl.call(0, 'recordBios', 0);
}

describe('blkback: one bio per request, a vec per segment', () => {
  it('each request reaches the disk as one bio whose vecs are its segments', async () => {
    const r = await hostValue(async (ctl) => {
      await connected(ctl);
      const out: Array<{ status: number | undefined; bios: SeenBio[] }> = [];
      for (const c of CASES) {
        const res = (await ctl.call(1, 'io', [c.req])) as { responses: Array<{ status: number }> };
        out.push({ status: res.responses[0]?.status, bios: (await ctl.call(0, 'bios')) as SeenBio[] });
      }
      return out;
    });
    CASES.forEach((c, i) => {
      expect({ name: c.name, ...r.value![i] }).toEqual({ name: c.name, status: 0, bios: c.bios });
    });
  });

  it('partial segments read and write exactly their sectors, in segment order', async () => {
    const r = await hostValue(async (ctl) => {
      await connected(ctl);
      // Every sector of the first 64 KiB is distinct: byte k of sector s is (s * 7 + k) & 0xff.
      const image = new Uint8Array(64 * 1024);
      for (let i = 0; i < image.length; i++) image[i] = ((i >> 9) * 7 + (i & 511)) & 0xff;
      await ctl.call(0, 'writeDisk', 0, 0, Buffer.from(image).toString('base64'));
      const segs = [{ first: 3, last: 4 }, full, { first: 0, last: 0 }];
      const read = (await ctl.call(1, 'io', [{ op: 0, sector: 20, id: '5', segs }])) as {
        responses: Array<{ status: number }>;
        data: Record<string, string[]>;
      };
      const write = (await ctl.call(1, 'io', [
        {
          op: 1,
          sector: 50,
          segs: [
            { first: 5, last: 7 },
            { first: 2, last: 3 },
          ],
          fill: 0xee,
        },
      ])) as { responses: Array<{ status: number }> };
      const after = (await ctl.call(0, 'diskBytes', 0, 49 * 512, 7 * 512)) as string;
      return { image, read, write, after };
    });
    const { image, read, write, after } = r.value!;
    expect(read.responses[0]!.status).toBe(0);
    // Segment i's bytes are the disk's sectors in order: 20-21, 22-29, 30.
    const got = read.data['5']!.map((b) => Buffer.from(b, 'base64'));
    expect(got.map((b) => b.length)).toEqual([1024, 4096, 512]);
    expect(Buffer.concat(got).equals(Buffer.from(image.subarray(20 * 512, 31 * 512)))).toBe(true);
    expect(write.responses[0]!.status).toBe(0);
    // Sectors 50-54 hold the write; 49 and 55 are untouched.
    const disk = Buffer.from(after, 'base64');
    expect(disk.subarray(0, 512).equals(Buffer.from(image.subarray(49 * 512, 50 * 512)))).toBe(true);
    expect(disk.subarray(512, 6 * 512).every((b) => b === 0xee)).toBe(true);
    expect(disk.subarray(6 * 512).equals(Buffer.from(image.subarray(55 * 512, 56 * 512)))).toBe(true);
  });
});
