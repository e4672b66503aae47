import { describe, expect, it } from 'vitest';
import { editDistance, fixHint, suggest } from '../../emulator/scenario/suggest.js';

describe('edit distance (optimal string alignment)', () => {
  it.each<[string, string, number]>([
    ['', '', 0],
    ['abc', 'abc', 0],
    ['', 'abc', 3],
    ['gest1', 'guest1', 1],
    ['descripton', 'description', 1],
    ['xl', 'lx', 1],
    ['tpa-ctl', 'tap-ctl', 1],
    ['kitten', 'sitting', 3],
    ['ca', 'abc', 3],
  ])('%j to %j is %d', (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
    expect(editDistance(b, a)).toBe(d);
  });
});

describe('suggestions', () => {
  const kinds = ['xl', 'tap-ctl', 'guest', 'xenstore-write', 'xenstore-read', 'xenstore-rm', 'wait', 'fault'];
  it.each<[string, readonly string[], string | undefined]>([
    ['xll', kinds, 'xl'],
    ['tapctl', kinds, 'tap-ctl'],
    ['Guest', kinds, 'guest'],
    ['waitt', kinds, 'wait'],
    ['xenstore-writ', kinds, 'xenstore-write'],
    ['xenstore', kinds, 'xenstore-write'],
    ['ab', kinds, undefined],
    ['zzz', kinds, undefined],
    ['desc', ['name', 'description'], 'description'],
    ['gest1', ['guest1', 'guest2'], 'guest1'],
  ])('%j among candidates suggests %j', (input, candidates, expected) => {
    expect(suggest(input, candidates)).toBe(expected);
  });

  it('hints at the closest word, or lists the choices', () => {
    expect(fixHint('lixbl', ['libxl', 'tapdisk'])).toBe('; did you mean "libxl"?');
    expect(fixHint('qqq', ['libxl', 'tapdisk'])).toBe('; expected one of: libxl, tapdisk');
    expect(fixHint('qqq', [])).toBe('');
  });
});
