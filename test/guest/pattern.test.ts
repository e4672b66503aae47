import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  fillPattern,
  firstMismatch,
  formatPattern,
  type Pattern,
  parsePattern,
  patternBytes,
} from '../../emulator/guest/pattern.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

describe('pattern bytes', () => {
  it.each<[string, number, number, string]>([
    ['zero', 0, 4, '00000000'],
    ['zero', 12345, 3, '000000'],
    ['ones', 7, 4, 'ffffffff'],
    ['seq', 0, 4, '00010203'],
    ['seq', 254, 4, 'feff0001'],
    ['seq', 4096 + 16, 2, '1011'],
    ['seq', 2 ** 40 + 5, 2, '0506'],
    ['pattern:deadbeef', 0, 6, 'deadbeefdead'],
    ['pattern:deadbeef', 2, 4, 'beefdead'],
    ['pattern:0xAB', 9, 3, 'ababab'],
    ['pattern:010203', 3 * 1000 + 1, 4, '02030102'],
    // Golden values: the random stream is part of the file format (images written by one version are
    // verified by another), so it must never change.
    ['random:0', 0, 8, '737d2fe37efe562d'],
    ['random', 0, 8, '737d2fe37efe562d'],
    ['random:1', 0, 8, '269901a80fee054d'],
    ['random:7', 2 ** 34, 8, '53aac4fa080201c7'],
    ['random:0', 3, 3, 'e37efe'],
  ])('%s at %d for %d bytes is %s', (text, offset, length, expected) => {
    const parsed = parsePattern(text);
    if (!parsed.ok) throw new Error(parsed.message);
    expect(hex(patternBytes(parsed.value, offset, length))).toBe(expected);
  });

  it.each<[string, string]>([
    [
      'sequential',
      'unknown pattern "sequential"; use seq, zero, ones, random:<seed> or pattern:<hex> (e.g. pattern:deadbeef)',
    ],
    ['random:x', 'bad random seed "x" in "random:x"; write random:<0..4294967295>, e.g. random:7'],
    [
      'random:4294967296',
      'bad random seed "4294967296" in "random:4294967296"; write random:<0..4294967295>, e.g. random:7',
    ],
    ['random:-1', 'bad random seed "-1" in "random:-1"; write random:<0..4294967295>, e.g. random:7'],
    [
      'pattern:abc',
      'bad byte pattern "pattern:abc"; write pattern: followed by 1 to 256 bytes in hex, e.g. pattern:deadbeef',
    ],
    [
      'pattern:',
      'bad byte pattern "pattern:"; write pattern: followed by 1 to 256 bytes in hex, e.g. pattern:deadbeef',
    ],
    [
      'pattern:zz',
      'bad byte pattern "pattern:zz"; write pattern: followed by 1 to 256 bytes in hex, e.g. pattern:deadbeef',
    ],
  ])('%s is refused', (text, message) => {
    expect(parsePattern(text)).toEqual({ ok: false, message });
  });

  it.each<[string, string]>([
    ['seq', 'seq'],
    ['random', 'random:0'],
    ['pattern:0xDEADbeef', 'pattern:deadbeef'],
  ])('%s is written %s', (text, formatted) => {
    const parsed = parsePattern(text);
    expect(parsed.ok && formatPattern(parsed.value)).toBe(formatted);
  });

  it('refuses offsets that are not byte offsets', () => {
    expect(() => patternBytes({ kind: 'seq' }, -1, 4)).toThrow(RangeError);
    expect(() => patternBytes({ kind: 'seq' }, 0.5, 4)).toThrow(RangeError);
  });

  it('finds the first byte that differs', () => {
    const data = patternBytes({ kind: 'seq' }, 1000, 64);
    expect(firstMismatch({ kind: 'seq' }, 1000, data)).toBe(-1);
    data[17] ^= 1;
    expect(firstMismatch({ kind: 'seq' }, 1000, data)).toBe(1017);
  });
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex').slice(0, 16);

describe('long ranges (made a chunk at a time)', () => {
  // Digests of the byte-at-a-time generator this one replaced: ranges across chunk boundaries, odd
  // phases, and the word index 2^32 where the random stream's key changes.
  it.each<[Pattern, number, number, string]>([
    [{ kind: 'random', seed: 0 }, 0, 1 << 20, '7074cd9ff7b6f11c'],
    [{ kind: 'random', seed: 7 }, 2 ** 34 - 4097, 200003, '3f63e7a22eb26c1d'],
    [{ kind: 'random', seed: 4294967295 }, 3, 70001, '30614ff8bc18b564'],
    [{ kind: 'seq' }, 77, 300000, '36d07e8a8d9fb3c6'],
    [{ kind: 'bytes', hex: 'deadbeef01' }, 12345, 200000, '53649eda93deb9f5'],
  ])('%o at %d for %d bytes hashes to %s', (pattern, offset, length, digest) => {
    expect(sha256(patternBytes(pattern, offset, length))).toBe(digest);
  });

  it('a small piece is the same made alone or cut from a kept 64 KiB chunk', () => {
    const pattern: Pattern = { kind: 'random', seed: 424242 };
    const at = 5 * 65536 + 4093;
    const alone = hex(patternBytes(pattern, at, 4100));
    patternBytes(pattern, 5 * 65536, 3 * 65536); // makes and keeps chunks 5, 6 and 7
    expect(hex(patternBytes(pattern, at, 4100))).toBe(alone);
    expect(hex(patternBytes(pattern, 5 * 65536, 3 * 65536).subarray(4093, 4093 + 4100))).toBe(alone);
  });

  it('fills guest (SharedArrayBuffer) memory with the same bytes as ordinary memory', () => {
    for (const pattern of [
      { kind: 'zero' },
      { kind: 'ones' },
      { kind: 'seq' },
      { kind: 'random', seed: 5 },
      { kind: 'bytes', hex: 'a1b2c3' },
    ] as Pattern[]) {
      const shared = new Uint8Array(new SharedArrayBuffer(150_000), 1, 140_001).fill(0x5a);
      fillPattern(pattern, 999, shared);
      expect(sha256(shared)).toBe(sha256(patternBytes(pattern, 999, 140_001)));
    }
  });

  it.each<[Pattern, number]>([
    [{ kind: 'random', seed: 9 }, 0],
    [{ kind: 'random', seed: 9 }, 65535],
    [{ kind: 'random', seed: 9 }, 65536],
    [{ kind: 'random', seed: 9 }, 199_999],
    [{ kind: 'zero' }, 131_072],
    [{ kind: 'bytes', hex: 'ff00' }, 70_000],
  ])('firstMismatch(%o) finds a flipped byte at %d, not a later one', (pattern, at) => {
    const data = new Uint8Array(new SharedArrayBuffer(200_000));
    fillPattern(pattern, 4096 + 3, data);
    expect(firstMismatch(pattern, 4096 + 3, data)).toBe(-1);
    data[at] ^= 0x80;
    if (at + 5 < data.length) data[at + 5] ^= 1;
    expect(firstMismatch(pattern, 4096 + 3, data)).toBe(4096 + 3 + at);
  });
});

const patterns: fc.Arbitrary<Pattern> = fc.oneof(
  fc.constant<Pattern>({ kind: 'zero' }),
  fc.constant<Pattern>({ kind: 'ones' }),
  fc.constant<Pattern>({ kind: 'seq' }),
  fc.integer({ min: 0, max: 0xffff_ffff }).map((seed): Pattern => ({ kind: 'random', seed })),
  fc.uint8Array({ minLength: 1, maxLength: 16 }).map((b): Pattern => ({ kind: 'bytes', hex: hex(b) })),
);

describe('pattern properties', () => {
  it('writers and verifiers agree however a range is split into requests', () => {
    fc.assert(
      fc.property(
        patterns,
        fc.integer({ min: 0, max: 2 ** 45 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 300 }),
        (pattern, offset, split, rest) => {
          const whole = patternBytes(pattern, offset, split + rest);
          const parts = new Uint8Array(split + rest);
          fillPattern(pattern, offset, parts.subarray(0, split));
          fillPattern(pattern, offset + split, parts.subarray(split));
          expect(hex(parts)).toBe(hex(whole));
        },
      ),
    );
  });

  it('format and parse are inverse', () => {
    fc.assert(
      fc.property(patterns, (pattern) => {
        expect(parsePattern(formatPattern(pattern))).toEqual({ ok: true, value: pattern });
      }),
    );
  });
});
