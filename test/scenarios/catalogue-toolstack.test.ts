/**
 * The toolstack / tapdisk / blktap / hotplug entries of the scenario catalogue (teardown.md §4), each
 * pair in the sim engine: the buggy file passes with the failure expected, the fixed file passes with
 * it absent, and the two files differ only in the version switch (plus names and prose).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { runScenario } from '../../emulator/scenario/run.js';
import { loadRunnableScenario } from '../../emulator/scenario/run-demo.js';
import { scenarioFile } from './catalogue-files.js';

/** The YAML outside comments, name and description: what must be equal between the two files. */
function body(name: string): string {
  const text = readFileSync(scenarioFile(name), 'utf8');
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
    const a = loadRunnableScenario(scenarioFile(BUGGY)).scenario;
    const b = loadRunnableScenario(scenarioFile(FIXED)).scenario;
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
    const r = await runScenario(scenarioFile(BUGGY), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.outcome).toBe('completed');
    expect(r.stalls).toEqual([]);
    expect(r.tapCtlList).toHaveLength(1);
    expect(r.tapCtlList![0]).toMatch(/^pid=\d+ minor=0 state=0 args=aio:\/.*\/disk\.img$/);
    expect(r.end.guestStates).toEqual({ guest1: 'dead' });
  }, 30_000);

  test('fixed: the tapdisk is destroyed with the params read before the delete; nothing is left', async () => {
    const r = await runScenario(scenarioFile(FIXED), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.tapCtlList).toEqual([]);
    expect(r.stalls).toEqual([]);
  }, 30_000);

  test('one switch: the buggy file at libxl 4.2 fails its own tap-ctl-list expectation', async () => {
    const { scenario: s } = loadRunnableScenario(scenarioFile(BUGGY));
    const r = await runScenario({ ...s, versions: { ...s.versions, libxl: '4.2' } }, { engine: 'sim' });
    expect(r.verdict).toBe('fail');
    expect(r.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['expect.tap-ctl-list']);
  }, 30_000);
});

/** Every line of dom0's log (the kernel log and tapdisk's syslog lines, as the scenario's `log:` sees them). */
const dom0Log = (r: Awaited<ReturnType<typeof runScenario>>) => r.dmesg[0] ?? [];

/** The two files' bodies equal once the switch and the listed expectation lines are taken out. */
function expectOnlySwitchDiffers(buggy: string, fixed: string, lines: RegExp): void {
  const strip = (t: string) =>
    t
      .split('\n')
      .filter((l) => !lines.test(l))
      .join('\n');
  expect(strip(body(fixed))).toBe(strip(body(buggy)));
}

