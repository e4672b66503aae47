// Uses the package by its name, as a user's vitest test does (vitest.config.ts maps it to the sources).
import { describe, expect, it } from 'vitest';
import { runScenario } from 'xenpv/testing';

describe("import { runScenario } from 'xenpv/testing'", () => {
  it('runs hello-grant: pass, no stall, both guests dead', async () => {
    const r = await runScenario('scenarios/hello-grant.yaml', { engine: 'sim', seed: 1 });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.outcome).toBe('completed');
    expect(r.stalls).toEqual([]);
    expect(r.end.guestStates).toEqual({ ping: 'dead', pong: 'dead' });
  });

  it('runs the 2012 teardown deadlock: the stall cycle broken by the select() timeout, minor 0 orphaned', async () => {
    const r = await runScenario('scenarios/blktap2-teardown-deadlock.yaml', { engine: 'sim', seed: 1 });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.stalls).toHaveLength(1);
    const [stall] = r.stalls;
    expect(stall.cycle).toBe(true);
    expect(stall.brokenBy?.timer).toBe('tap-ctl select() timeout');
    expect(stall.chain.map((l) => l.waitsFor)).toEqual([
      expect.stringContaining('DETACH_RSP from tapdisk'),
      'tapdev0 to have no openers',
      expect.stringContaining('removal of backend/vbd/1/51712'),
      expect.stringContaining('DETACH_RSP from tapdisk'),
    ]);
    expect(stall.chain.map((l) => l.holder)).toEqual([
      expect.stringMatching(/^dom0\/xl\[\d+\]#\d+$/),
      expect.stringMatching(/^dom0\/tapdisk2\[\d+\]$/),
      'blkback vbd-1-51712',
      'toolstack',
    ]);
    expect(r.tapCtlList).toEqual(['minor=0']);
    expect(r.end.guestStates).toEqual({ guest1: 'dead' });
  });
});
