/**
 * `xenpv run FILE --serve SOCKET` answered by the attach clients: after the 2012 deadlock scenario,
 * `tap-ctl list` in the running machine shows the orphaned minor; xl and xenstore answer with the
 * tools' exit codes; `{"stop": true}` ends the run, whose verdict is the scenario's. One test runs the
 * real CLI in child processes (server and client), the others call the same functions in-process.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { attachCommand, attachRequest, servedArgv } from '../../emulator/cli/commands/attach.js';
import { runCommand } from '../../emulator/cli/commands/run.js';
import { parseServeLine } from '../../emulator/cli/commands/serve.js';
import { testTempDir } from '../temp-dirs.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const DEADLOCK = join(root, 'scenarios/blktap2-teardown-deadlock.yaml');

function socketPath(): string {
  return join(testTempDir('attach'), 's.sock');
}

/** Resolves once `path` exists (the served run listens before its steps). */
async function untilExists(path: string): Promise<void> {
  while (!existsSync(path)) await new Promise((r) => setTimeout(r, 10));
}

function collect() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

describe('served sim run, in-process', () => {
  test('tap-ctl list shows the orphaned minor; xl, xenstore and errors keep the tools exit codes', async () => {
    const sock = socketPath();
    const report = collect();
    const run = runCommand(
      { file: DEADLOCK, engine: 'sim', timeScale: 0.01, serve: sock, verbosity: 'quiet' },
      { ...report.io, colorLevel: 0 },
    );
    await untilExists(sock);

    const list = collect();
    expect(await attachCommand(sock, ['tap-ctl', 'list'], list.io)).toBe(0);
    expect(list.out).toEqual(['minor=0']);

    const xl = collect();
    expect(await attachCommand(sock, ['xl', 'list'], xl.io)).toBe(0);
    expect(xl.out[0]).toMatch(/^Name +ID +Mem VCPUs\tState\tTime\(s\)$/);
    expect(xl.out.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(['Domain-0']);

    const missing = collect();
    expect(await attachCommand(sock, ['xl', 'destroy', 'guest9'], missing.io)).toBe(2);
    expect(missing.out).toEqual(['guest9 is an invalid domain identifier (rc=-6)']);

    const ls = collect();
    expect(await attachCommand(sock, ['xenstore-ls', '/local/domain/0/backend'], ls.io)).toBe(0);
    expect(ls.out).toEqual(['vbd = ""']);
    const read = collect();
    expect(await attachCommand(sock, ['xenstore-read', '/local/domain/0/name'], read.io)).toBe(0);
    expect(read.out).toEqual(['Domain-0']);
    const gone = collect();
    expect(await attachCommand(sock, ['xenstore-read', '/local/domain/1/name'], gone.io)).toBe(1);
    expect(gone.err).toEqual(["xenstore-read: couldn't read path /local/domain/1/name"]);

    const unknown = collect();
    expect(await attachCommand(sock, ['dd', 'if=/dev/zero'], unknown.io)).toBe(127);
    expect(unknown.err[0]).toMatch(/^xenpv: unknown command "dd"; a served run answers tap-ctl, xl/);

    // A tap-ctl command that changes the machine: free the orphaned minor, then the list is empty.
    expect(await attachCommand(sock, ['tap-ctl', 'free', '-m', '0'], collect().io)).toBe(0);
    const after = collect();
    expect(await attachCommand(sock, ['tap-ctl', 'list'], after.io)).toBe(0);
    expect(after.out).toEqual([]);

    expect(await attachRequest(sock, { stop: true })).toEqual({ exitCode: 0, stdout: [], stderr: [] });
    // The verdict is the scenario's, taken before serving began.
    expect(await run).toBe(0);
    expect(report.out.at(-1)).toMatch(/^PASS {2}blktap2-teardown-deadlock/);
    expect(existsSync(sock)).toBe(false);
  });

  test('an unreachable socket is exit 2 with the reason', async () => {
    const c = collect();
    expect(await attachCommand('/nonexistent/xenpv.sock', ['tap-ctl', 'list'], c.io)).toBe(2);
    expect(c.err[0]).toMatch(/^xenpv tap-ctl: cannot reach \/nonexistent\/xenpv.sock: /);
  });

  test.each([
    ['{"argv": ["tap-ctl", "list"]}', { argv: ['tap-ctl', 'list'] }],
    ['{"stop": true}', { stop: true }],
    ['{"argv": []}', /^bad request: expected \{"argv"/],
    ['{"argv": ["xl", 3]}', /^bad request: expected \{"argv"/],
    ['tap-ctl list', /^bad request: not JSON: tap-ctl list/],
  ])('request line %s', (line, want) => {
    const got = parseServeLine(line);
    if (want instanceof RegExp) expect(got).toMatch(want);
    else expect(got).toEqual(want);
  });

  test.each([
    ['xenstore', ['ls', '/local'], ['xenstore-ls', '/local']],
    ['xenstore', ['write', '/a', '1'], ['xenstore-write', '/a', '1']],
    ['tap-ctl', ['list', '-m', '0'], ['tap-ctl', 'list', '-m', '0']],
    ['xenstore', ['cat', '/a'], 'xenpv xenstore: name an operation: ls, read, write, rm (got "cat")'],
  ] as const)('xenpv %s %j', (tool, args, want) => {
    expect(servedArgv(tool, [...args])).toEqual(want);
  });
});

/** `xenpv ARGS` from source in a child process. */
function xenpvArgs(args: string[]): string[] {
  const script =
    "const { main } = await import('./emulator/cli/main.ts'); process.exitCode = await main(process.argv.slice(1));";
  return ['--import', 'tsx', '--input-type=module', '-e', script, ...args];
}

describe('the real CLI in child processes', () => {
  test('xenpv run --serve, then xenpv tap-ctl --attach list and --stop', async () => {
    const sock = socketPath();
    const server = spawn(process.execPath, xenpvArgs(['run', DEADLOCK, '--quiet', '--serve', sock]), {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1' },
    });
    let stdout = '';
    let stderr = '';
    server.stdout.on('data', (d) => {
      stdout += d;
    });
    server.stderr.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((r) => server.on('exit', (code) => r(code)));
    const client = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(process.execPath, xenpvArgs(args), { cwd: root }, (error, out, err) =>
          resolve({ code: error === null ? 0 : Number(error.code), stdout: out, stderr: err }),
        ),
      );
    await untilExists(sock);
    const list = await client(['tap-ctl', '--attach', sock, 'list']);
    expect(list).toEqual({ code: 0, stdout: 'minor=0\n', stderr: '' });
    const stop = await client(['tap-ctl', '--attach', sock, '--stop']);
    expect(stop.code).toBe(0);
    expect(await exited).toBe(0);
    expect(stderr).toContain(`serving ${DEADLOCK} on ${sock}`);
    expect(stdout).toMatch(/PASS {2}blktap2-teardown-deadlock/);
  }, 60_000);
});
