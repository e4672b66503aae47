/**
 * The backend catalogue (teardown.md §4, blkback): each buggy/fixed pair runs in the sim engine; both
 * verdicts pass, and the observation that tells them apart is asserted here as well.
 */
import { describe, expect, test } from 'vitest';
import { runScenario } from '../../emulator/scenario/run.js';
import { loadRunnableScenario } from '../../emulator/scenario/run-demo.js';

const file = (name: string) => new URL(`../../scenarios/${name}.yaml`, import.meta.url).pathname;

const writeStep = (r: Awaited<ReturnType<typeof runScenario>>) =>
  r.steps.find((s) => s.description.startsWith('guest1: write xvda'))!;

describe('C7: blkback disconnect on frontend Closing (6f5986bce558)', () => {
  test('2012: the write issued during the detach is lost and fails only at the forced removal', async () => {
    const r = await runScenario(file('c7-blkback-disconnect-on-closing'), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    const w = writeStep(r);
    expect(w.status).toBe('tolerated');
    expect(w.error).toMatch(/EIO/);
    expect(w.end - w.start).toBeGreaterThanOrEqual(9000);
  }, 30_000);

  test('2013: the same write is served at once', async () => {
    const r = await runScenario(file('c7-blkback-disconnect-on-closing-fixed'), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    const w = writeStep(r);
    expect(w.status).toBe('ok');
    expect(w.end - w.start).toBeLessThan(100);
  }, 30_000);

  test('the two files differ only in the blkback version', () => {
    const a = loadRunnableScenario(file('c7-blkback-disconnect-on-closing')).scenario;
    const b = loadRunnableScenario(file('c7-blkback-disconnect-on-closing-fixed')).scenario;
    expect(a.versions).toEqual({ ...b.versions, blkback: '2012' });
    expect(b.versions.blkback).toBe('2013');
    const strip = (s: typeof a) => JSON.stringify(s.steps, (k, v) => (k === 'at' ? undefined : v));
    expect(strip(a)).toBe(strip(b));
  });

  test('one switch, 2012 -> 2013, on the buggy file: the data check fails because the write landed', async () => {
    const { scenario: s } = loadRunnableScenario(file('c7-blkback-disconnect-on-closing'));
    const r = await runScenario({ ...s, versions: { ...s.versions, blkback: '2013' } }, { engine: 'sim' });
    expect(r.verdict).toBe('fail');
    expect(r.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['expect.data disk.img 65536@0']);
  }, 30_000);
});
