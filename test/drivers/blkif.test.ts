import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BLKIF_ABI_X86_32,
  BLKIF_ABI_X86_64,
  BLKIF_DISCARD_SECURE,
  BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_RESERVED_1,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  BLKIF_RSP_OKAY,
  BLKIF_SEGMENTS_PER_INDIRECT_PAGE,
  type BlkifAbi,
  type BlkifRequest,
  type BlkifSegment,
  blkifAbiForProtocol,
  blkifRingSize,
  decodeIndirectSegments,
  decodeRequest,
  decodeResponse,
  encodeIndirectSegments,
  encodeRequest,
  encodeResponse,
  indirectPagesFor,
  VDISK_CDROM,
  VDISK_READONLY,
  VDISK_REMOVABLE,
  XEN_IO_PROTO_ABI_X86_32,
  XEN_IO_PROTO_ABI_X86_64,
} from '../../drivers/blkif.js';

const ABIS = [BLKIF_ABI_X86_64, BLKIF_ABI_X86_32];

function slot(bytes = 128, fill = 0xcc): { view: DataView; mem: Uint8Array } {
  const mem = new Uint8Array(bytes).fill(fill);
  return { view: new DataView(mem.buffer), mem };
}

describe('blkif constants (blkif.h, protocols.h)', () => {
  it.each([
    ['BLKIF_OP_READ', BLKIF_OP_READ, 0],
    ['BLKIF_OP_WRITE', BLKIF_OP_WRITE, 1],
    ['BLKIF_OP_WRITE_BARRIER', BLKIF_OP_WRITE_BARRIER, 2],
    ['BLKIF_OP_FLUSH_DISKCACHE', BLKIF_OP_FLUSH_DISKCACHE, 3],
    ['BLKIF_OP_RESERVED_1', BLKIF_OP_RESERVED_1, 4],
    ['BLKIF_OP_DISCARD', BLKIF_OP_DISCARD, 5],
    ['BLKIF_OP_INDIRECT', BLKIF_OP_INDIRECT, 6],
    ['BLKIF_RSP_OKAY', BLKIF_RSP_OKAY, 0],
    ['BLKIF_RSP_ERROR', BLKIF_RSP_ERROR, -1],
    ['BLKIF_RSP_EOPNOTSUPP', BLKIF_RSP_EOPNOTSUPP, -2],
    ['BLKIF_MAX_SEGMENTS_PER_REQUEST', BLKIF_MAX_SEGMENTS_PER_REQUEST, 11],
    ['BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST', BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST, 8],
    ['segments per indirect page', BLKIF_SEGMENTS_PER_INDIRECT_PAGE, 512],
    ['BLKIF_DISCARD_SECURE', BLKIF_DISCARD_SECURE, 1],
    ['VDISK_CDROM', VDISK_CDROM, 1],
    ['VDISK_REMOVABLE', VDISK_REMOVABLE, 2],
    ['VDISK_READONLY', VDISK_READONLY, 4],
  ])('%s = %d', (_name, value, want) => {
    expect(value).toBe(want);
  });

  it('protocol strings and lookup', () => {
    expect(XEN_IO_PROTO_ABI_X86_32).toBe('x86_32-abi');
    expect(XEN_IO_PROTO_ABI_X86_64).toBe('x86_64-abi');
    expect(blkifAbiForProtocol('x86_64-abi')).toBe(BLKIF_ABI_X86_64);
    expect(blkifAbiForProtocol('x86_32-abi')).toBe(BLKIF_ABI_X86_32);
    expect(() => blkifAbiForProtocol('arm-abi')).toThrow(/unsupported protocol "arm-abi"/);
  });

  it.each([
    ['x86_64', 112, 16, 32, 64],
    ['x86_32', 108, 12, 28, 64],
  ])('%s sizes: request %d, response %d, discard %d, indirect %d', (name, req, rsp, disc, ind) => {
    const abi = name === 'x86_64' ? BLKIF_ABI_X86_64 : BLKIF_ABI_X86_32;
    expect([abi.requestSize, abi.responseSize, abi.discardSize, abi.indirectSize, abi.entrySize]).toEqual([
      req,
      rsp,
      disc,
      ind,
      req,
    ]);
  });

  it.each([
    [0, 32],
    [1, 64],
    [2, 128],
    [3, 256],
    [4, 512],
  ])('ring-page-order %d -> %d entries in both ABIs', (order, want) => {
    for (const abi of ABIS) expect(blkifRingSize(abi, order)).toBe(want);
  });

  it('ring-page-order outside 0..4 is refused', () => {
    expect(() => blkifRingSize(BLKIF_ABI_X86_64, 5)).toThrow(
      /ring-page-order must be an integer in 0..4, got 5/,
    );
    expect(() => blkifRingSize(BLKIF_ABI_X86_64, -1)).toThrow(/got -1/);
  });

  it.each([
    [0, 0],
    [1, 1],
    [512, 1],
    [513, 2],
    [4096, 8],
    [4097, 9],
  ])('indirectPagesFor(%d) = %d', (n, want) => {
    expect(indirectPagesFor(n)).toBe(want);
  });
});

