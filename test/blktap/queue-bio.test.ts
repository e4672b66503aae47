import { describe, expect, it } from 'vitest';
import { BLKTAP_SEGMENT_MAX } from '../../drivers/blktap/abi.js';
import { endPart, queueBio } from '../../drivers/blktap/request.js';
import { type Bio, type BioOp, pageVecs } from '../../emulator/kernel/block-device.js';

function bio(op: BioOp, sector: number, vecs: Uint8Array[], ended: number[] = []): Bio {
  return { op, sector, vecs, end: (e) => ended.push(e) };
}

const shape = (b: Bio) =>
  queueBio(b).parts.map((p) => ({ sector: p.sector, segs: p.segments.map((s) => s.length) }));

describe('blktap queueBio: a bio becomes ring requests of at most 11 segments, one per vec', () => {
  it('a 1 MiB bio of 256 page vecs gives ceil(256/11) = 24 requests', () => {
    const data = new Uint8Array(1 << 20);
    const q = queueBio(bio('write', 2048, pageVecs(data)));
    expect(q.parts.length).toBe(Math.ceil(256 / BLKTAP_SEGMENT_MAX));
    expect(q.parts.length).toBe(24);
    expect(q.outstanding).toBe(24);
    expect(q.parts.slice(0, 23).every((p) => p.segments.length === 11)).toBe(true);
    expect(q.parts[23]!.segments.length).toBe(256 - 23 * 11);
    // Each part starts where the previous ended; segments are the bio's own memory, in order.
    q.parts.forEach((p, i) => {
      expect(p.sector).toBe(2048 + i * 11 * 8);
      p.segments.forEach((s, k) => {
        expect(s.buffer).toBe(data.buffer);
        expect(s.byteOffset).toBe((i * 11 + k) * 4096);
      });
    });
  });

  const CASES: Array<{ name: string; vecs: number[]; parts: Array<{ sector: number; segs: number[] }> }> = [
    { name: 'one sector', vecs: [512], parts: [{ sector: 10, segs: [512] }] },
    {
      name: 'uneven vecs: sectors follow their lengths',
      vecs: [1024, 4096, 512],
      parts: [{ sector: 10, segs: [1024, 4096, 512] }],
    },
    {
      name: '11 vecs fill one request exactly',
      vecs: Array(11).fill(512),
      parts: [{ sector: 10, segs: Array(11).fill(512) }],
    },
    {
      name: '12 small vecs need two requests (segments are vecs, not bytes)',
      vecs: Array(12).fill(512),
      parts: [
        { sector: 10, segs: Array(11).fill(512) },
        { sector: 21, segs: [512] },
      ],
    },
  ];
  for (const c of CASES) {
    it(c.name, () => {
      expect(
        shape(
          bio(
            'read',
            10,
            c.vecs.map((n) => new Uint8Array(n)),
          ),
        ),
      ).toEqual(c.parts);
    });
  }

  it('flush and discard carry no parts; the bio ends once, after its last part, with the first error', () => {
    expect(queueBio(bio('flush', 0, [])).parts).toEqual([]);
    const ended: number[] = [];
    const q = queueBio(bio('write', 0, pageVecs(new Uint8Array(12 * 4096 + 1024)), ended));
    expect(q.parts.length).toBe(2);
    expect(endPart(q.parts[1]!, -5)).toBe(false);
    expect(ended).toEqual([]);
    expect(endPart(q.parts[0]!, 0)).toBe(true);
    expect(ended).toEqual([-5]);
  });
});
