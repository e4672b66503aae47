import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { exploreCommand, ProgressReporter } from '../../emulator/cli/commands/explore.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'xenpv-cli-explore-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs `xenpv ARGS` from source in a child process with pipes (no TTY). */
function xenpv(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const script =
    "const { main } = await import('./emulator/cli/main.ts'); process.exitCode = await main(process.argv.slice(1));";
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script, ...args],
      { cwd: root, env: { ...process.env, FORCE_COLOR: undefined, NO_COLOR: undefined }, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l), colorLevel: 0 as const },
  };
}

const base = { systematic: false, orderings: false, json: false };

/** A scenario whose written order fails: the read comes after the node is removed. */
const RACE = `name: read-after-rm
description: A read that fails when it runs after the remove.
steps:
  - xenstore-write: { path: /local/domain/0/t, value: 1 }
  - xenstore-read: { path: /local/domain/0/t }
    label: read
    reorderable: true
  - xenstore-rm: { path: /local/domain/0/t }
    label: rm
    reorderable: true
`;

describe('xenpv explore', () => {
  test('--help lists the searches and options', async () => {
    const r = await xenpv(['explore', '--help']);
    expect(r.code).toBe(0);
    for (const o of [
      '--seeds',
      '--systematic',
      '--preemptions',
      '--orderings',
      '--max-runs',
      '--jobs',
      '--json',
      '--out',
    ])
      expect(r.stdout).toContain(o);
  });

  test.each([
    [['--seeds', '3', '--systematic'], /--seeds, --systematic and --orderings exclude each other/],
    [['--preemptions', '1'], /--preemptions bounds --systematic/],
    [['--seeds', '0'], /--seeds must be a whole number >= 1, got 0/],
    [['--systematic', '--preemptions', '-1'], /--preemptions must be a whole number >= 0, got -1/],
    [['--max-runs', '5'], /--max-runs caps --systematic or --orderings/],
    [['--jobs', '0'], /--jobs must be a whole number >= 1, got 0/],
    [['--systematic', '--jobs', '2'], /--jobs does not apply to --systematic/],
  ])('bad options %j exit 2 with the reason', async (args, message) => {
    const c = capture();
    const code = await exploreCommand({ ...base, file: 'scenarios/hello-grant.yaml', ...parse(args) }, c.io);
    expect(code).toBe(2);
    expect(c.err.join('\n')).toMatch(message);
    expect(c.out).toEqual([]);
  });

  test('a missing file and a scenario without reorderable steps exit 2', async () => {
    const missing = await xenpv(['explore', 'no/such.yaml']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no\/such\.yaml: cannot read the scenario file \(ENOENT\)/);
    const c = capture();
    const code = await exploreCommand({ ...base, file: 'scenarios/hello-grant.yaml', orderings: true }, c.io);
    expect(code).toBe(2);
    expect(c.err.join('\n')).toMatch(/hello-grant: no reorderable steps to permute/);
  });

  test('--seeds on a passing scenario: exit 0, one pass class', async () => {
    const r = await xenpv(['explore', 'scenarios/hello-grant.yaml', '--seeds', '5']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^explore hello-grant: 5 run\(s\) \(seeds 1\.\.5\)/);
    expect(r.stdout).toMatch(/^✓ pass {2}5 run\(s\)$/m);
    expect(r.stdout).toMatch(/^PASS/m);
    expect(r.stdout).not.toMatch(/\x1b\[/);
  }, 120_000);

  test('--orderings --json: exit 1, the failing ordering and a replay file that xenpv run fails the same way', async () => {
    const file = join(tmp, 'race.yaml');
    writeFileSync(file, RACE);
    const out = join(tmp, 'out');
    const c = capture();
    const code = await exploreCommand({ ...base, file, orderings: true, json: true, out }, c.io);
    expect(code).toBe(1);
    const j = JSON.parse(c.out.join('\n'));
    expect(j).toMatchObject({ scenario: 'read-after-rm', mode: 'orderings', runs: 2, seed: 1 });
    expect(j.classes.map((k: { verdict: string; orderings: string[] }) => [k.verdict, k.orderings])).toEqual([
      ['fail', ['rm > read']],
      ['pass', ['read > rm (as written)']],
    ]);
    expect(j.classes[0].failed).toEqual(['step read']);
    const replay = join(out, 'read-after-rm.class1.yaml');
    expect(j.classes[0].replay).toBe(`xenpv run ${replay} --seed 1`);
    expect(j.classes[1].replay).toBeUndefined();
    expect(readFileSync(replay, 'utf8')).toMatch(/label: rm\n[\s\S]*label: read\n/);
    const again = await xenpv(['run', replay, '--seed', '1', '--quiet']);
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(
      /step steps\[2\] \(xenstore-read \/local\/domain\/0\/t\) failed: \/local\/domain\/0\/t does not exist/,
    );
  }, 120_000);

  test('--systematic text report: coverage line and the replay command', async () => {
    const file = join(tmp, 'race2.yaml');
    writeFileSync(
      file,
      // Written order, no reorderable steps; the read expects a value never written.
      RACE.replace(/\n +reorderable: true/g, '').replace(
        '{ path: /local/domain/0/t }',
        '{ path: /local/domain/0/t, expect: 2 }',
      ),
    );
    const c = capture();
    const code = await exploreCommand(
      { ...base, file, systematic: true, preemptions: 0, out: join(tmp, 'o2') },
      c.io,
    );
    expect(code).toBe(1);
    const text = c.out.join('\n');
    expect(text).toMatch(/^✗ fail: step read {2}1 run\(s\)$/m);
    expect(text).toMatch(/shortest: 0 preemption\(s\), \d+ choice\(s\)/);
    expect(text).toMatch(/replay: xenpv run \S+race2\.yaml --seed 1 --replay [0,]+$/m);
    expect(text).toMatch(
      /^coverage: 1 schedule\(s\) with at most 0 preemption\(s\); the bound exhausted the space$/m,
    );
    expect(text).toMatch(/^FAIL {2}1 of 1 run\(s\) failed$/m);
  }, 60_000);
});

describe('progress', () => {
  test('a TTY gets a rewritten bar, a pipe gets plain lines, both throttled', () => {
    let t = 0;
    const tty: string[] = [];
    const p = new ProgressReporter({ isTTY: true, write: (s) => tty.push(s) }, () => t, 'explore x');
    p.update({ done: 1, total: 4, classes: 1, failingRuns: 0 });
    t = 50;
    p.update({ done: 2, total: 4, classes: 1, failingRuns: 0 }); // throttled
    t = 200;
    p.update({ done: 2, total: 4, classes: 2, failingRuns: 1 });
    p.done();
    expect(tty).toEqual([
      '\r\x1b[2Kexplore x [######..................] 1/4 runs, 1 class(es), 0 failing',
      '\r\x1b[2Kexplore x [############............] 2/4 runs, 2 class(es), 1 failing',
      '\r\x1b[2K',
    ]);
    const plain: string[] = [];
    t = 0;
    const q = new ProgressReporter({ isTTY: false, write: (s) => plain.push(s) }, () => t, 'explore x');
    q.update({ done: 1, classes: 1, failingRuns: 0 });
    t = 1000;
    q.update({ done: 2, classes: 1, failingRuns: 0 });
    t = 2500;
    q.update({ done: 3, classes: 1, failingRuns: 0 });
    q.done();
    expect(plain).toEqual([
      'explore x: 1 runs, 1 class(es), 0 failing\n',
      'explore x: 3 runs, 1 class(es), 0 failing\n',
    ]);
  });
});

/** The few options the table uses, as yargs would give them. */
function parse(args: string[]) {
  const o: Record<string, unknown> = {};
  for (let i = 0; i < args.length; i++) {
    const name = args[i].slice(2).replace(/-(\w)/g, (_, ch: string) => ch.toUpperCase());
    if (args[i + 1] !== undefined && !args[i + 1].startsWith('--')) o[name] = Number(args[++i]);
    else o[name] = true;
  }
  return o;
}
