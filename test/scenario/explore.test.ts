/**
 * `exploreScenario` on real scenarios: the exact set of teardown orderings that break (built from the
 * real stack: xl, blkback, blktap2, tapdisk2, tap-ctl, xenstored), seeds grouped into classes, the
 * systematic bound, and replays that reproduce a failing run byte for byte.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { parseReplay } from '../../emulator/cli/commands/run.js';
import { exploreScenario, failingClasses } from '../../emulator/scenario/explore.js';
import { replayCommand } from '../../emulator/scenario/explore-replay.js';
import { runScenario } from '../../emulator/scenario/run.js';
import { loadRunnableScenario, parseRunnableScenario } from '../../emulator/scenario/run-demo.js';
import { splitCommand } from '../../emulator/scenario/run-steps.js';

const dirs: string[] = [];
function tempDir(tag: string): string {
  const d = mkdtempSync(join(tmpdir(), `xenpv-explore-test-${tag}-`));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * A live guest's tap disk torn down by explicit, reorderable libxl-like steps: read the backend's
 * tapdisk-params (libxl needs them for the destroy), destroy the tapdisk with tap-ctl, remove the
 * backend directory. The modelled mechanism decides what breaks:
 * - tap-ctl destroy before the backend removal: DETACH blocks in ring release while blkback holds
 *   tapdev0, until tap-ctl's 5 s select() timeout; FREE_TAP is never sent, minor 0 leaks (§3.2-3.4);
 * - reading tapdisk-params after the backend removal: the node is gone (C1, read after delete).
 */
const TEARDOWN = `
name: teardown-orders
description: Explicit teardown steps of a live guest's tap disk, in every order.
seed: 1
versions:
  libxl: 4.2
  blktap-kernel: 2010-08
  tapdisk: xen-4.1
  blkback: 2013
  blkfront: 2016
host:
  images:
    - name: disk.img
      size: 4MiB
      fill: zero
domains:
  - name: guest1
    memory: 16MiB
    disks:
      - format=raw, vdev=xvda, access=rw, backendtype=tap, target=disk.img
steps:
  - xl: create /etc/xen/guest1.cfg
  - guest: guest1
    write: { disk: xvda, offset: 0, length: 64KiB, pattern: random:2012 }
  - xenstore-read: { path: /local/domain/0/backend/vbd/1/51712/tapdisk-params }
    label: read-params
    reorderable: true
  - tap-ctl: destroy -p 101 -m 0
    label: destroy
    reorderable: true
  - xenstore-rm: { path: /local/domain/0/backend/vbd/1/51712 }
    label: rm-backend
    reorderable: true
expect:
  stall: none
  tap-ctl-list: []
`;

/** The 2012 cycle as a class shows it (task ids stripped; pids kept, they are the processes'). */
const STALL_CHAIN = new RegExp(
  [
    String.raw`^dom0/tap-ctl\[\d+\] waits for tap-ctl select\(\) 5 s: DETACH_RSP from tapdisk (\d+)`,
    String.raw` -> dom0/tapdisk2\[\1\] waits for tapdev0 to have no openers`,
    String.raw` -> blkback vbd-1-51712 waits for removal of backend/vbd/1/51712 \(by the toolstack\)`,
    String.raw` \[broken by tap-ctl select\(\) timeout\]$`,
  ].join(''),
);

