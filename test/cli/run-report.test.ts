// What `xenpv run` prints for real runs: --quiet keeps only the verdict, an expected oops is the run's
// expected ending and not a failure, and a run cut short by a deadlock says what it could not check.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { report, runCommand } from '../../emulator/cli/commands/run.js';
import { runScenario } from '../../emulator/scenario/run.js';
import { loadRunnableScenario } from '../../emulator/scenario/run-demo.js';
import { testTempDir } from '../temp-dirs.js';

/**
 * Deadlocks in its last step (a wait with no timeout for a key nobody writes), so the controller never
 * reads the end state.
 */
const DEADLOCK = join(testTempDir('cli-run-report'), 'deadlock-before-end-state.yaml');
writeFileSync(
  DEADLOCK,
  `name: deadlock-before-end-state
description: a guest boots, then the run waits forever for a xenstore key nobody writes
domains:
  - name: guest1
    memory: 16MiB
    disks:
      - format=raw, vdev=xvda, access=rw, target=disk.img
host:
  images:
    - name: disk.img
      size: 1MiB
      fill: zero
steps:
  - xl: create /etc/xen/guest1.cfg
  - wait: { xenstore: /local/domain/0/never-written, value: "1" }
expect:
  tap-ctl-list: []
  xenstore-absent: [/local/domain/0/backend/vbd/1]
  domains:
    running: [guest1]
`,
);

/** runCommand with its output captured (no colour). */
async function runCli(file: string, extra: { seed?: number; quiet?: boolean } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCommand(
    {
      file,
      engine: 'sim',
      timeScale: 0.01,
      ...(extra.seed !== undefined ? { seed: extra.seed } : {}),
      verbosity: extra.quiet ? 'quiet' : 'normal',
    },
    { out: (l) => out.push(l), err: (l) => err.push(l), colorLevel: 0 },
  );
  return { code, out, err };
}

describe('xenpv run --quiet', () => {
  test('a pass is the PASS line alone', async () => {
    const r = await runCli('scenarios/hello-grant.yaml', { quiet: true });
    expect(r).toEqual({ code: 0, out: ['PASS  hello-grant (0s virtual)'], err: [] });
  });

  test('a failure is the FAIL line and one line per problem: no timeline, stalls, steps or expectations', async () => {
    const quiet = await runCli(DEADLOCK, { quiet: true });
    expect(quiet).toEqual({
      code: 1,
      out: [
        'FAIL  deadlock-before-end-state: 4 problem(s)',
        '  - the run ended in a deadlock (see the stall chain; add `deadlock: true` under expect: if it is meant)',
        '  - expect.tap-ctl-list: not checked: the run ended in a deadlock before tap-ctl list could run',
        '  - expect.xenstore-absent /local/domain/0/backend/vbd/1: not checked: the run ended in a deadlock before /local/domain/0/backend/vbd/1 was read',
        "  - expect.domains.running: not checked: the run ended in a deadlock before the domains' states were read",
      ],
      err: [],
    });
    // The same problems the full report ends with, after the stalls, steps and expectations.
    const full = await runCli(DEADLOCK);
    expect(full.code).toBe(1);
    expect(full.out.slice(-quiet.out.length)).toEqual(quiet.out);
    for (const part of ['timeline', 'stalls', 'steps', 'expectations']) expect(full.out).toContain(part);
  });
});

describe('the report of a run', () => {
  test('a deadlock before the end state was read: "not checked", never "undefined" or a vacuous pass', async () => {
    const r = await runScenario(DEADLOCK);
    expect(r.outcome).toBe('deadlock');
    expect(r.end.unread).toEqual({
      ended: 'in a deadlock',
      parts: ['guest states', 'xenstore /local/domain/0/backend/vbd/1', 'tap-ctl list'],
    });
    const lines = report(r, 'normal', 0);
    expect(lines).toContain(
      '  ✗ expect.tap-ctl-list  not checked: the run ended in a deadlock before tap-ctl list could run',
    );
    // Unread, the path would have looked absent: the check must not pass on it.
    expect(lines).toContain(
      '  ✗ expect.xenstore-absent /local/domain/0/backend/vbd/1  not checked: the run ended in a deadlock before /local/domain/0/backend/vbd/1 was read',
    );
    expect(lines.filter((l) => l.includes('undefined'))).toEqual([]);
  });

  test('an oops expect.oops names is the expected ending: a ✓ line, no "run error", PASS', async () => {
    const r = await runScenario('scenarios/c9-disconnect-with-io-in-flight.yaml');
    expect({ outcome: r.outcome, expectedOops: r.expectedOops, verdict: r.verdict }).toEqual({
      outcome: 'error',
      expectedOops: true,
      verdict: 'pass',
    });
    const lines = report(r, 'normal', 0);
    const oops = lines.filter((l) => l.includes('expect.oops'));
    expect(oops).toHaveLength(1);
    expect(oops[0]).toMatch(
      /^ {2}✓ expect\.oops "BUG: unable to handle kernel paging request in make_response" {2}the run's expected ending: task dom0\/oops#\d+ failed: BUG: unable to handle kernel paging request in make_response/,
    );
    expect(lines.filter((l) => l.includes('run error'))).toEqual([]);
    expect(lines.at(-1)).toMatch(/^PASS {2}c9-disconnect-with-io-in-flight /);
  });

  test('the same oops without expect.oops is a run error and a FAIL', async () => {
    const { scenario } = loadRunnableScenario('scenarios/c9-disconnect-with-io-in-flight.yaml');
    const { oops: _oops, ...rest } = scenario.expect;
    const r = await runScenario({ ...scenario, expect: rest });
    expect({ expectedOops: r.expectedOops, verdict: r.verdict }).toEqual({
      expectedOops: false,
      verdict: 'fail',
    });
    const lines = report(r, 'normal', 0);
    expect(lines.filter((l) => l.startsWith('  ✗ run error: '))).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith('  - run error: '))).toHaveLength(1);
    expect(lines).toContain('FAIL  c9-disconnect-with-io-in-flight: 1 problem(s)');
  });
});
