import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../../emulator/cli/commands/run.js';
import { checkXenstoreSocketPath } from '../../emulator/cli/commands/xenstore-socket-relay.js';
import { buildMachine } from '../../emulator/machine/machine.js';
import { hypervisorBuffers, SLOTS_SHARED } from '../../emulator/machine/shared-names.js';
import { createImages, machineConfigFor } from '../../emulator/scenario/run.js';
import { loadRunnableScenario } from '../../emulator/scenario/run-demo.js';
import { XenstoreDaemon } from '../../emulator/xenstored/daemon.js';
import { listenXenstoreSocket } from '../../emulator/xenstored/socket-server.js';
import { THREADS_TIME_SCALE } from '../threads-time.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const execFileP = promisify(execFile);
const DEADLOCK = 'scenarios/blktap2-teardown-deadlock.yaml';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'xenpv-xs-socket-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function quietIo() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l), colorLevel: 0 as const },
    out,
    err,
  };
}

describe('Machine.shared and Machine.xenstored()', () => {
  const scenario = loadRunnableScenario(DEADLOCK).scenario;

  it('sim: hands out the buffers every domain sees and dom0 own daemon', async () => {
    const work = mkdtempSync(join(dir, 'sim-'));
    createImages(scenario, work);
    const m = await buildMachine(machineConfigFor(scenario, work), 'sim', { seed: 1 });
    try {
      expect(m.shared[SLOTS_SHARED]).toBeInstanceOf(SharedArrayBuffer);
      const hv = hypervisorBuffers(m.shared);
      expect(hv.memory.byteLength).toBe(scenario.host.memory);
      expect(() => {
        (m.shared as Record<string, SharedArrayBuffer>).x = new SharedArrayBuffer(8);
      }).toThrow();
      const daemon = m.xenstored();
      expect(daemon).toBeInstanceOf(XenstoreDaemon);
      // The one dom0 booted: its layout is in this daemon's tree, before anything ran.
      expect(new TextDecoder().decode(daemon.peek('/local/domain/0/name')?.value)).toBe('Domain-0');
      // A second machine has a daemon of its own.
      const m2 = await buildMachine(machineConfigFor(scenario, work), 'sim', { seed: 1 });
      expect(m2.xenstored()).not.toBe(daemon);
      await m2.close();
    } finally {
      await m.close();
    }
  });

  it('threads: says xenstored is in the worker', async () => {
    const work = mkdtempSync(join(dir, 'threads-'));
    createImages(scenario, work);
    const m = await buildMachine(machineConfigFor(scenario, work), 'threads', {
      timeScale: THREADS_TIME_SCALE,
    });
    try {
      expect(m.shared[SLOTS_SHARED]).toBeInstanceOf(SharedArrayBuffer);
      expect(() => m.xenstored()).toThrow(
        /dom0's worker thread under the threads engine; use the sim engine/,
      );
    } finally {
      await m.close();
    }
  });
});

describe('socket server dispatch', () => {
  it('nothing reaches the daemon until the dispatched work runs, and it runs in order', async () => {
    const daemon = new XenstoreDaemon();
    const queue: (() => void)[] = [];
    const path = join(dir, 'dispatch.sock');
    const server = await listenXenstoreSocket(daemon, path, { dispatch: (w) => queue.push(w) });
    try {
      const before = daemon.connectionCount;
      const env = { ...process.env, XENSTORED_PATH: path };
      const missing = await toolMissing('xenstore-write');
      if (missing !== undefined) {
        console.warn(`skipping the tool half of the dispatch test: ${missing}`);
        return;
      }
      const child = execFileP('xenstore-write', ['/d/x', 'v'], { env, timeout: 20_000 });
      // The tool's connect and request sit in the queue; run them one by one as a controller would.
      while (queue.length < 2) await new Promise((r) => setTimeout(r, 5));
      expect(daemon.connectionCount).toBe(before);
      expect(daemon.peek('/d/x')).toBeUndefined();
      queue.shift()!();
      expect(daemon.connectionCount).toBe(before + 1);
      const pump = setInterval(() => {
        while (queue.length > 0) queue.shift()!();
      }, 2);
      try {
        await child;
      } finally {
        clearInterval(pump);
      }
      expect(new TextDecoder().decode(daemon.peek('/d/x')?.value)).toBe('v');
    } finally {
      await server.close();
    }
  });
});

