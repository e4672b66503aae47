/**
 * Sizes and durations as scenario files write them.
 *
 * Sizes are binary: `512` (bytes), `4KiB`, `1MiB`, `16MiB`, `1GiB`, `1TiB`; the one-letter forms
 * `K`, `M`, `G`, `T` mean the same binary units; a trailing `B` means bytes; units are case-insensitive
 * and may follow the number after a space. Decimal units (`MB`, `kB`) are refused because they are
 * ambiguous; the error names the binary unit to use instead. Sizes are whole numbers of bytes.
 *
 * Durations: `5s`, `500ms`, `10us` (also `µs`), `2m`, `1h`; a bare number is seconds (`0.5` = 500 ms).
 * They are returned in milliseconds (the runtime's `Millis`), with a resolution of one microsecond.
 */

export type UnitResult = { ok: true; value: number } | { ok: false; message: string };

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
};

const DECIMAL_TO_BINARY: Record<string, string> = { kb: 'KiB', mb: 'MiB', gb: 'GiB', tb: 'TiB' };

export const SIZE_EXAMPLE = 'like 512, 4KiB, 16MiB or 1GiB';
export const DURATION_EXAMPLE = 'like 5s, 500ms, 10us or 2m (a bare number is seconds)';

/** Parses a size; numbers are bytes. */
export function parseSize(input: string | number): UnitResult {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) {
      return { ok: false, message: `bad size ${input}; a size is a whole number of bytes, ${SIZE_EXAMPLE}` };
    }
    return { ok: true, value: input };
  }
  const match = /^\s*(\d+)\s*([A-Za-z]*)\s*$/.exec(input);
  if (match === null) {
    return {
      ok: false,
      message: `bad size "${input}"; write a whole number with a binary unit, ${SIZE_EXAMPLE}`,
    };
  }
  const unit = match[2].toLowerCase();
  const decimal = DECIMAL_TO_BINARY[unit];
  if (decimal !== undefined) {
    return {
      ok: false,
      message: `bad size "${input}": ${match[2]} is ambiguous; write ${match[1]}${decimal} (binary units)`,
    };
  }
  const factor = SIZE_UNITS[unit];
  if (factor === undefined) {
    return {
      ok: false,
      message: `bad size "${input}": unknown unit "${match[2]}"; use B, KiB, MiB, GiB or TiB`,
    };
  }
  const value = Number(match[1]) * factor;
  if (!Number.isSafeInteger(value)) {
    return { ok: false, message: `bad size "${input}": too large` };
  }
  return { ok: true, value };
}

/** The shortest exact spelling of a byte count: 16777216 -> "16MiB", 1536 -> "1536". */
export function formatSize(bytes: number): string {
  const units: [string, number][] = [
    ['TiB', 1024 ** 4],
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ];
  for (const [unit, factor] of units) {
    if (bytes !== 0 && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return String(bytes);
}

const DURATION_UNITS_MS: Record<string, number> = {
  us: 0.001,
  µs: 0.001,
  ms: 1,
  s: 1000,
  '': 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Rounds to whole microseconds so that parse(format(x)) === x. */
function toMicrosecondMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Parses a duration into milliseconds; numbers are seconds. */
export function parseDuration(input: string | number): UnitResult {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) {
      return { ok: false, message: `bad duration ${input}; use a non-negative time ${DURATION_EXAMPLE}` };
    }
    return { ok: true, value: toMicrosecondMs(input * 1000) };
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-zµ]*)\s*$/.exec(input);
  if (match === null) {
    return { ok: false, message: `bad duration "${input}"; write a number with a unit, ${DURATION_EXAMPLE}` };
  }
  const factor = DURATION_UNITS_MS[match[2]];
  if (factor === undefined) {
    return {
      ok: false,
      message: `bad duration "${input}": unknown unit "${match[2]}"; use us, ms, s, m or h, ${DURATION_EXAMPLE}`,
    };
  }
  const value = toMicrosecondMs(Number(match[1]) * factor);
  if (!Number.isFinite(value)) return { ok: false, message: `bad duration "${input}": too large` };
  if (value === 0 && Number(match[1]) !== 0) {
    return { ok: false, message: `bad duration "${input}": shorter than the 1us resolution` };
  }
  return { ok: true, value };
}

/** An exact spelling of a millisecond count in the largest unit that keeps it whole: 7000 -> "7s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  if (Number.isInteger(ms)) return `${ms}ms`;
  return `${Math.round(ms * 1000)}us`;
}
