import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { catalogue, firstSentence, scenariosCommand } from '../../emulator/cli/commands/scenarios.js';
import { VERSION_SWITCHES } from '../../emulator/scenario/model.js';

const dir = mkdtempSync(join(tmpdir(), 'xenpv-cli-scenarios-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l), colorLevel: 0 as const },
  };
}

describe('xenpv scenarios', () => {
  test.each([
    ['One sentence.', 'One sentence'],
    ['First. Second.', 'First'],
    ['No full stop', 'No full stop'],
    ['Version 4.1 is old. Really.', 'Version 4.1 is old'],
    ['Wrapped\n  over lines. Next', 'Wrapped over lines'],
  ])('firstSentence(%j) = %j', (text, expected) => {
    expect(firstSentence(text)).toBe(expected);
  });

  test('the repository catalogue lists hello-grant with its summary and no versions of its own', () => {
    const c = capture();
    expect(scenariosCommand({ json: true }, c.io)).toBe(0);
    const entries = JSON.parse(c.out.join('\n'));
    expect(entries).toContainEqual({
      file: 'hello-grant.yaml',
      name: 'hello-grant',
      summary: 'two domains share a page through a grant and signal each other over an event channel',
      versions: {},
    });
  });

  test('versions as set in the file, cites, and an invalid file (exit 2, the others still listed)', () => {
    writeFileSync(
      join(dir, 'a.yaml'),
      'name: a\ndescription: Does a. Then more.\ncites: teardown.md §3\nversions:\n  libxl: 4.1\n  blktap-kernel: 2010-06\nsteps:\n  - wait: { time: 1s }\n',
    );
    writeFileSync(join(dir, 'b.yaml'), 'name: b\ndescription: x\nsteps: 3\n');
    writeFileSync(join(dir, 'notes.txt'), 'not a scenario');
    expect(catalogue(dir)).toEqual([
      {
        file: 'a.yaml',
        name: 'a',
        summary: 'Does a',
        cites: 'teardown.md §3',
        versions: { libxl: '4.1', 'blktap-kernel': '2010-06' },
      },
      { file: 'b.yaml', versions: {}, error: expect.stringMatching(/b\.yaml:3:8: steps: expected a list/) },
    ]);
    const c = capture();
    expect(scenariosCommand({ dir, json: false }, c.io)).toBe(2);
    expect(c.out).toEqual([
      'a  Does a',
      '    file: a.yaml',
      '    cites: teardown.md §3',
      '    versions: libxl 4.1, blktap-kernel 2010-06',
      expect.stringMatching(/^b\.yaml {2}invalid: .*steps: expected a list/),
    ]);
  });

  test('every switch of the versions table a file sets is listed, under its file key', () => {
    const sub = mkdtempSync(join(dir, 'all-'));
    const set = VERSION_SWITCHES.map((sw) => [sw.key, sw.values.find((v) => v !== sw.default)] as const);
    const yaml = set.map(([k, v]) => `  ${k}: ${JSON.stringify(v)}\n`).join('');
    writeFileSync(
      join(sub, 'all.yaml'),
      `name: all\ndescription: x\nversions:\n${yaml}steps:\n  - wait: { time: 1s }\n`,
    );
    const [entry] = catalogue(sub);
    expect(entry?.versions).toEqual(Object.fromEntries(set.map(([k, v]) => [k, String(v)])));
    expect(Object.keys(entry?.versions ?? {})).toContain('hotplug-block');
  });

  test('a missing directory exits 2 and says how to fix it', () => {
    const c = capture();
    expect(scenariosCommand({ dir: join(dir, 'nope'), json: false }, c.io)).toBe(2);
    expect(c.err[0]).toMatch(/cannot list .*nope \(ENOENT\); give a directory of scenario files with --dir/);
  });
});
