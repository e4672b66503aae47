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
 * Random chunks kept for reuse, CHUNK-aligned: a guest's write and the verify of it (a read, an
 * `expect.data` check), and every run of an explored scenario, ask for the same bytes.
 */
const randomChunks = new Map<string, Uint8Array>();
const RANDOM_CHUNKS_KEPT = 64;

/** The aligned chunk `index` of the random stream `seed` (bytes index*CHUNK..), from the cache or made. */
function randomChunk(seed: number, index: number): Uint8Array {
  const key = `${seed}/${index}`;
  let bytes = randomChunks.get(key);
  if (bytes === undefined) {
    randomWords(seed, index * (CHUNK / 4), CHUNK / 4);
    bytes = scratch.slice(0, CHUNK);
    // Oldest first out (Map keeps insertion order).
    if (randomChunks.size >= RANDOM_CHUNKS_KEPT)
      randomChunks.delete(randomChunks.keys().next().value as string);
    randomChunks.set(key, bytes);
  }
  return bytes;
}

/**
 * The pattern's bytes from absolute offset `at` on, at most `count` (≤ CHUNK) of them, as a view of a
 * cached chunk, a tile or the scratch buffer (valid until the next call). It may be shorter than
 * `count` (it ends at a chunk boundary): callers go on from at + its length.
 */
function chunkAt(pattern: Pattern, at: number, count: number): Uint8Array {
  if (pattern.kind === 'random') {
    const start = at % CHUNK;
    const index = (at - start) / CHUNK;
    const key = `${pattern.seed}/${index}`;
    const cached = randomChunks.get(key);
    const n = Math.min(count, CHUNK - start);
    if (cached !== undefined || n >= CHUNK / 4) {
      return (cached ?? randomChunk(pattern.seed, index)).subarray(start, start + n);
    }
    // A small piece of a chunk not made yet (fio's 4 KiB requests all over a disk): only its words.
    const lane = at % 4;
    randomWords(pattern.seed, (at - lane) / 4, Math.ceil((lane + n) / 4));
    return scratch.subarray(lane, lane + n);
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
    const bytes = chunkAt(pattern, offset + i, Math.min(CHUNK, out.length - i));
    out.set(bytes, i);
    i += bytes.length;
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
    const expected = chunkAt(pattern, offset + i, Math.min(CHUNK, data.length - i));
    const count = expected.length;
    const got = data.subarray(i, i + count);
    // One memcmp per chunk; the byte loop only runs on the chunk that differs.
    if (Buffer.compare(got, expected) !== 0) {
      for (let j = 0; j < count; j++) if (got[j] !== expected[j]) return offset + i + j;
    }
    i += count;
  }
  return -1;
}
