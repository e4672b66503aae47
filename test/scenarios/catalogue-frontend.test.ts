/**
 * The frontend / grant-layer entries of the scenario catalogue (teardown.md §4 C11, C14), each pair in
 * the sim engine: the buggy file passes with the failure expected, the fixed file passes with it
 * absent, and the steps of the two files are the same (only the version switch and the expectations
 * differ).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { runScenario } from '../../emulator/scenario/run.js';
import { loadRunnableScenario } from '../../emulator/scenario/run-demo.js';
import { describeThreadsVerdicts, scenarioFile } from './catalogue-files.js';

/** The `steps:` block of a scenario file, comments dropped: what both files of a pair must share. */
function stepsText(name: string): string {
  const text = readFileSync(scenarioFile(name), 'utf8');
  const from = text.indexOf('\nsteps:\n');
  const to = text.indexOf('\nexpect:\n');
  return text
    .slice(from, to)
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('#'))
    .join('\n');
}

function guestLog(r: Awaited<ReturnType<typeof runScenario>>, domid = 1): string[] {
  return r.dmesg[domid] ?? [];
}

describe('C14: backend Connected before the handshake (c31ecf6c126d)', () => {
  const BUGGY = 'c14-connected-before-handshake';
  const FIXED = 'c14-connected-before-handshake-fixed';

  test('the pair differs only in blkfront-connect (and the outcome its last step waits for)', () => {
    const a = loadRunnableScenario(scenarioFile(BUGGY)).scenario;
    const b = loadRunnableScenario(scenarioFile(FIXED)).scenario;
    expect(a.versions.blkfrontConnect).toBe('direct');
    expect(b.versions).toEqual({ ...a.versions, blkfrontConnect: 'handshake-first' });
    // Each file ends by waiting for its own outcome (a timed wait would be host time in threads).
    const withoutLast = (text: string) => text.slice(0, text.lastIndexOf('\n  - wait: '));
    expect(withoutLast(stepsText(FIXED))).toBe(withoutLast(stepsText(BUGGY)));
    expect(a.steps.at(-1)).toMatchObject({
      kind: 'wait',
      wait: { kind: 'domain', domain: 'guest1', state: 'shutdown' },
    });
    expect(b.steps.at(-1)).toMatchObject({
      kind: 'wait',
      wait: { kind: 'xenstore', path: '/local/domain/1/device/vbd/51712/state', value: '4' },
    });
    expect(a.steps.length).toBe(b.steps.length);
  });

  test('buggy: blkfront_connect without a ring oopses in xenwatch and the guest panics', async () => {
    const r = await runScenario(scenarioFile(BUGGY), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.outcome).toBe('completed');
    const log = guestLog(r);
    const bug = log.findIndex((l) => l.includes('BUG: unable to handle kernel NULL pointer dereference'));
    expect(bug).toBeGreaterThanOrEqual(0);
    expect(log[bug + 1]).toContain('blkfront_setup_indirect: xvda: rinfo->shadow is not allocated');
    expect(log.slice(bug).some((l) => l.includes('Kernel panic - not syncing: Fatal exception'))).toBe(true);
    const oops = r.trace.filter((e) => e.kind === 'oops');
    expect(oops).toHaveLength(1);
    expect(oops[0]).toMatchObject({ dom: 1, comp: 'blkfront' });
    // It happened on the first backend state blkfront saw after the re-plug: Connected.
    const seen = r.trace.filter((e) => e.kind === 'backend-state' && e.t >= oops[0]!.t - 1);
    expect(seen.at(-1)?.fields?.state).toBe('Connected');
    expect(r.end.guestStates).toEqual({ guest1: 'shutdown' });
  }, 30_000);

  test('fixed: talk_to_blkback first, then Connected; no oops, the guest keeps running', async () => {
    const r = await runScenario(scenarioFile(FIXED), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.trace.some((e) => e.kind === 'oops')).toBe(false);
    const states = r.trace
      .filter((e) => e.dom === 1 && e.kind === 'xenbus-state')
      .map((e) => `${e.fields?.from}->${e.fields?.to}`);
    // First connection, then the re-plug: the same two steps again, after Connected was seen first.
    expect(states).toEqual([
      'Initialising->Initialised',
      'Initialised->Connected',
      'Initialising->Initialised',
      'Initialised->Connected',
    ]);
    expect(r.end.guestStates).toEqual({ guest1: 'running' });
  }, 30_000);
});

describe('C11: grants revoked while blkback still maps them (XSA-396, abf1fd5919d6)', () => {
  const BUGGY = 'c11-grant-revoked-while-mapped';
  const FIXED = 'c11-grant-revoked-while-mapped-fixed';

  test('the pair differs only in blkfront-grant-revoke', () => {
    const a = loadRunnableScenario(scenarioFile(BUGGY)).scenario;
    const b = loadRunnableScenario(scenarioFile(FIXED)).scenario;
    expect(a.versions.blkfrontGrantRevoke).toBe('query-then-end');
    expect(b.versions).toEqual({ ...a.versions, blkfrontGrantRevoke: 'try-end' });
    expect(stepsText(FIXED)).toBe(stepsText(BUGGY));
  });

  test('buggy: blkback writes the late read and its response into frames the guest freed', async () => {
    const r = await runScenario(scenarioFile(BUGGY), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    const log = guestLog(r);
    // The unplug could not revoke what blkback maps and deferred the refs alone.
    expect(log.some((l) => /deferring g\.e\. 0x[0-9a-f]+$/.test(l))).toBe(true);
    const corrupt = r.trace.filter((e) => e.dom === 1 && e.kind === 'oops');
    expect(corrupt.length).toBeGreaterThanOrEqual(17);
    expect(corrupt.every((e) => e.fields?.bug === 'pagealloc: memory corruption')).toBe(true);
    // 16 data pages written whole with the image's bytes, and the ring page: rsp_prod (offset 8) up to
    // the end of the first response slot.
    expect(
      corrupt.filter((e) => e.fields?.first === 0 && e.fields?.last === 0xfff).length,
    ).toBeGreaterThanOrEqual(15);
    expect(corrupt.some((e) => e.fields?.first === 8 && e.fields?.last === 0x4b)).toBe(true);
    // The corruption is found only after blkback completed the read (50 ms after it was issued).
    const done = r.trace.find(
      (e) => e.kind === 'blk-req' && e.fields?.phase === 'end' && e.fields?.op === 'read',
    );
    expect(done).toBeDefined();
    expect(corrupt[0]!.t).toBeGreaterThan(done!.t);
  }, 30_000);

  test('fixed: the frames stay surrendered until revoked; no corruption', async () => {
    const r = await runScenario(scenarioFile(FIXED), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.trace.some((e) => e.kind === 'oops')).toBe(false);
    // Deferred with their page (the pfn is named), so the page cannot be reused.
    expect(guestLog(r).some((l) => /deferring g\.e\. 0x[0-9a-f]+ \(pfn 0x[0-9a-f]+\)/.test(l))).toBe(true);
  }, 30_000);
});

// C14 runs here too: its steps wait for the guest to have unregistered the old xvda (whose last act is a
// switch to Closed) before re-creating the frontend directory, and write `state` last, so the threads
// engine's real-time interleavings cannot make the re-created device read Closed or half-written.
describeThreadsVerdicts('the frontend catalogue in the threads engine: the same verdicts as in sim', [
  'c11-grant-revoked-while-mapped',
  'c11-grant-revoked-while-mapped-fixed',
  'c14-connected-before-handshake',
  'c14-connected-before-handshake-fixed',
]);
