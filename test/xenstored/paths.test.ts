import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { XsError } from '../../emulator/xenstored/errors.js';
import { canonicalize } from '../../emulator/xenstored/paths.js';

/** canonicalize() as a chain of regular expressions, the way core.c reads: the reference for the fast scan. */
function reference(
  path: string,
  o: { domid: number; allowSpecial: boolean; pathMax: number | undefined },
): string {
  if (!/^[A-Za-z0-9\-/_@]*$/.test(path)) return 'EINVAL chars';
  if (path.startsWith('@') && !o.allowSpecial) return 'EINVAL special';
  const name = path.startsWith('/') || path.startsWith('@') ? path : `/local/domain/${o.domid}/${path}`;
  if (name.endsWith('/') && name !== '/') return 'EINVAL trailing';
  if (name.includes('//')) return 'EINVAL double';
  const m = /^\/local\/domain\/(\d{1,5})\//.exec(name);
  const counted = m && Number(m[1]) <= 65535 ? name.length - m[0].length : name.length;
  if (o.pathMax !== undefined && counted > o.pathMax) return 'EINVAL long';
  return name;
}

function actual(
  path: string,
  o: { domid: number; allowSpecial: boolean; pathMax: number | undefined },
): string {
  try {
    return canonicalize(path, o);
  } catch (e) {
    if (!(e instanceof XsError)) throw e;
    const m = e.message;
    const kind = m.includes('character outside')
      ? 'chars'
      : m.includes('special path')
        ? 'special'
        : m.includes('ends in')
          ? 'trailing'
          : m.includes('contains "//"')
            ? 'double'
            : m.includes('characters, above')
              ? 'long'
              : m;
    return `${e.errno} ${kind}`;
  }
}

describe('canonicalize', () => {
  it.each([
    ['state', 1, false, 2048, '/local/domain/1/state'],
    ['/local/domain/0/backend', 1, false, 2048, '/local/domain/0/backend'],
    ['/', 0, false, undefined, '/'],
    ['', 1, false, 2048, 'EINVAL trailing'],
    ['a/', 1, false, 2048, 'EINVAL trailing'],
    ['a//b', 1, false, 2048, 'EINVAL double'],
    ['//', 0, false, undefined, 'EINVAL trailing'],
    ['/a b', 0, false, undefined, 'EINVAL chars'],
    ['/a//b*', 0, false, undefined, 'EINVAL chars'],
    ['/é', 0, false, undefined, 'EINVAL chars'],
    ['@releaseDomain', 1, true, 2048, '@releaseDomain'],
    ['@releaseDomain', 1, false, 2048, 'EINVAL special'],
    ['/local/domain/1/abcd', 1, false, 4, '/local/domain/1/abcd'],
    ['/local/domain/1/abcde', 1, false, 4, 'EINVAL long'],
    ['/local/domain/99999/ab', 1, false, 2, 'EINVAL long'],
    ['/other/abcde', 1, false, 11, 'EINVAL long'],
  ] as const)(
    '%j from dom%i (special %s, path-max %s) is %j',
    (path, domid, allowSpecial, pathMax, expected) => {
      expect(actual(path, { domid, allowSpecial, pathMax })).toBe(expected);
    },
  );

  it('agrees with the regular-expression reference on any path (property)', () => {
    const chars = fc.constantFrom(
      '/',
      '/',
      '/',
      'a',
      'Z',
      '0',
      '9',
      '-',
      '_',
      '@',
      ' ',
      '*',
      'é',
      '\0',
      '\u00ff',
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.array(chars, { maxLength: 12 }).map((a) => a.join('')),
          fc.array(chars, { maxLength: 8 }).map((a) => `/local/domain/${a.join('')}`),
        ),
        fc.integer({ min: 0, max: 70000 }),
        fc.boolean(),
        fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }),
        (path, domid, allowSpecial, pathMax) => {
          const o = { domid, allowSpecial, pathMax };
          expect(actual(path, o)).toBe(reference(path, o));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