describe('C18: tap-ctl create rollback on a VBD tapdisk already freed (2011-06; e403288 fixed)', () => {
  const BUGGY = 'c18-tap-ctl-create-rollback-freed-vbd';
  const FIXED = 'c18-tap-ctl-create-rollback-freed-vbd-fixed';

  test('the pair differs only in tapdisk-open-failure and the log expectations', () => {
    const a = loadRunnableScenario(scenarioFile(BUGGY)).scenario;
    const b = loadRunnableScenario(scenarioFile(FIXED)).scenario;
    expect(a.versions.tapdiskOpenFailure).toBe('2011-06');
    expect(b.versions).toEqual({ ...a.versions, tapdiskOpenFailure: 'e403288' });
    expectOnlySwitchDiffers(BUGGY, FIXED, /^ {2}tapdisk-open-failure:|^ {4}- \{ domain: dom0/);
  });

  test('buggy: xl create fails and tapdisk2 dies of a use-after-free of the VBD (segfault line, oops event)', async () => {
    const r = await runScenario(scenarioFile(BUGGY), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.outcome).toBe('completed');
    expect(r.steps[0]!.error).toContain('cannot make domain');
    const log = dom0Log(r);
    expect(log.some((l) => /tapdisk2\[\d+\]: segfault: use-after-free of td_vbd_t \(minor 0\)/.test(l))).toBe(
      true,
    );
    const oops = r.trace.filter((e) => e.kind === 'oops');
    expect(oops).toHaveLength(1);
    expect(oops[0]!.fields).toMatchObject({ signal: 'SIGSEGV' });
    expect(
      r.trace.some((e) => e.kind === 'exit' && e.comp === 'proc' && e.fields?.signal === 'SIGSEGV'),
    ).toBe(true);
  }, 30_000);

  test('fixed: the rollback DETACH finds the VBD, tapdisk2 exits cleanly, nothing is left', async () => {
    const r = await runScenario(scenarioFile(FIXED), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.tapCtlList).toEqual([]);
    expect(r.trace.filter((e) => e.kind === 'oops')).toEqual([]);
    expect(r.trace.some((e) => e.comp === 'tapdisk' && e.kind === 'exit')).toBe(true);
  }, 30_000);

  test('one switch: the fixed file at 2011-06 fails its own log expectations', async () => {
    const { scenario: s } = loadRunnableScenario(scenarioFile(FIXED));
    const r = await runScenario(
      { ...s, versions: { ...s.versions, tapdiskOpenFailure: '2011-06' } },
      { engine: 'sim' },
    );
    expect(r.verdict).toBe('fail');
    expect(r.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual([
      'expect.log dom0 not-contains "segfault"',
      'expect.log dom0 not-contains "freed by the OPEN failure path"',
    ]);
  }, 30_000);
});

describe('C17: tapdisk aborts at exit on a connection accepted but not read (xapi 2012-07; 2132029 fixed)', () => {
  const BUGGY = 'c17-tapdisk-exit-with-unread-connection';
  const FIXED = 'c17-tapdisk-exit-with-unread-connection-fixed';

  test('the pair differs only in tapdisk-control-exit and the expected list and log', () => {
    const a = loadRunnableScenario(scenarioFile(BUGGY)).scenario;
    const b = loadRunnableScenario(scenarioFile(FIXED)).scenario;
    expect(a.versions.tapdiskControlExit).toBe('2012-07');
    expect(a.versions.tapdisk).toBe('xapi');
    expect(b.versions).toEqual({ ...a.versions, tapdiskControlExit: '2132029' });
    expect(a.seed).toBe(b.seed);
    expectOnlySwitchDiffers(BUGGY, FIXED, /^ {2}(tapdisk-control-exit|tap-ctl-list):|^ {4}- \{ domain: dom0/);
  });

  test('buggy: the assertion aborts tapdisk, the DETACH reply is lost, minor 0 stays allocated', async () => {
    const r = await runScenario(scenarioFile(BUGGY), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.tapCtlList).toEqual(['minor=0']);
    expect(dom0Log(r).some((l) => l.includes("Assertion 'conn->out.done' failed"))).toBe(true);
    const oops = r.trace.filter((e) => e.kind === 'oops');
    expect(oops).toHaveLength(1);
    expect(oops[0]!.fields).toMatchObject({ signal: 'SIGABRT' });
    // The DETACH went out; what came back was end of file, so tap-ctl destroy never reached FREE.
    const detach = r.trace.findIndex(
      (e) => e.comp === 'tap-ctl' && e.kind === 'send' && e.fields?.type === 'DETACH',
    );
    expect(detach).toBeGreaterThanOrEqual(0);
    expect(
      r.trace.some((e) => e.comp === 'tap-ctl' && e.kind === 'receive' && e.fields?.type === 'DETACH_RSP'),
    ).toBe(false);
  }, 30_000);

  test('fixed: the unread connection is dropped, the reply goes out, tap-ctl destroy frees the minor', async () => {
    const r = await runScenario(scenarioFile(FIXED), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.tapCtlList).toEqual([]);
    expect(r.trace.some((e) => e.comp === 'tapdisk' && e.kind === 'control-drop')).toBe(true);
    expect(r.trace.filter((e) => e.kind === 'oops')).toEqual([]);
  }, 30_000);

  test('another racing seed gives the same split; one switch flips it', async () => {
    const { scenario: s } = loadRunnableScenario(scenarioFile(BUGGY));
    const buggy = await runScenario(s, { engine: 'sim', seed: 5 });
    const fixed = await runScenario(
      { ...s, versions: { ...s.versions, tapdiskControlExit: '2132029' } },
      { engine: 'sim', seed: 5 },
    );
    expect(buggy.verdict).toBe('pass');
    expect(fixed.verdict).toBe('fail');
    expect(fixed.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual([
      'expect.tap-ctl-list',
      `expect.log dom0 contains "Assertion 'conn->out.done' failed"`,
    ]);
  }, 30_000);
});
