import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ScenarioError } from '../../emulator/scenario/errors.js';
import { loadScenarioFile } from '../../emulator/scenario/load.js';

/** The fixture's path as a user would type it from the repository root. */
function fixture(name: string): string {
  return relative(process.cwd(), fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)));
}

function errorsOf(file: string): string {
  try {
    loadScenarioFile(file);
  } catch (error) {
    expect(error).toBeInstanceOf(ScenarioError);
    return (error as ScenarioError).format();
  }
  throw new Error(`${file} loaded without errors`);
}

// One malformed file per kind of mistake, with the exact text a user sees.
const cases: [string, string, string[]][] = [
  [
    'YAML syntax error (tab indentation)',
    'yaml-syntax.yaml',
    ['5:1: YAML syntax: tabs are not allowed as indentation; indent with spaces'],
  ],
  [
    'duplicate key',
    'duplicate-key.yaml',
    ['9:3: versions.libxl: duplicate key "libxl" (first at line 7); remove one of them'],
  ],
  [
    'unknown top-level key',
    'unknown-top-key.yaml',
    ['2:1: descripton: unknown key "descripton"; did you mean "description"?'],
  ],
  [
    'unknown step kind',
    'unknown-step-kind.yaml',
    ['8:5: steps[1].tapctl: unknown step kind "tapctl"; did you mean "tap-ctl"?'],
  ],
  [
    'wrong types',
    'wrong-type.yaml',
    [
      '6:7: seed: expected a whole number from 0 to 4294967295, got "one"',
      '9:18: steps[0].reorderable: expected true or false, got "yes"',
    ],
  ],
  [
    'bad size',
    'bad-size.yaml',
    ['9:13: host.images[0].size: bad size "16MB": MB is ambiguous; write 16MiB (binary units)'],
  ],
  [
    'bad duration',
    'bad-duration.yaml',
    [
      '8:19: steps[1].wait.time: bad duration "2 sec": unknown unit "sec"; use us, ms, s, m or h, like 5s, 500ms, 10us or 2m (a bare number is seconds)',
    ],
  ],
  [
    'bad version value',
    'bad-version.yaml',
    [
      '7:10: versions.libxl: "4.3" is not a libxl version; did you mean "4.1"? (one of "4.1", "4.2-pre", "4.2", "xend")',
    ],
  ],
  [
    'unknown guest',
    'unknown-guest.yaml',
    ['8:12: steps[1].guest: unknown domain "gest1"; did you mean "guest1"?'],
  ],
  [
    'two action keys in one guest step',
    'two-actions.yaml',
    [
      '10:5: steps[1]: a guest step takes exactly one action, found open and close; split them into separate steps',
    ],
  ],
  [
    'repeat out of range',
    'repeat-range.yaml',
    [
      '7:13: steps[0].repeat: 0 is out of range; expected 1 to 1000',
      '10:13: steps[1].repeat: 1001 is out of range; expected 1 to 1000',
    ],
  ],
  [
    'unknown pattern',
    'unknown-pattern.yaml',
    [
      '9:61: steps[1].write.pattern: unknown pattern "sequential"; use seq, zero, ones, random:<seed> or pattern:<hex> (e.g. pattern:deadbeef)',
    ],
  ],
  [
    'several errors, sorted by position',
    'several-errors.yaml',
    [
      '1:7: name: bad value "Several_Errors": use lower-case letters, digits and -; e.g. blktap2-teardown-deadlock',
      '4:13: versions.blkfront: "2013" is not a blkfront version; did you mean "2012"? (one of "2012", "2016")',
      '6:11: host.memory: bad size "64MB": MB is ambiguous; write 64MiB (binary units)',
      '14:12: steps[1].guest: unknown domain "guest2"; did you mean "guest1"?',
      '16:36: steps[2].wait.state: "gone" is not a domain state; use one of "running", "shutdown", "dying", "dead"',
      '17:35: steps[3].fault.fail-image.image: unknown image "disk.im"; did you mean "disk.img"?',
      '17:51: steps[3].fault.fail-image.error: unknown errno name "EIOO"; did you mean "EIO"?',
      '19:33: steps[4].read.offset: size 100 is not a multiple of 512 (whole 512-byte sectors)',
      '21:19: expect.stall.chain: name at least one holder, e.g. ["tapdisk"]',
      '22:37: expect.elapsed.at-most: at-most is below at-least; swap them',
      '23:3: expect.deadlok: unknown expectation "deadlok"; did you mean "deadlock"?',
    ],
  ],
];

describe('malformed scenario files', () => {
  it.each(cases)('%s (%s)', (_what, name, lines) => {
    const file = fixture(name);
    expect(errorsOf(file)).toBe(lines.map((line) => `${file}:${line}`).join('\n'));
  });

  it('carries each issue as data, and the error message is the formatted list', () => {
    const file = fixture('repeat-range.yaml');
    try {
      loadScenarioFile(file);
      expect.unreachable();
    } catch (error) {
      const e = error as ScenarioError;
      expect(e.issues).toEqual([
        {
          file,
          line: 7,
          column: 13,
          path: 'steps[0].repeat',
          message: '0 is out of range; expected 1 to 1000',
        },
        {
          file,
          line: 10,
          column: 13,
          path: 'steps[1].repeat',
          message: '1001 is out of range; expected 1 to 1000',
        },
      ]);
      expect(e.message).toBe(e.format());
    }
  });

  it('reports a missing file by name', () => {
    expect(errorsOf('scenarios/no-such-file.yaml')).toBe(
      'scenarios/no-such-file.yaml: cannot read the scenario file (ENOENT)',
    );
  });
});
