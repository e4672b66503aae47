import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BLKIF_ABI_X86_32,
  BLKIF_ABI_X86_64,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  type BlkifRequest,
  type BlkifSegment,
  decodeRequest,
} from '../../drivers/blkif.js';
import { type BlkifDisk, type BlkifVerdict, validateRequest } from '../../drivers/blkif-validate.js';

const DISK: BlkifDisk = {
  sectors: 2048n,
  readOnly: false,
  logicalBlockSize: 512,
  maxIndirectSegments: 256,
  flushCache: true,
  discard: true,
  discardSecure: true,
};

const seg = (firstSect: number, lastSect: number, gref = 8): BlkifSegment => ({ gref, firstSect, lastSect });

function rw(
  operation: number,
  sectorNumber: bigint,
  segments: BlkifSegment[],
  nrSegments = segments.length,
): BlkifRequest {
  return { kind: 'rw', operation, nrSegments, handle: 0, id: 1n, sectorNumber, segments };
}
function indirect(indirectOp: number, nrSegments: number, sectorNumber = 0n): BlkifRequest {
  return {
    kind: 'indirect',
    operation: BLKIF_OP_INDIRECT,
    indirectOp,
    nrSegments,
    id: 2n,
    sectorNumber,
    handle: 0,
    indirectGrefs: [5],
  };
}
function discard(sectorNumber: bigint, nrSectors: bigint, flag = 0) {
  return {
    kind: 'discard',
    operation: BLKIF_OP_DISCARD,
    flag,
    handle: 0,
    id: 3n,
    sectorNumber,
    nrSectors,
  } as const;
}

const OK = 'ok';
const ERR = BLKIF_RSP_ERROR;
const NOTSUPP = BLKIF_RSP_EOPNOTSUPP;