describe('request layouts: each field at its §2.2 offset', () => {
  // Offsets written out here (not taken from the ABI object) so a wrong table in the code fails.
  const OFF = {
    x86_64: { id: 8, sector: 16, seg: 24, nrSectors: 24, indHandle: 24, indGrefs: 28 },
    x86_32: { id: 4, sector: 12, seg: 20, nrSectors: 20, indHandle: 20, indGrefs: 24 },
  };

  for (const abi of ABIS) {
    const o = OFF[abi.name];
    it(`${abi.name} read/write request`, () => {
      const { view, mem } = slot();
      const segments = [
        { gref: 0x01020304, firstSect: 1, lastSect: 7 },
        { gref: 0xa0b0c0d0, firstSect: 0, lastSect: 3 },
      ];
      encodeRequest(view, 0, abi, {
        kind: 'rw',
        operation: BLKIF_OP_WRITE,
        nrSegments: 2,
        handle: 0x1234,
        id: 0x1122334455667788n,
        sectorNumber: 0x0102030405060708n,
        segments,
      });
      expect(mem[0]).toBe(1);
      expect(mem[1]).toBe(2);
      expect(view.getUint16(2, true)).toBe(0x1234);
      expect(view.getBigUint64(o.id, true)).toBe(0x1122334455667788n);
      expect(view.getBigUint64(o.sector, true)).toBe(0x0102030405060708n);
      expect(view.getUint32(o.seg, true)).toBe(0x01020304);
      expect([mem[o.seg + 4], mem[o.seg + 5], mem[o.seg + 6], mem[o.seg + 7]]).toEqual([1, 7, 0xcc, 0xcc]);
      expect(view.getUint32(o.seg + 8, true)).toBe(0xa0b0c0d0);
      expect(mem[o.seg + 16]).toBe(0xcc); // third segment untouched
      if (abi.name === 'x86_64') expect([...mem.subarray(4, 8)]).toEqual([0xcc, 0xcc, 0xcc, 0xcc]); // hole
    });

    it(`${abi.name} discard request`, () => {
      const { view, mem } = slot();
      encodeRequest(view, 0, abi, {
        kind: 'discard',
        operation: BLKIF_OP_DISCARD,
        flag: BLKIF_DISCARD_SECURE,
        handle: 0xbeef,
        id: 7n,
        sectorNumber: 100n,
        nrSectors: 0xffffffffffffffffn,
      });
      expect([mem[0], mem[1]]).toEqual([5, 1]);
      expect(view.getUint16(2, true)).toBe(0xbeef);
      expect(view.getBigUint64(o.id, true)).toBe(7n);
      expect(view.getBigUint64(o.sector, true)).toBe(100n);
      expect(view.getBigUint64(o.nrSectors, true)).toBe(0xffffffffffffffffn);
      expect(mem[abi.discardSize]).toBe(0xcc);
    });

    it(`${abi.name} indirect request`, () => {
      const { view, mem } = slot();
      encodeRequest(view, 0, abi, {
        kind: 'indirect',
        operation: BLKIF_OP_INDIRECT,
        indirectOp: BLKIF_OP_READ,
        nrSegments: 1025,
        id: 9n,
        sectorNumber: 0x55n,
        handle: 0x0a0b,
        indirectGrefs: [11, 22, 33],
      });
      expect([mem[0], mem[1]]).toEqual([6, 0]);
      expect(view.getUint16(2, true)).toBe(1025);
      expect(view.getBigUint64(o.id, true)).toBe(9n);
      expect(view.getBigUint64(o.sector, true)).toBe(0x55n);
      expect(view.getUint16(o.indHandle, true)).toBe(0x0a0b);
      expect([0, 1, 2, 3].map((i) => view.getUint32(o.indGrefs + 4 * i, true))).toEqual([
        11, 22, 33, 0xcccccccc,
      ]);
    });

    it(`${abi.name} other operation writes only operation and id`, () => {
      const { view, mem } = slot();
      encodeRequest(view, 0, abi, { kind: 'other', operation: BLKIF_OP_RESERVED_1, id: 0xdeadn });
      expect(mem[0]).toBe(4);
      expect(mem[1]).toBe(0xcc);
      expect(view.getBigUint64(o.id, true)).toBe(0xdeadn);
    });
  }

  it('response: id @0, operation @8, status s16 @10, padding untouched, both ABIs', () => {
    const { view, mem } = slot(16);
    encodeResponse(view, 0, 0x8000000000000001n, BLKIF_OP_INDIRECT, BLKIF_RSP_EOPNOTSUPP);
    expect(view.getBigUint64(0, true)).toBe(0x8000000000000001n);
    expect(mem[8]).toBe(6);
    expect(mem[9]).toBe(0xcc);
    expect(view.getInt16(10, true)).toBe(-2);
    expect([...mem.subarray(12)]).toEqual([0xcc, 0xcc, 0xcc, 0xcc]);
    expect(decodeResponse(view, 0)).toEqual({ id: 0x8000000000000001n, operation: 6, status: -2 });
  });
});

