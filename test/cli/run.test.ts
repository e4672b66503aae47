import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Runs `xenpv ARGS` from source in a child process with pipes (no TTY). */
function xenpv(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const script =
    "const { main } = await import('./emulator/cli/main.ts'); process.exitCode = await main(process.argv.slice(1));";
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script, ...args],
      {
        cwd: root,
        env: { ...process.env, FORCE_COLOR: undefined, NO_COLOR: undefined, ...env },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('xenpv run', () => {
  test('hello-grant: exit 0, the timeline of grant, map, events, unmap and end of access, plain text', async () => {
    const r = await xenpv(['run', 'scenarios/hello-grant.yaml']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const pattern of [
      /ping +offer#\d+ +hello +grant +ref=8 mfn=\d+ to=2/,
      /pong +accept#\d+ +hello +map +ref=8 from=1 handle=0/,
      /ping +exchange#\d+ +hello +send +port=1 seq=1 text="ping 1"/,
      /pong +upcall#\d+ +hello +upcall +port=1/,
      /pong +exchange#\d+ +hello +recv +seq=10 text="ping 10"/,
      /pong +finish#\d+ +hello +unmap +handle=0 status=0/,
      /ping +finish#\d+ +hello +end-access +ref=8 ok=true/,
      /✓ expect\.domains\.dead +\[ping, pong\]/,
      /^PASS {2}hello-grant/m,
    ]) {
      expect(r.stdout).toMatch(pattern);
    }
    // No escape sequences without a TTY.
    expect(r.stdout).not.toMatch(/\x1b\[/);
  });

  test('--quiet prints only the verdict line, as its help says', async () => {
    const r = await xenpv(['run', 'scenarios/hello-grant.yaml', '--quiet']);
    expect(r).toEqual({ code: 0, stdout: 'PASS  hello-grant (0s virtual)\n', stderr: '' });
    const help = await xenpv(['run', '--help']);
    expect(help.stdout.replace(/\s+/g, ' ')).toContain(
      '--quiet Only the PASS/FAIL line and, on FAIL, what failed (the exit status says the same)',
    );
  });

  test('a missing file exits 2 and names it', async () => {
    const r = await xenpv(['run', 'scenarios/no-such.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/scenarios\/no-such\.yaml: cannot read the scenario file \(ENOENT\)/);
    expect(r.stdout).toBe('');
  });

  test('a malformed file exits 2 with file:line:column', async () => {
    const r = await xenpv(['run', 'test/cli/fixtures/malformed.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^test\/cli\/fixtures\/malformed\.yaml:4:5: steps\[0\]/m);
  });

  test('bad options exit 2', async () => {
    const r = await xenpv(['run', 'scenarios/hello-grant.yaml', '--replay', '0,x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--replay: item 2 is "x"/);
  });

  test('--help lists the options and examples', async () => {
    const r = await xenpv(['run', '--help']);
    expect(r.code).toBe(0);
    for (const word of [
      '--engine',
      '--seed',
      '--time-scale',
      '--replay',
      '--quiet',
      '--verbose',
      'scenarios/hello-grant.yaml',
    ]) {
      expect(r.stdout).toContain(word);
    }
  });
});
