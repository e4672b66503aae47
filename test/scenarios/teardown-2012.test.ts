/**
 * The 2012 scenario set end to end: each file runs in the sim engine with its verdict and the facts
 * behind it asserted here as well (stalls, `tap-ctl list`, how long the destroy took), and again in the
 * threads engine with the same verdict and the same stall chains
 * once task ids are stripped. Threads runs at time scale 0.1: the 5 s select() is 500 ms of real time.
 */
import { describe, expect, test } from 'vitest';
import { chainVerdict } from '../../emulator/runtime/waitgraph.js';
import { type RunScenarioResult, runScenario } from '../../emulator/scenario/run.js';
import { loadRunnableScenario } from '../../emulator/scenario/run-demo.js';
import { testTempDir } from '../temp-dirs.js';
import { THREADS_TIME_SCALE, THREADS_WATCHDOG_MS } from '../threads-time.js';
import { scenarioFile } from './catalogue-files.js';

const SELECT_TIMEOUT = 'tap-ctl select() timeout';

interface Expected {
  /** Stalls broken by tap-ctl's select() timeout. */
  selectStalls: number;
  tapCtlList: string[];
  /** Bounds on each "wait for guest1 to be dead" (xl's daemon destroying the guest), virtual ms. */
  destroyAtLeast?: number;
  /**
   * "At once": checked in sim, where the destroy takes no virtual time unless something waits. In
   * threads virtual time includes host time, so there the scenario's at-most bound is only reported.
   */
  destroyAtOnce?: boolean;
}

const SET: Array<[string, Expected]> = [
  ['blktap2-teardown-deadlock', { selectStalls: 1, tapCtlList: ['minor=0'], destroyAtLeast: 5000 }],
  ['blktap2-teardown-cycles', { selectStalls: 3, tapCtlList: ['minor=0', 'minor=2'], destroyAtLeast: 5000 }],
  ['blktap2-teardown-fixed', { selectStalls: 0, tapCtlList: [], destroyAtOnce: true }],
  ['blktap2-reply-before-teardown', { selectStalls: 0, tapCtlList: ['minor=0'], destroyAtOnce: true }],
  ['blktap2-teardown-xend', { selectStalls: 0, tapCtlList: [], destroyAtOnce: true }],
  ['blktap2-teardown-2010-06', { selectStalls: 0, tapCtlList: [], destroyAtOnce: true }],
];

function destroySteps(r: RunScenarioResult) {
  return r.steps.filter((s) => s.description === 'wait for guest1 to be dead');
}

/** In threads virtual time is host time divided by the time scale (upper time bounds are not asserted). */
const THREADS = {
  engine: 'threads',
  timeScale: THREADS_TIME_SCALE,
  watchdogMs: THREADS_WATCHDOG_MS,
} as const;

function assertFacts(r: RunScenarioResult, want: Expected): void {
  expect(r.failures).toEqual([]);
  expect(r.verdict).toBe('pass');
  expect(r.outcome).toBe('completed');
  expect(r.stalls.filter((s) => s.brokenBy?.timer === SELECT_TIMEOUT)).toHaveLength(want.selectStalls);
  expect(r.tapCtlList).toEqual(want.tapCtlList);
  const destroys = destroySteps(r);
  expect(destroys.length).toBeGreaterThan(0);
  for (const d of destroys) {
    if (want.destroyAtLeast !== undefined)
      expect(d.end - d.start).toBeGreaterThanOrEqual(want.destroyAtLeast);
    if (want.destroyAtOnce && r.engine === 'sim') {
      expect(d.end - d.start).toBeLessThan(1000);
      expect(d.unasserted).toBeUndefined();
    }
    if (want.destroyAtOnce && r.engine === 'threads') {
      expect(d.unasserted).toBe(
        'expect-elapsed at most 4s: not asserted in threads, where virtual time includes host time (it holds exactly in sim)',
      );
    }
  }
  expect(r.end.guestStates).toEqual({ guest1: 'dead' });
}

const verdicts = (r: RunScenarioResult) => r.stalls.map((s) => chainVerdict(s));

describe('the 2012 scenario set, sim and threads', () => {
  test.each(SET)(
    '%s',
    async (name, want) => {
      const sim = await runScenario(scenarioFile(name), { engine: 'sim' });
      assertFacts(sim, want);
      const threads = await runScenario(scenarioFile(name), THREADS);
      assertFacts(threads, want);
      expect(verdicts(threads)).toEqual(verdicts(sim));
      expect(threads.checks.map((c) => [c.name, c.ok])).toEqual(sim.checks.map((c) => [c.name, c.ok]));
    },
    60_000,
  );
});

describe('the deadlock scenario', () => {
  test('its stall is the cycle xl -> tapdisk2 -> blkback -> toolstack, broken by the select() timeout', async () => {
    const r = await runScenario(scenarioFile('blktap2-teardown-deadlock'), { engine: 'sim' });
    expect(r.stalls).toHaveLength(1);
    const stall = r.stalls[0]!;
    expect(chainVerdict(stall)).toEqual({
      cycle: true,
      links: [
        { holder: 'dom0/xl[102]', waitsFor: 'tap-ctl select() 5 s: DETACH_RSP from tapdisk 101' },
        { holder: 'dom0/tapdisk2[101]', waitsFor: 'tapdev0 to have no openers' },
        { holder: 'blkback vbd-1-51712', waitsFor: 'removal of backend/vbd/1/51712 (by the toolstack)' },
        { holder: 'toolstack', waitsFor: 'tap-ctl select() 5 s: DETACH_RSP from tapdisk 101' },
      ],
    });
    expect(stall.brokenBy?.timer).toBe(SELECT_TIMEOUT);
    expect(stall.brokenBy!.at - stall.at).toBe(5000);
  }, 30_000);

  test('one switch, libxl 4.1 -> 4.2, and the verdict changes: no stall, no orphan', async () => {
    const { scenario: s } = loadRunnableScenario(scenarioFile('blktap2-teardown-deadlock'));
    const fixed = { ...s, versions: { ...s.versions, libxl: '4.2' as const } };
    const r = await runScenario(fixed, { engine: 'sim' });
    expect(r.verdict).toBe('fail');
    expect(r.stalls).toEqual([]);
    expect(r.tapCtlList).toEqual([]);
    const failed = r.checks.filter((c) => !c.ok).map((c) => c.name);
    expect(failed).toEqual(['expect.stall', 'expect.tap-ctl-list']);
    expect(r.failures).toContainEqual(
      expect.stringMatching(
        /^step steps\[3\] \(wait for guest1 to be dead\) failed: took 0s, expected at least 5s$/,
      ),
    );
  }, 30_000);

  test('same seed, same work dir: the same trace, byte for byte', async () => {
    const workDir = testTempDir('determinism');
    const a = await runScenario(scenarioFile('blktap2-teardown-deadlock'), {
      engine: 'sim',
      seed: 5,
      workDir,
    });
    const b = await runScenario(scenarioFile('blktap2-teardown-deadlock'), {
      engine: 'sim',
      seed: 5,
      workDir,
    });
    expect(a.trace.length).toBeGreaterThan(100);
    expect(JSON.stringify(b.trace)).toBe(JSON.stringify(a.trace));
    expect(b.choices).toEqual(a.choices);
  }, 30_000);
});