describe('xenpv run --xenstore-socket: bad input', () => {
  it.each([
    [
      { engine: 'threads' as const },
      /--xenstore-socket works with --engine sim only: under threads xenstored lives in dom0's worker/,
    ],
    [{ serve: 'SAME' }, /--serve and --xenstore-socket name the same path .*; give two paths/],
    [{ xenstoreSocket: '/nonexistent-dir-xenpv/s.sock' }, /directory \/nonexistent-dir-xenpv does not exist/],
  ])('%o is refused before anything runs', async (over, message) => {
    const path = join(dir, 'bad.sock');
    const { io, err, out } = quietIo();
    const o = over as { engine?: 'sim' | 'threads'; serve?: string; xenstoreSocket?: string };
    const xenstoreSocket = o.xenstoreSocket ?? path;
    const args = {
      file: DEADLOCK,
      engine: o.engine ?? ('sim' as const),
      timeScale: 0.01,
      xenstoreSocket,
      ...(o.serve === 'SAME' ? { serve: xenstoreSocket } : {}),
      verbosity: 'quiet' as const,
    };
    expect(await runCommand(args, io)).toBe(2);
    expect(err.join('\n')).toMatch(message);
    expect(out).toEqual([]);
  });

  it('says nothing was served when the run ends before its steps do (an expected oops)', async () => {
    const path = join(dir, 'oops.sock');
    const { io, err, out } = quietIo();
    const code = await runCommand(
      {
        file: 'scenarios/c9-disconnect-with-io-in-flight.yaml',
        engine: 'sim',
        timeScale: 0.01,
        xenstoreSocket: path,
        verbosity: 'quiet',
      },
      io,
    );
    expect(code).toBe(0);
    expect(out.join('\n')).toMatch(/PASS/);
    expect(err).toEqual([
      `xenpv run: the run ended before its steps did (error); nothing was served on ${path}`,
    ]);
    expect(existsSync(path)).toBe(false);
  });

  it('refuses a path that is a regular file, accepts a leftover socket or nothing', () => {
    const file = join(dir, 'regular');
    writeFileSync(file, 'x');
    expect(() => checkXenstoreSocketPath(file)).toThrow(/the path exists and is not a socket; pick another/);
    expect(() => checkXenstoreSocketPath(join(dir, 'absent.sock'))).not.toThrow();
    expect(() => checkXenstoreSocketPath('')).toThrow(/give a path/);
  });
});

async function toolMissing(...tools: string[]): Promise<string | undefined> {
  for (const t of tools) {
    try {
      await execFileP('sh', ['-c', `command -v ${t}`]);
    } catch {
      return `${t} is not installed (Debian package xenstore-utils)`;
    }
  }
  return undefined;
}

/** `xenpv run ARGS` from source in a child process; resolves once stderr shows `ready`. */
function startXenpv(args: string[], ready: RegExp) {
  const script =
    "const { main } = await import('./emulator/cli/main.ts'); process.exitCode = await main(process.argv.slice(1));";
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, ...args], {
    cwd: root,
    env: { ...process.env, FORCE_COLOR: undefined, NO_COLOR: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  const exited = new Promise<number>((resolve) =>
    child.on('exit', (code, sig) => resolve(code ?? (sig ? -1 : 0))),
  );
  const listening = new Promise<void>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (ready.test(stderr)) resolve();
    });
    void exited.then((code) => reject(new Error(`xenpv exited (${code}) before it listened: ${stderr}`)));
  });
  return {
    child,
    listening,
    exited,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
  };
}