describe('decoding a hostile slot', () => {
  it.each(ABIS)(
    'read/write copies at most 11 segments but reports nr_segments as published ($name)',
    (abi) => {
      const { view, mem } = slot(abi.entrySize, 0);
      mem[0] = BLKIF_OP_READ;
      mem[1] = 200;
      const req = decodeRequest(view, 0, abi);
      expect(req.kind).toBe('rw');
      if (req.kind !== 'rw') return;
      expect(req.nrSegments).toBe(200);
      expect(req.segments).toHaveLength(11);
    },
  );

  it.each(ABIS)('indirect copies min(8, ceil(n/512)) grefs ($name)', (abi) => {
    for (const [n, grefs] of [
      [0, 0],
      [1, 1],
      [513, 2],
      [0xffff, 8],
    ]) {
      const { view } = slot(abi.entrySize, 0);
      view.setUint8(0, BLKIF_OP_INDIRECT);
      view.setUint16(2, n, true);
      const req = decodeRequest(view, 0, abi);
      expect(req.kind === 'indirect' && req.indirectGrefs.length).toBe(grefs);
    }
  });

  it.each([
    [4, 'other'],
    [7, 'other'],
    [255, 'other'],
    [2, 'rw'],
    [3, 'rw'],
    [5, 'discard'],
    [6, 'indirect'],
  ])('operation %d decodes as %s, carrying the id', (op, kind) => {
    for (const abi of ABIS) {
      const { view } = slot(abi.entrySize, 0);
      view.setUint8(0, op);
      view.setBigUint64(abi.offId, 0xfeedfacecafebeefn, true);
      const req = decodeRequest(view, 0, abi);
      expect(req.kind).toBe(kind);
      expect(req.id).toBe(0xfeedfacecafebeefn);
    }
  });

  it('never throws on arbitrary slot bytes, in either ABI', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 112, maxLength: 112 }), (bytes) => {
        for (const abi of ABIS) {
          const req = decodeRequest(new DataView(bytes.buffer), 0, abi);
          expect(req.operation).toBe(bytes[0]);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('encode rejects values outside the C field, and writes nothing then', () => {
  const base: BlkifRequest = {
    kind: 'rw',
    operation: 0,
    nrSegments: 1,
    handle: 0,
    id: 0n,
    sectorNumber: 0n,
    segments: [{ gref: 1, firstSect: 0, lastSect: 7 }],
  };
  it.each([
    [{ ...base, operation: 256 }, /operation must be an integer in 0..255, got 256/],
    [{ ...base, nrSegments: -1 }, /nrSegments must be an integer in 0..255, got -1/],
    [{ ...base, handle: 0x10000 }, /handle must be an integer in 0..65535/],
    [{ ...base, id: -1n }, /id must be a bigint in 0..2\^64-1, got -1/],
    [{ ...base, sectorNumber: 1n << 64n }, /sectorNumber must be a bigint/],
    [
      { ...base, segments: [{ gref: 1, firstSect: 0, lastSect: 300 }] },
      /segment.lastSect must be .* got 300/,
    ],
    [
      { ...base, segments: Array.from({ length: 12 }, () => ({ gref: 0, firstSect: 0, lastSect: 0 })) },
      /segments has 12 entries; a direct request holds at most 11/,
    ],
    [
      {
        kind: 'indirect',
        operation: 6,
        indirectOp: 0,
        nrSegments: 0x10000,
        id: 0n,
        sectorNumber: 0n,
        handle: 0,
        indirectGrefs: [],
      },
      /nrSegments must be an integer in 0..65535, got 65536/,
    ],
    [
      {
        kind: 'indirect',
        operation: 6,
        indirectOp: 0,
        nrSegments: 1,
        id: 0n,
        sectorNumber: 0n,
        handle: 0,
        indirectGrefs: new Array(9).fill(1),
      },
      /indirectGrefs has 9 entries; at most 8/,
    ],
  ] as [BlkifRequest, RegExp][])('%#', (req, msg) => {
    const { view, mem } = slot();
    expect(() => encodeRequest(view, 0, BLKIF_ABI_X86_64, req)).toThrow(msg);
    expect(mem.every((b) => b === 0xcc)).toBe(true);
  });

  it('response status must fit s16', () => {
    const { view } = slot(16);
    expect(() => encodeResponse(view, 0, 1n, 0, 0x8000)).toThrow(/status must be an s16 integer, got 32768/);
  });
});

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const segArb: fc.Arbitrary<BlkifSegment> = fc.record({
  gref: fc.nat({ max: 0xffffffff }),
  firstSect: fc.nat({ max: 255 }),
  lastSect: fc.nat({ max: 255 }),
});

const requestArb: fc.Arbitrary<BlkifRequest> = fc.oneof(
  fc
    .record({
      operation: fc.constantFrom(0, 1, 2, 3),
      handle: fc.nat({ max: 0xffff }),
      id: u64,
      sectorNumber: u64,
      segments: fc.array(segArb, { maxLength: 11 }),
    })
    .map((r) => ({ kind: 'rw' as const, nrSegments: r.segments.length, ...r })),
  fc.record({
    kind: fc.constant('discard' as const),
    operation: fc.constant(BLKIF_OP_DISCARD),
    flag: fc.nat({ max: 255 }),
    handle: fc.nat({ max: 0xffff }),
    id: u64,
    sectorNumber: u64,
    nrSectors: u64,
  }),
  fc
    .record({
      indirectOp: fc.nat({ max: 255 }),
      nrSegments: fc.nat({ max: 0xffff }),
      id: u64,
      sectorNumber: u64,
      handle: fc.nat({ max: 0xffff }),
      grefs: fc.array(fc.nat({ max: 0xffffffff }), { minLength: 8, maxLength: 8 }),
    })
    .map(({ grefs, ...r }) => ({
      kind: 'indirect' as const,
      operation: BLKIF_OP_INDIRECT,
      ...r,
      indirectGrefs: grefs.slice(0, Math.min(8, indirectPagesFor(r.nrSegments))),
    })),
  fc.record({
    kind: fc.constant('other' as const),
    operation: fc.oneof(fc.constant(4), fc.integer({ min: 7, max: 255 })),
    id: u64,
  }),
);

describe('codec round trips (fast-check)', () => {
  it.each(ABIS)('decode(encode(req)) = req for random requests ($name)', (abi: BlkifAbi) => {
    fc.assert(
      fc.property(requestArb, fc.nat({ max: 3 }), (req, pos) => {
        const { view } = slot(abi.entrySize * 4, 0);
        const off = pos * abi.entrySize;
        encodeRequest(view, off, abi, req);
        expect(decodeRequest(view, off, abi)).toEqual(req);
      }),
      { numRuns: 400 },
    );
  });

  it('responses round-trip', () => {
    fc.assert(
      fc.property(u64, fc.nat({ max: 255 }), fc.integer({ min: -0x8000, max: 0x7fff }), (id, op, status) => {
        const { view } = slot(16);
        encodeResponse(view, 0, id, op, status);
        expect(decodeResponse(view, 0)).toEqual({ id, operation: op, status });
      }),
    );
  });

  it('indirect segments round-trip across pages, 512 per page', () => {
    fc.assert(
      fc.property(fc.array(segArb, { maxLength: 1600 }), (segs) => {
        const pages = Array.from({ length: 4 }, () => new DataView(new ArrayBuffer(4096)));
        encodeIndirectSegments(pages, segs);
        expect(decodeIndirectSegments(pages, segs.length)).toEqual(segs);
      }),
      { numRuns: 50 },
    );
  });
});

describe('indirect pages', () => {
  it('segment 512 starts page 1 at offset 0; segment 511 ends page 0', () => {
    const pages = [new DataView(new ArrayBuffer(4096)), new DataView(new ArrayBuffer(4096))];
    const segs = Array.from({ length: 513 }, (_, i) => ({ gref: i + 1, firstSect: i & 7, lastSect: 7 }));
    encodeIndirectSegments(pages, segs);
    expect(pages[0].getUint32(511 * 8, true)).toBe(512);
    expect(pages[1].getUint32(0, true)).toBe(513);
    expect(pages[1].getUint8(4)).toBe(512 & 7);
  });

  it('refuses more segments than the pages hold, and decodes at most their capacity', () => {
    const one = [new DataView(new ArrayBuffer(4096))];
    const segs = Array.from({ length: 513 }, () => ({ gref: 0, firstSect: 0, lastSect: 0 }));
    expect(() => encodeIndirectSegments(one, segs)).toThrow(/513 segments need 2 page\(s\), got 1/);
    expect(decodeIndirectSegments(one, 4096)).toHaveLength(512);
  });
});
