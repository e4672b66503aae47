// The residual race of the fixed order (teardown.md §2): libxl 4.2 reproduces the 2012 cycle under a
// stalled xenwatch; xend, which waits for udev's cleanup of the backend before tap-ctl destroy, does not.
import { describe, expect, test } from 'vitest';
import { chainVerdict } from '../../emulator/runtime/waitgraph.js';
import { runScenario } from '../../emulator/scenario/run.js';
import { loadRunnableScenario } from '../../emulator/scenario/run-demo.js';
import { scenarioFile } from './catalogue-files.js';

describe('residual race: libxl 4.2 vs xend under a 7 s xenwatch stall', () => {
  test('the pair differs only in the toolstack', () => {
    const a = loadRunnableScenario(scenarioFile('residual-race-42')).scenario;
    const b = loadRunnableScenario(scenarioFile('residual-race-xend')).scenario;
    expect(a.versions.libxl).toBe('4.2');
    expect(b.versions).toEqual({ ...a.versions, libxl: 'xend' });
    expect(a.seed).toBe(b.seed);
  });

  test('4.2: tapdisk blocked on blkback, blkback on the stalled xenwatch; the select() timeout breaks it, minor 0 orphaned', async () => {
    const r = await runScenario(scenarioFile('residual-race-42'), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.stalls).toHaveLength(1);
    const links = chainVerdict(r.stalls[0]!).links.map((l) => l.waitsFor);
    expect(links[0]).toMatch(/DETACH_RSP from tapdisk/);
    expect(links).toContain('tapdev0 to have no openers');
    expect(r.stalls[0]!.brokenBy?.timer).toBe('tap-ctl select() timeout');
    expect(r.tapCtlList).toEqual(['minor=0']);
  }, 30_000);

  test('xend: no stall, no orphan; tap-ctl destroy only after the remove uevent and the cleanup script', async () => {
    const r = await runScenario(scenarioFile('residual-race-xend'), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.stalls).toEqual([]);
    expect(r.tapCtlList).toEqual([]);
    const at = (pred: (e: (typeof r.trace)[number]) => boolean) => r.trace.findIndex(pred);
    const unregister = at((e) => e.kind === 'device-unregister' && e.fields?.node === 'backend/vbd/1/51712');
    const remove = at((e) => e.comp === 'uevent' && e.kind === 'remove');
    const cleanup = at((e) => e.comp === 'hotplug' && e.kind === 'run' && e.fields?.command === 'cleanup');
    const destroy = at((e) => e.comp === 'libxl' && String(e.fields?.op).startsWith('tap-ctl destroy'));
    expect(unregister).toBeGreaterThanOrEqual(0);
    expect([unregister < remove, remove < cleanup, cleanup < destroy]).toEqual([true, true, true]);
    // The stall delays the destroy by its 7 s and no more.
    const stepTime = r.trace[destroy]!.t - r.trace[unregister]!.t;
    expect(stepTime).toBe(0);
    expect(r.trace[unregister]!.t).toBeGreaterThanOrEqual(7000);
  }, 30_000);
});
