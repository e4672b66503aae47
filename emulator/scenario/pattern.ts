/**
 * Data patterns: what a guest writes, what a read verifies, what an image is filled with and what an
 * `expect.data` check compares. Every pattern is a pure function of the absolute byte offset (on the
 * virtual disk, which for a raw image is the offset in the file), so a writer, a verifier and an image
 * fill agree on any range, whatever the request boundaries were.
 *
 * - `zero`            byte(o) = 0x00
 * - `ones`            byte(o) = 0xff
 * - `seq`             byte(o) = o & 0xff
 * - `random:<seed>`   byte(o) = lane (o mod 4) of the little-endian 32-bit word W(seed, floor(o / 4)),
 *                     W = fmix32(lo XOR K), K = fmix32((seed XOR 0x5bd1e995) XOR imul(hi, 0x85ebca6b)),
 *                     lo/hi = the low and high 32 bits of floor(o / 4), fmix32 = MurmurHash3's finalizer.
 *                     `random` alone means `random:0`. Seeds are 0..4294967295.
 * - `pattern:<hex>`   byte(o) = B[o mod n] for the n bytes B spelt by an even number of hex digits
 *                     (1 to 256 bytes, optional 0x prefix): `pattern:deadbeef`.
 */

export type Pattern =
  | { kind: 'zero' }
  | { kind: 'ones' }
  | { kind: 'seq' }
  | { kind: 'random'; seed: number }
  | { kind: 'bytes'; hex: string };

export const PATTERN_EXAMPLE = 'seq, zero, ones, random:<seed> or pattern:<hex> (e.g. pattern:deadbeef)';

export type PatternResult = { ok: true; value: Pattern } | { ok: false; message: string };

const MAX_PATTERN_BYTES = 256;

export function parsePattern(text: string): PatternResult {
  const word = text.trim();
  if (word === 'zero' || word === 'ones' || word === 'seq') return { ok: true, value: { kind: word } };
  if (word === 'random') return { ok: true, value: { kind: 'random', seed: 0 } };
  if (word.startsWith('random:')) {
    const seedText = word.slice('random:'.length);
    const seed = /^\d+$/.test(seedText) ? Number(seedText) : Number.NaN;
    if (!Number.isInteger(seed) || seed > 0xffff_ffff) {
      return {
        ok: false,
        message: `bad random seed "${seedText}" in "${text}"; write random:<0..4294967295>, e.g. random:7`,
      };
    }
    return { ok: true, value: { kind: 'random', seed } };
  }
  if (word.startsWith('pattern:')) {
    let hex = word.slice('pattern:'.length).toLowerCase();
    if (hex.startsWith('0x')) hex = hex.slice(2);
    if (!/^([0-9a-f]{2})+$/.test(hex) || hex.length > MAX_PATTERN_BYTES * 2) {
      return {
        ok: false,
        message: `bad byte pattern "${text}"; write pattern: followed by 1 to ${MAX_PATTERN_BYTES} bytes in hex, e.g. pattern:deadbeef`,
      };
    }
    return { ok: true, value: { kind: 'bytes', hex } };
  }
  return { ok: false, message: `unknown pattern "${text}"; use ${PATTERN_EXAMPLE}` };
}

export function formatPattern(pattern: Pattern): string {
  switch (pattern.kind) {
    case 'zero':
    case 'ones':
    case 'seq':
      return pattern.kind;
    case 'random':
      return `random:${pattern.seed}`;
    case 'bytes':
      return `pattern:${pattern.hex}`;
  }
}

/** MurmurHash3 fmix32. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function randomWord(seed: number, wordIndex: number): number {
  const lo = wordIndex >>> 0;
  const hi = Math.floor(wordIndex / 0x1_0000_0000) >>> 0;
  const key = fmix32((seed ^ 0x5bd1e995 ^ Math.imul(hi, 0x85ebca6b)) >>> 0);
  return fmix32((lo ^ key) >>> 0);
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new RangeError(`pattern offset ${offset} is not a byte offset`);
  if (!Number.isSafeInteger(length) || length < 0)
    throw new RangeError(`pattern length ${length} is not a length`);
}

/** Writes the pattern's bytes for absolute offsets offset..offset+out.length-1 into `out`. */
export function fillPattern(pattern: Pattern, offset: number, out: Uint8Array): Uint8Array {
  checkRange(offset, out.length);
  switch (pattern.kind) {
    case 'zero':
      out.fill(0);
      break;
    case 'ones':
      out.fill(0xff);
      break;
    case 'seq':
      for (let i = 0; i < out.length; i++) out[i] = (offset + i) % 256;
      break;
    case 'random': {
      let i = 0;
      while (i < out.length) {
        const at = offset + i;
        const word = randomWord(pattern.seed, Math.floor(at / 4));
        for (let lane = at % 4; lane < 4 && i < out.length; lane++, i++)
          out[i] = (word >>> (8 * lane)) & 0xff;
      }
      break;
    }
    case 'bytes': {
      const bytes = hexBytes(pattern.hex);
      for (let i = 0; i < out.length; i++) out[i] = bytes[(offset + i) % bytes.length];
      break;
    }
  }
  return out;
}

/** The pattern's bytes for absolute offsets offset..offset+length-1. */
export function patternBytes(pattern: Pattern, offset: number, length: number): Uint8Array {
  checkRange(offset, length);
  return fillPattern(pattern, offset, new Uint8Array(length));
}

/**
 * The first offset (absolute) in `data`, which holds the bytes at `offset`.., whose byte differs from the
 * pattern, or -1 when all match. Verifiers use it to report the first bad byte.
 */
export function firstMismatch(pattern: Pattern, offset: number, data: Uint8Array): number {
  const expected = patternBytes(pattern, offset, data.length);
  for (let i = 0; i < data.length; i++) if (data[i] !== expected[i]) return offset + i;
  return -1;
}