describe("xenpv run --xenstore-socket with Xen's xenstore-* tools", async () => {
  const missing = await toolMissing('xenstore-ls', 'xenstore-read', 'xenstore-write');
  if (missing !== undefined) console.warn(`skipping the xenstore-socket tools test: ${missing}`);

  it.skipIf(missing !== undefined)(
    'serves the deadlock scenario store after its steps; writes are seen, and fire the machine watches',
    async () => {
      const path = join(dir, 'xs.sock');
      const x = startXenpv(
        ['run', DEADLOCK, '--verbose', '--xenstore-socket', path],
        /on .*xs\.sock after its steps/,
      );
      try {
        await x.listening;
        expect(x.stderr).toContain(`XENSTORED_PATH=${path} xenstore-ls`);
        const env = { ...process.env, XENSTORED_PATH: path };
        const tool = (cmd: string, ...a: string[]) => execFileP(cmd, a, { env, timeout: 20_000 });
        // What the scenario left: dom0 is there, the guest's backend and its domain directory are gone.
        const ls = await tool('xenstore-ls', '/local/domain/0');
        expect(ls.stdout).toMatch(/^name = "Domain-0"$/m);
        expect(ls.stdout).not.toMatch(/^ {2}1 = /m);
        await expect(tool('xenstore-read', '/local/domain/0/backend/vbd/1')).rejects.toThrow(
          /couldn't read path/,
        );
        await expect(tool('xenstore-read', '/local/domain/1/name')).rejects.toThrow(/couldn't read path/);
        expect((await tool('xenstore-read', '/local/domain/0/name')).stdout).toBe('Domain-0\n');
        // A write is visible to the next read, and dom0's backend-bus watch runs in its xenwatch task.
        await tool('xenstore-write', '/local/domain/0/backend/vbd/7/51712/frontend-id', '7');
        expect((await tool('xenstore-read', '/local/domain/0/backend/vbd/7/51712/frontend-id')).stdout).toBe(
          '7\n',
        );
        x.child.kill('SIGINT');
        expect(await x.exited).toBe(0);
        expect(existsSync(path)).toBe(false);
        // The report comes after the serving ended: the steps' verdict, then the timeline shows the watch.
        expect(x.stdout).toMatch(/PASS {2}blktap2-teardown-deadlock/);
        expect(x.stdout).toMatch(/xenwatch +watch-callback +path=backend\/vbd\/7\/51712\/frontend-id/);
      } finally {
        x.child.kill('SIGKILL');
      }
    },
    60_000,
  );
});

/** One JSON request line to a --serve socket, its one-line answer. */
function serveRequest(path: string, req: unknown): Promise<{ exitCode: number; stdout: string[] }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(path, () => sock.write(`${JSON.stringify(req)}\n`));
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        sock.destroy();
        resolve(JSON.parse(buf.slice(0, nl)));
      }
    });
    sock.on('error', reject);
  });
}

describe('xenpv run --serve and --xenstore-socket together', async () => {
  const missing = await toolMissing('xenstore-write');
  if (missing !== undefined) console.warn(`skipping the --serve + --xenstore-socket test: ${missing}`);

  it.skipIf(missing !== undefined)(
    'a write through the xenstore socket is read through the serve socket; {stop} ends both',
    async () => {
      const xsPath = join(dir, 'both-xs.sock');
      const servePath = join(dir, 'both-serve.sock');
      const { io, err, out } = quietIo();
      let listening!: () => void;
      const ready = new Promise<void>((r) => {
        listening = r;
      });
      const code = runCommand(
        {
          file: DEADLOCK,
          engine: 'sim',
          timeScale: 0.01,
          serve: servePath,
          xenstoreSocket: xsPath,
          verbosity: 'quiet',
        },
        {
          ...io,
          err: (l) => {
            io.err(l);
            if (l.includes(`on ${xsPath} after its steps`)) listening();
          },
        },
      );
      await ready;
      await execFileP('xenstore-write', ['/both/x', 'seen'], {
        env: { ...process.env, XENSTORED_PATH: xsPath },
        timeout: 20_000,
      });
      const read = await serveRequest(servePath, { argv: ['xenstore-read', '/both/x'] });
      expect(read).toMatchObject({ exitCode: 0, stdout: ['seen'] });
      await serveRequest(servePath, { stop: true });
      expect(await code).toBe(0);
      expect(err.join('\n')).toContain(`serving ${DEADLOCK} on ${servePath}`);
      expect(out.join('\n')).toMatch(/PASS {2}blktap2-teardown-deadlock/);
      expect(existsSync(xsPath)).toBe(false);
      expect(existsSync(servePath)).toBe(false);
    },
    60_000,
  );
});