// [label, request, disk overrides, indirect segments, expected: 'ok' | status, reason pattern or nr_sectors]
const CASES: [
  string,
  BlkifRequest,
  Partial<BlkifDisk>,
  BlkifSegment[] | undefined,
  typeof OK | number,
  RegExp | bigint,
][] = [
  ['read, two full pages', rw(BLKIF_OP_READ, 0n, [seg(0, 7), seg(0, 7)]), {}, undefined, OK, 16n],
  ['write, partial page', rw(BLKIF_OP_WRITE, 10n, [seg(2, 4)]), {}, undefined, OK, 3n],
  ['read, 11 segments', rw(BLKIF_OP_READ, 0n, Array(11).fill(seg(0, 0))), {}, undefined, OK, 11n],
  ['read ending exactly at the disk end', rw(BLKIF_OP_READ, 2040n, [seg(0, 7)]), {}, undefined, OK, 8n],
  [
    'read one past the end',
    rw(BLKIF_OP_READ, 2041n, [seg(0, 7)]),
    {},
    undefined,
    ERR,
    /beyond the disk end 2048/,
  ],
  [
    'sector_number + n wraps 2^64',
    rw(BLKIF_OP_READ, (1n << 64n) - 2n, [seg(0, 7)]),
    { sectors: (1n << 64n) - 1n },
    undefined,
    ERR,
    /wraps past 2\^64/,
  ],
  [
    'read with 0 segments',
    rw(BLKIF_OP_READ, 0n, []),
    {},
    undefined,
    ERR,
    /Bad number of segments in request \(0\)/,
  ],
  [
    'write with 12 segments published',
    rw(BLKIF_OP_WRITE, 0n, Array(11).fill(seg(0, 0)), 12),
    {},
    undefined,
    ERR,
    /Bad number of segments in request \(12\): WRITE needs 1..11/,
  ],
  [
    'last_sect 8',
    rw(BLKIF_OP_READ, 0n, [seg(0, 8)]),
    {},
    undefined,
    ERR,
    /segment 0: first_sect 0 last_sect 8/,
  ],
  [
    'last_sect < first_sect in segment 1',
    rw(BLKIF_OP_READ, 0n, [seg(0, 7), seg(5, 4)]),
    {},
    undefined,
    ERR,
    /segment 1: first_sect 5 last_sect 4/,
  ],
  [
    'write to a read-only vbd',
    rw(BLKIF_OP_WRITE, 0n, [seg(0, 7)]),
    { readOnly: true },
    undefined,
    ERR,
    /access denied: WRITE on a read-only vbd/,
  ],
  ['read from a read-only vbd', rw(BLKIF_OP_READ, 0n, [seg(0, 7)]), { readOnly: true }, undefined, OK, 8n],
  [
    'misaligned start on a 4K disk',
    rw(BLKIF_OP_READ, 4n, [seg(0, 7)]),
    { logicalBlockSize: 4096 },
    undefined,
    ERR,
    /Misaligned I\/O request: sector_number 4/,
  ],
  [
    'misaligned segment length on a 4K disk',
    rw(BLKIF_OP_READ, 8n, [seg(0, 3)]),
    { logicalBlockSize: 4096 },
    undefined,
    ERR,
    /segment 0 of 4 sectors not a multiple of 4096 bytes/,
  ],
  ['aligned on a 4K disk', rw(BLKIF_OP_READ, 8n, [seg(0, 7)]), { logicalBlockSize: 4096 }, undefined, OK, 8n],
  ['pure flush (0 segments)', rw(BLKIF_OP_FLUSH_DISKCACHE, 0n, []), {}, undefined, OK, 0n],
  ['pure barrier (0 segments)', rw(BLKIF_OP_WRITE_BARRIER, 0n, []), {}, undefined, OK, 0n],
  [
    'flush the disk cannot do',
    rw(BLKIF_OP_FLUSH_DISKCACHE, 0n, []),
    { flushCache: false },
    undefined,
    NOTSUPP,
    /flush diskcache op failed, not supported/,
  ],
  [
    'barrier follows flush support by default',
    rw(BLKIF_OP_WRITE_BARRIER, 0n, []),
    { flushCache: false },
    undefined,
    NOTSUPP,
    /write barrier op failed/,
  ],
  [
    'flush on a read-only vbd',
    rw(BLKIF_OP_FLUSH_DISKCACHE, 0n, []),
    { readOnly: true },
    undefined,
    ERR,
    /read-only/,
  ],
  [
    'unknown op 4 (RESERVED_1)',
    { kind: 'other', operation: 4, id: 9n },
    {},
    undefined,
    NOTSUPP,
    /unknown operation 4/,
  ],
  [
    'unknown op 200',
    { kind: 'other', operation: 200, id: 9n },
    {},
    undefined,
    NOTSUPP,
    /unknown operation 200/,
  ],
  ['indirect read, 256 segments', indirect(BLKIF_OP_READ, 256), {}, undefined, OK, 0n],
  ['indirect read with its segments', indirect(BLKIF_OP_READ, 2), {}, [seg(0, 7), seg(0, 1)], OK, 10n],
  [
    'indirect with 257 segments',
    indirect(BLKIF_OP_READ, 257),
    {},
    undefined,
    ERR,
    /Bad number of segments in request \(257\): indirect needs 1..256/,
  ],
  ['indirect with 0 segments', indirect(BLKIF_OP_WRITE, 0), {}, undefined, ERR, /Bad number of segments/],
  [
    'indirect_op FLUSH',
    indirect(BLKIF_OP_FLUSH_DISKCACHE, 1),
    {},
    undefined,
    ERR,
    /Invalid indirect operation \(3\)/,
  ],
  [
    'indirect segment with last_sect 9',
    indirect(BLKIF_OP_READ, 2),
    {},
    [seg(0, 7), seg(0, 9)],
    ERR,
    /segment 1: first_sect 0 last_sect 9/,
  ],
  [
    'indirect segment count mismatch',
    indirect(BLKIF_OP_READ, 3),
    {},
    [seg(0, 7)],
    ERR,
    /nr_segments 3 but 1 segments were read/,
  ],
  [
    'indirect past the disk end',
    indirect(BLKIF_OP_WRITE, 1, 2047n),
    {},
    [seg(0, 1)],
    ERR,
    /beyond the disk end/,
  ],
  [
    'indirect where the backend never advertised it',
    indirect(BLKIF_OP_READ, 1),
    { maxIndirectSegments: 0 },
    undefined,
    NOTSUPP,
    /indirect requests not supported/,
  ],
  ['discard in range', discard(0n, 2048n), {}, undefined, OK, 2048n],
  ['discard of 0 sectors anywhere', discard(1n << 62n, 0n), {}, undefined, OK, 0n],
  ['discard past the end', discard(2000n, 49n), {}, undefined, ERR, /access denied: DISCARD .* beyond/],
  ['discard on a read-only vbd', discard(0n, 1n), { readOnly: true }, undefined, ERR, /read-only/],
  [
    'discard the disk cannot do',
    discard(0n, 1n),
    { discard: false },
    undefined,
    NOTSUPP,
    /discard not supported/,
  ],
  ['discard range checked before support', discard(0n, 5000n), { discard: false }, undefined, ERR, /beyond/],
];

describe('validateRequest (Linux blkback checks, in its order)', () => {
  it.each(CASES)('%s', (_label, req, overrides, indirectSegs, want, detail) => {
    const v = validateRequest(req, { ...DISK, ...overrides }, indirectSegs);
    if (want === OK) {
      expect(v).toMatchObject({ ok: true, nrSectors: detail });
    } else {
      expect(v.ok).toBe(false);
      if (v.ok) return;
      expect(v.status).toBe(want);
      expect(v.reason).toMatch(detail as RegExp);
    }
  });

  it.each([
    [1, true, true],
    [1, false, false],
    [0, true, false],
  ])('secure discard: flag %d, discard-secure %s -> secure %s', (flag, backendSecure, want) => {
    const v = validateRequest(discard(0n, 8n, flag), { ...DISK, discardSecure: backendSecure });
    expect(v).toEqual({ ok: true, nrSectors: 8n, secure: want });
  });

  it('any slot bytes yield a verdict with a BLKIF status, never an exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 112, maxLength: 112 }), (bytes) => {
        bytes[0] %= 8; // mostly known operations, so the deeper checks run
        for (const abi of [BLKIF_ABI_X86_64, BLKIF_ABI_X86_32]) {
          const v: BlkifVerdict = validateRequest(decodeRequest(new DataView(bytes.buffer), 0, abi), DISK);
          if (!v.ok) expect([BLKIF_RSP_ERROR, BLKIF_RSP_EOPNOTSUPP]).toContain(v.status);
          else expect(v.nrSectors).toBeLessThanOrEqual(2048n);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