describe('explore --orderings on the teardown steps', () => {
  test('exactly the orders with destroy before rm-backend stall, exactly those with read-params after it fail to read', async () => {
    const { scenario } = parseRunnableScenario(TEARDOWN, 'teardown-orders.yaml');
    const report = await exploreScenario(scenario, { mode: 'orderings' });
    expect(report.runs).toBe(6);
    expect(report.orderings?.exhausted).toBe(true);
    expect(report.orderings?.groups).toEqual([
      { list: 'steps', start: 2, names: ['read-params', 'destroy', 'rm-backend'] },
    ]);
    const byOrder = new Map<string, string[]>();
    for (const c of report.classes) {
      for (const o of c.orderings ?? []) byOrder.set(o.replace(' (as written)', ''), c.cls.failed);
    }
    const stall = ['expect.stall: none', 'expect.tap-ctl-list', 'step destroy'];
    const readGone = ['step read-params'];
    expect(Object.fromEntries(byOrder)).toEqual({
      'read-params > destroy > rm-backend': stall,
      'read-params > rm-backend > destroy': [],
      'destroy > read-params > rm-backend': stall,
      'destroy > rm-backend > read-params': [...stall, ...readGone].sort(),
      'rm-backend > read-params > destroy': readGone,
      'rm-backend > destroy > read-params': readGone,
    });
    // The stall is the 2012 cycle, the same shape whichever order led to it.
    const stalled = report.classes.filter((c) => c.cls.failed.includes('expect.stall: none'));
    expect(stalled).toHaveLength(2);
    for (const c of stalled) {
      expect(c.cls.stalls).toHaveLength(1);
      expect(c.cls.stalls[0]).toMatch(STALL_CHAIN);
    }
    // Failing classes come first; the one pass is the libxl 4.2 order.
    expect(report.classes.at(-1)?.cls.verdict).toBe('pass');
    expect(failingClasses(report)).toHaveLength(3);
  }, 120_000);

  test('the generated scenario file replays the failing ordering with an identical trace', async () => {
    const { scenario } = parseRunnableScenario(TEARDOWN, 'teardown-orders.yaml');
    const workDir = tempDir('orders-work');
    const report = await exploreScenario(scenario, {
      mode: 'orderings',
      keepTraces: true,
      workDir,
      maxRuns: 2,
    });
    expect(report.orderings?.exhausted).toBe(false);
    const failing = failingClasses(report);
    expect(failing).toHaveLength(1);
    const outDir = tempDir('orders-out');
    const { command, files } = replayCommand(
      { file: 'teardown-orders.yaml', scenarioName: scenario.name, mode: 'orderings', outDir },
      failing[0],
      0,
    );
    expect(files).toEqual([join(outDir, 'teardown-orders.class1.yaml')]);
    expect(command).toBe(`xenpv run ${files[0]} --seed 1`);
    const [, , file, , seed] = splitCommand(command);
    const again = await runScenario(file, { seed: Number(seed), workDir });
    expect(again.verdict).toBe('fail');
    expect(JSON.stringify(again.trace)).toBe(JSON.stringify(failing[0].representative.trace));
  }, 120_000);
});

describe('explore --seeds and --systematic on hello-grant', () => {
  const hello = loadRunnableScenario('scenarios/hello-grant.yaml');

  test('--seeds: 25 different schedules, one pass class', async () => {
    const report = await exploreScenario(hello.scenario, {
      mode: 'seeds',
      seeds: 25,
      seed: 1,
      ...(hello.demo ? { demo: hello.demo } : {}),
    });
    expect(report.runs).toBe(25);
    expect(report.seeds).toEqual({ first: 1, count: 25 });
    expect(report.classes.map((c) => [c.description, c.count])).toEqual([['pass', 25]]);
    const rep = report.classes[0].representative;
    expect(rep.seed).toBeGreaterThanOrEqual(1);
    expect(rep.seed).toBeLessThanOrEqual(25);
  }, 60_000);

  test('--systematic: bound 0 runs one schedule, bound 1 more, and both exhaust the space', async () => {
    const opts = { mode: 'systematic' as const, ...(hello.demo ? { demo: hello.demo } : {}) };
    const b0 = await exploreScenario(hello.scenario, { ...opts, bound: 0 });
    expect(b0.runs).toBe(1);
    expect(b0.systematic).toMatchObject({ bound: 0, exhausted: true, probes: 0, pending: 0 });
    expect(b0.classes[0].representative.choices.every((c) => c === 0)).toBe(true);
    const b1 = await exploreScenario(hello.scenario, { ...opts, bound: 1 });
    expect(b1.runs).toBeGreaterThan(b0.runs);
    expect(b1.systematic?.exhausted).toBe(true);
    expect(b1.classes.every((c) => c.cls.verdict === 'pass')).toBe(true);
    // A cap cuts the search short and says so.
    const capped = await exploreScenario(hello.scenario, { ...opts, bound: 1, maxRuns: 3 });
    expect(capped.systematic?.exhausted).toBe(false);
    expect((capped.systematic?.probes ?? 0) + capped.runs).toBe(3);
  }, 120_000);
});

