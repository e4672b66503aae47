// expect.data: the image bytes a run left, compared with a pattern in chunks.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { patternBytes } from '../../emulator/guest/pattern.js';
import { checkExpectations, type RunFacts } from '../../emulator/scenario/expect.js';
import { parseScenario } from '../../emulator/scenario/load.js';
import { testTempDir } from '../temp-dirs.js';

const MiB = 1 << 20;

function scenarioWithData(lines: string[]) {
  return parseScenario(
    `name: t
description: test
domains:
  - name: guest1
host:
  images:
    - name: disk.img
      size: 2MiB
steps:
  - xl: create /etc/xen/guest1.cfg
expect:
  data:
${lines.map((l) => `    - ${l}`).join('\n')}
`,
    't.yaml',
  );
}

const facts = (workDir: string): RunFacts => ({
  outcome: 'completed',
  stalls: [],
  endTime: 0,
  dmesg: {},
  domainNames: { 0: 'dom0' },
  end: { guestStates: {}, xenstore: {}, tapCtlList: undefined },
  workDir,
  steps: [],
});

/** A 2 MiB image: random:7 over [0, 1 MiB + 100), zeros after, with `flip` bytes inverted. */
function image(flip: number[] = [], size = 2 * MiB): string {
  const dir = testTempDir('expect-data');
  mkdirSync(dir, { recursive: true });
  const bytes = new Uint8Array(size);
  bytes.set(patternBytes({ kind: 'random', seed: 7 }, 0, Math.min(size, MiB + 100)));
  for (const at of flip) bytes[at] = bytes[at]! ^ 0xff;
  writeFileSync(join(dir, 'disk.img'), bytes);
  return dir;
}

const dataChecks = (lines: string[], dir: string) =>
  checkExpectations(scenarioWithData(lines), facts(dir))
    .filter((c) => c.name.startsWith('expect.data'))
    .map((c) => [c.name, c.ok, c.detail]);

describe('expect.data', () => {
  it.each([
    [
      'the written range matches',
      [],
      '{ image: disk.img, offset: 0, length: 1MiB, pattern: random:7 }',
      true,
      'matches',
    ],
    [
      'a difference in a later chunk is found at its byte',
      [300_000, 700_001],
      '{ image: disk.img, offset: 0, length: 1MiB, pattern: random:7 }',
      false,
      'first difference at byte 300000',
    ],
    [
      'an unaligned range',
      [],
      '{ image: disk.img, offset: 512, length: 768KiB, pattern: random:7 }',
      true,
      'matches',
    ],
    [
      'zeros past the written range',
      [],
      '{ image: disk.img, offset: 1280KiB, length: 512KiB, pattern: zero }',
      true,
      'matches',
    ],
    [
      'pattern ends where the write ended',
      [],
      '{ image: disk.img, offset: 1MiB, length: 4KiB, pattern: random:7 }',
      false,
      `first difference at byte ${MiB + 100}`,
    ],
  ])('%s', (_what, flips, line, ok, detail) => {
    const dir = image(flips);
    const [[, gotOk, gotDetail]] = dataChecks([line], dir) as [[string, boolean, string]];
    expect([gotOk, gotDetail]).toEqual([ok, detail]);
  });

  it('an image shorter than the range fails as short, even when its first bytes differ', () => {
    const dir = image([0], MiB / 2);
    expect(dataChecks(['{ image: disk.img, offset: 0, length: 1MiB, pattern: random:7 }'], dir)).toEqual([
      [
        `expect.data disk.img ${MiB}@0`,
        false,
        `image ${join(dir, 'disk.img')} has only ${MiB / 2} byte(s) at offset 0, wanted ${MiB}`,
      ],
    ]);
  });

  it('a missing image fails with the open error', () => {
    const dir = testTempDir('expect-data');
    const [[, ok, detail]] = dataChecks(
      ['{ image: disk.img, offset: 0, length: 4KiB, pattern: zero }'],
      dir,
    ) as [[string, boolean, string]];
    expect(ok).toBe(false);
    expect(detail).toMatch(/ENOENT/);
  });
});
