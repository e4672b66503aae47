import { describe, expect, it } from 'vitest';
import { formatDuration, formatSize, parseDuration, parseSize } from '../../emulator/scenario/units.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

describe('sizes', () => {
  it.each<[string | number, number]>([
    [512, 512],
    ['512', 512],
    ['0', 0],
    ['4KiB', 4 * KiB],
    ['4kib', 4 * KiB],
    ['4K', 4 * KiB],
    ['4k', 4 * KiB],
    ['1MiB', MiB],
    ['16MiB', 16 * MiB],
    ['16M', 16 * MiB],
    ['1GiB', GiB],
    ['2G', 2 * GiB],
    ['1TiB', 1024 * GiB],
    ['512B', 512],
    ['16 MiB', 16 * MiB],
  ])('%j is %d bytes', (input, bytes) => {
    expect(parseSize(input)).toEqual({ ok: true, value: bytes });
  });

  it.each<[string | number, string]>([
    ['16MB', 'bad size "16MB": MB is ambiguous; write 16MiB (binary units)'],
    ['4kB', 'bad size "4kB": kB is ambiguous; write 4KiB (binary units)'],
    ['1.5MiB', 'bad size "1.5MiB"; write a whole number with a binary unit, like 512, 4KiB, 16MiB or 1GiB'],
    ['-1', 'bad size "-1"; write a whole number with a binary unit, like 512, 4KiB, 16MiB or 1GiB'],
    ['', 'bad size ""; write a whole number with a binary unit, like 512, 4KiB, 16MiB or 1GiB'],
    ['MiB', 'bad size "MiB"; write a whole number with a binary unit, like 512, 4KiB, 16MiB or 1GiB'],
    ['4XiB', 'bad size "4XiB": unknown unit "XiB"; use B, KiB, MiB, GiB or TiB'],
    ['99999999999TiB', 'bad size "99999999999TiB": too large'],
    [1.5, 'bad size 1.5; a size is a whole number of bytes, like 512, 4KiB, 16MiB or 1GiB'],
    [-4, 'bad size -4; a size is a whole number of bytes, like 512, 4KiB, 16MiB or 1GiB'],
  ])('%j is refused', (input, message) => {
    expect(parseSize(input)).toEqual({ ok: false, message });
  });

  it.each<[number, string]>([
    [0, '0'],
    [512, '512'],
    [1536, '1536'],
    [4 * KiB, '4KiB'],
    [16 * MiB, '16MiB'],
    [GiB + MiB, '1025MiB'],
    [2 * GiB, '2GiB'],
    [1024 * GiB, '1TiB'],
  ])('%d bytes is written %s and reads back', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
    expect(parseSize(text)).toEqual({ ok: true, value: bytes });
  });
});

describe('durations', () => {
  it.each<[string | number, number]>([
    ['5s', 5000],
    ['500ms', 500],
    ['10us', 0.01],
    ['10µs', 0.01],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['0.5s', 500],
    ['1.25ms', 1.25],
    ['7', 7000],
    [7, 7000],
    [0.5, 500],
    [0, 0],
    ['0s', 0],
    [' 2 s ', 2000],
  ])('%j is %d ms', (input, ms) => {
    expect(parseDuration(input)).toEqual({ ok: true, value: ms });
  });

  it.each<[string | number, string]>([
    [
      '2 sec',
      'bad duration "2 sec": unknown unit "sec"; use us, ms, s, m or h, like 5s, 500ms, 10us or 2m (a bare number is seconds)',
    ],
    [
      '5S',
      'bad duration "5S": unknown unit "S"; use us, ms, s, m or h, like 5s, 500ms, 10us or 2m (a bare number is seconds)',
    ],
    [
      '-1s',
      'bad duration "-1s"; write a number with a unit, like 5s, 500ms, 10us or 2m (a bare number is seconds)',
    ],
    [
      's',
      'bad duration "s"; write a number with a unit, like 5s, 500ms, 10us or 2m (a bare number is seconds)',
    ],
    ['0.1us', 'bad duration "0.1us": shorter than the 1us resolution'],
    [-2, 'bad duration -2; use a non-negative time like 5s, 500ms, 10us or 2m (a bare number is seconds)'],
    [
      Number.POSITIVE_INFINITY,
      'bad duration Infinity; use a non-negative time like 5s, 500ms, 10us or 2m (a bare number is seconds)',
    ],
  ])('%j is refused', (input, message) => {
    expect(parseDuration(input)).toEqual({ ok: false, message });
  });

  it.each<[number, string]>([
    [0, '0s'],
    [5000, '5s'],
    [500, '500ms'],
    [0.01, '10us'],
    [1.25, '1250us'],
    [120_000, '2m'],
    [7_200_000, '2h'],
    [61_000, '61s'],
  ])('%d ms is written %s and reads back', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toEqual({ ok: true, value: ms });
  });
});
