/**
 * The toolstack / tapdisk / blktap / hotplug entries of the scenario catalogue (teardown.md §4), each
 * pair in the sim engine: the buggy file passes with the failure expected, the fixed file passes with
 * it absent, and the two files differ only in the version switch (plus names and prose).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { runScenario } from '../../emulator/scenario/run.js';
import { loadRunnableScenario } from '../../emulator/scenario/run-demo.js';

const file = (name: string) => new URL(`../../scenarios/${name}.yaml`, import.meta.url).pathname;

/** The YAML outside comments, name and description: what must be equal between the two files. */
function body(name: string): string {
  const text = readFileSync(file(name), 'utf8');
  const out: string[] = [];
  let inDescription = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    if (inDescription && line.startsWith('  ')) continue;
    inDescription = line.startsWith('description:');
    if (inDescription || line.startsWith('name:')) continue;
    out.push(line);
  }
  return out.join('\n');
}

describe('C1: libxl leaves tapdisk2 processes behind (4.1 Connected branch; 4.2 fixed)', () => {
  const BUGGY = 'c1-tapdisk-orphaned-on-destroy';
  const FIXED = 'c1-tapdisk-orphaned-on-destroy-fixed';

  test('the pair differs only in the libxl version and the expected tap-ctl list', () => {
    const a = loadRunnableScenario(file(BUGGY)).scenario;
    const b = loadRunnableScenario(file(FIXED)).scenario;
    expect(a.versions.libxl).toBe('4.1');
    expect(b.versions).toEqual({ ...a.versions, libxl: '4.2' });
    expect(b.steps.map((s) => s.kind)).toEqual(a.steps.map((s) => s.kind));
    const strip = (t: string) =>
      t
        .split('\n')
        .filter((l) => !/^ {2}(libxl|tap-ctl-list):/.test(l))
        .join('\n');
    expect(strip(body(FIXED))).toBe(strip(body(BUGGY)));
  });

  test('buggy: a full row (pid, minor 0, state 0, aio:<image>) outlives the guest, no stall', async () => {
    const r = await runScenario(file(BUGGY), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.outcome).toBe('completed');
    expect(r.stalls).toEqual([]);
    expect(r.tapCtlList).toHaveLength(1);
    expect(r.tapCtlList![0]).toMatch(/^pid=\d+ minor=0 state=0 args=aio:\/.*\/disk\.img$/);
    expect(r.end.guestStates).toEqual({ guest1: 'dead' });
  }, 30_000);

  test('fixed: the tapdisk is destroyed with the params read before the delete; nothing is left', async () => {
    const r = await runScenario(file(FIXED), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.tapCtlList).toEqual([]);
    expect(r.stalls).toEqual([]);
  }, 30_000);

  test('one switch: the buggy file at libxl 4.2 fails its own tap-ctl-list expectation', async () => {
    const { scenario: s } = loadRunnableScenario(file(BUGGY));
    const r = await runScenario({ ...s, versions: { ...s.versions, libxl: '4.2' } }, { engine: 'sim' });
    expect(r.verdict).toBe('fail');
    expect(r.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['expect.tap-ctl-list']);
  }, 30_000);
});