describe('replaying a systematic run', () => {
  test('--seed S --replay CHOICES reproduces the run byte for byte', async () => {
    const { scenario } = parseRunnableScenario(TEARDOWN.replace(/\n +reorderable: true/g, ''), 't.yaml');
    const workDir = tempDir('sys-work');
    const report = await exploreScenario(scenario, {
      mode: 'systematic',
      bound: 1,
      maxRuns: 4,
      keepTraces: true,
      workDir,
    });
    const c = failingClasses(report)[0];
    expect(c.cls.failed).toContain('expect.stall: none');
    const outDir = tempDir('sys-out');
    const { command } = replayCommand(
      { file: 't.yaml', scenarioName: scenario.name, mode: 'systematic', outDir },
      c,
      0,
    );
    // Long lists go to a file read by the shell: --replay "$(cat FILE)".
    const m = /^xenpv run t\.yaml --seed (\d+) --replay "\$\(cat (\S+)\)"$/.exec(command);
    expect(m).not.toBeNull();
    const { readFileSync } = await import('node:fs');
    const replay = parseReplay(readFileSync(m![2], 'utf8'));
    expect(replay).toEqual(c.representative.choices);
    const again = await runScenario(scenario, { seed: Number(m![1]), replay, workDir });
    expect(JSON.stringify(again.trace)).toBe(JSON.stringify(c.representative.trace));
  }, 120_000);
});

describe('explore --jobs: runs on worker threads give the report one thread gives', () => {
  /** The report without its timings, and with every work dir (each worker has its own) named alike. */
  const comparable = ({ elapsedMs, runsPerSecond, ...rest }: Awaited<ReturnType<typeof exploreScenario>>) =>
    JSON.stringify(rest).replace(/xenpv-[^/"]*\//g, 'xenpv-WORKDIR/');

  test('orderings, traces kept: the same classes, representatives and traces byte for byte', async () => {
    const { scenario } = parseRunnableScenario(TEARDOWN, 'teardown-orders.yaml');
    const one = await exploreScenario(scenario, { mode: 'orderings', keepTraces: true });
    const two = await exploreScenario(scenario, { mode: 'orderings', keepTraces: true, jobs: 2 });
    expect(two.runs).toBe(6);
    expect(failingClasses(two)).toHaveLength(3);
    expect(comparable(two)).toBe(comparable(one));
  }, 120_000);

  test('seeds with a demo block: the same report, in seed order', async () => {
    const hello = loadRunnableScenario('scenarios/hello-grant.yaml');
    const options = {
      mode: 'seeds',
      seeds: 12,
      seed: 5,
      ...(hello.demo ? { demo: hello.demo } : {}),
    } as const;
    const one = await exploreScenario(hello.scenario, options);
    const progress: number[] = [];
    const three = await exploreScenario(hello.scenario, {
      ...options,
      jobs: 3,
      progress: (p) => progress.push(p.done),
    });
    expect(progress).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(comparable(three)).toBe(comparable(one));
  }, 120_000);

  test('--jobs 0 is refused', async () => {
    const hello = loadRunnableScenario('scenarios/hello-grant.yaml');
    await expect(exploreScenario(hello.scenario, { mode: 'seeds', seeds: 1, jobs: 0 })).rejects.toThrow(
      '--jobs must be a whole number >= 1, got 0',
    );
  });
});
