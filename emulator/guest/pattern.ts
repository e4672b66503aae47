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
 *
 * Guest workloads write and verify these; scenarios (images, `expect.data`) name them: the module sits
 * below both.
 */
import { Buffer } from 'node:buffer';

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

/** MurmurHash3 fmix32 (unsigned). */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** K for the words whose index has high 32 bits `hi`: the same for 16 GiB of the stream. */
function randomKey(seed: number, hi: number): number {
  return fmix32((seed ^ 0x5bd1e995 ^ Math.imul(hi, 0x85ebca6b)) >>> 0);
}

const WORDS_PER_HI = 0x1_0000_0000;

/** Patterns are made in ordinary memory a chunk at a time, then copied (one memcpy) to the target. */
const CHUNK = 64 * 1024;
const scratchWords = new Uint32Array(CHUNK / 4 + 1);
const scratch = new Uint8Array(scratchWords.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Stores words firstWord..firstWord+n-1 of the random stream, little-endian, in `scratch`. */
function randomWords(seed: number, firstWord: number, n: number): void {
  let hi = Math.floor(firstWord / WORDS_PER_HI);
  let lo = firstWord - hi * WORDS_PER_HI;
  let key = randomKey(seed, hi);
  for (let j = 0; j < n; j++) {
    // fmix32(lo ^ key) inline; the Uint32Array store makes it unsigned.
    let h = lo ^ key;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    scratchWords[j] = LITTLE_ENDIAN
      ? h
      : ((h & 0xff) << 24) | ((h & 0xff00) << 8) | ((h >>> 8) & 0xff00) | (h >>> 24);
    if (++lo === WORDS_PER_HI) {
      lo = 0;
      key = randomKey(seed, ++hi);
    }
  }
}

/**
 * A periodic pattern (seq, zero, ones, bytes) as a tile: its period repeated to at least CHUNK bytes
 * plus one period, so tile[start..start+CHUNK) is the pattern from any phase `start` < period.
 */
interface Tile {
  bytes: Uint8Array;
  period: number;
}

const tiles = new Map<string, Tile>();
const MAX_TILES = 64;

function makeTile(period: Uint8Array): Tile {
  const n = period.length;
  const bytes = new Uint8Array(Math.ceil(CHUNK / n) * n + n);
  bytes.set(period);
  for (let have = n; have < bytes.length; have *= 2)
    bytes.copyWithin(have, 0, Math.min(have, bytes.length - have));
  return { bytes, period: n };
}

function tileOf(pattern: Exclude<Pattern, { kind: 'random' }>): Tile {
  const key = pattern.kind === 'bytes' ? pattern.hex : pattern.kind;
  let tile = tiles.get(key);
  if (tile === undefined) {
    let period: Uint8Array;
    if (pattern.kind === 'zero') period = new Uint8Array(1);
    else if (pattern.kind === 'ones') period = new Uint8Array([0xff]);
    else if (pattern.kind === 'seq') period = Uint8Array.from({ length: 256 }, (_, i) => i);
    else period = hexBytes(pattern.hex);
    tile = makeTile(period);
    // Scenarios name a handful of patterns; a long-lived explorer must not grow without bound.
    if (tiles.size >= MAX_TILES) tiles.clear();
    tiles.set(key, tile);
  }
  return tile;
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

/**
 * The pattern's bytes for absolute offsets at..at+count-1 (count ≤ CHUNK) as a view of a shared
 * scratch or tile buffer: valid until the next call.
 */
function chunkAt(pattern: Pattern, at: number, count: number): Uint8Array {
  if (pattern.kind === 'random') {
    const lane = at % 4;
    randomWords(pattern.seed, (at - lane) / 4, Math.ceil((lane + count) / 4));
    return scratch.subarray(lane, lane + count);
  }
  const tile = tileOf(pattern);
  const start = at % tile.period;
  return tile.bytes.subarray(start, start + count);
}

/** Writes the pattern's bytes for absolute offsets offset..offset+out.length-1 into `out`. */
export function fillPattern(pattern: Pattern, offset: number, out: Uint8Array): Uint8Array {
  checkRange(offset, out.length);
  if (!(out.buffer instanceof SharedArrayBuffer) && (pattern.kind === 'zero' || pattern.kind === 'ones')) {
    out.fill(pattern.kind === 'zero' ? 0 : 0xff);
    return out;
  }
  // Copies, not element stores: V8 stores into a SharedArrayBuffer view one byte at a time.
  for (let i = 0; i < out.length; ) {
    const count = Math.min(CHUNK, out.length - i);
    out.set(chunkAt(pattern, offset + i, count), i);
    i += count;
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
  checkRange(offset, data.length);
  for (let i = 0; i < data.length; ) {
    const count = Math.min(CHUNK, data.length - i);
    const expected = chunkAt(pattern, offset + i, count);
    const got = data.subarray(i, i + count);
    // One memcmp per chunk; the byte loop only runs on the chunk that differs.
    if (Buffer.compare(got, expected) !== 0) {
      for (let j = 0; j < count; j++) if (got[j] !== expected[j]) return offset + i + j;
    }
    i += count;
  }
  return -1;
}
