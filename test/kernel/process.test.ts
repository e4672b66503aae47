import { describe, expect, test } from 'vitest';
import { KernelError } from '../../emulator/kernel/errno.js';
import type { File } from '../../emulator/kernel/file.js';
import type { Process } from '../../emulator/kernel/process.js';
import { inKernel, runKernel } from './sim-kernel.js';

describe('processes', () => {
  test('pids increase, exit code, waitpid with timeout, zombie until reaped, ps', async () => {
    const r = await inKernel(async (k) => {
      const seen: unknown[] = [];
      k.registerProgram('/bin/child', async (p) => {
        await p.sleep(50);
        return 3;
      });
      const parent = k.spawn(
        async (p: Process) => {
          const pid = await p.spawn('/bin/child', ['x']);
          seen.push(await p.waitpid(pid, { timeoutMs: 10 }));
          await p.sleep(100);
          seen.push(k.processes.ps().map((row) => `${row.pid} ${row.ppid} ${row.name} ${row.state}`));
          seen.push(await p.waitpid(pid));
          try {
            await p.waitpid(pid);
          } catch (e) {
            seen.push((e as KernelError).code);
          }
          try {
            await p.spawn('/bin/missing');
          } catch (e) {
            seen.push((e as KernelError).message);
          }
        },
        [],
        { name: 'xl' },
      );
      await k.processes.waitExit(parent);
      return { seen, parent: parent.pid, table: k.processes.ps() };
    });
    expect(r.parent).toBe(100);
    expect(r.seen).toEqual([
      undefined,
      ['100 1 xl R', '101 100 child Z'],
      { pid: 101, status: { code: 3, wstatus: 3 << 8 } },
      'ECHILD',
      'exec /bin/missing: no such program installed: No such file or directory (ENOENT)',
    ]);
    expect(r.table).toEqual([]);
  });

  test('exit cleanup unmaps then closes, running driver releases; children are reparented', async () => {
    const log: string[] = [];
    const r = await inKernel(async (k) => {
      const major = k.chars.register(0, 0, 2, 'dev', {
        mmap: (_f: File, vma) => void (vma.memory = new Uint8Array(vma.length)),
        vmClose: () => void log.push('vm_close'),
        release: (f: File) => void log.push(`release ${f.path}`),
      });
      k.ns.mknod('/dev/a', 'chr', major, 0);
      k.ns.mknod('/dev/b', 'chr', major, 1);
      const proc = k.spawn(
        async (p: Process) => {
          const a = await p.open('/dev/a');
          await p.open('/dev/b');
          await p.mmap(a, 8192);
          await p.spawn(async (c) => void (await c.sleep(1000)), [], { name: 'orphan' });
          p.exit(7);
        },
        [],
        { name: 'tapdisk' },
      );
      const status = await k.processes.waitExit(proc);
      return { status, ps: k.processes.ps().map((row) => `${row.pid} ${row.ppid} ${row.name}`) };
    });
    expect(r.status).toEqual({ code: 7, wstatus: 7 << 8 });
    expect(r.ps).toEqual(['101 1 orphan']);
    // exit_mm first (the mapping's reference goes), then exit_files in descriptor order.
    expect(log).toEqual(['vm_close', 'release /dev/a', 'release /dev/b']);
  });

  test('SIGKILL ends an interruptible wait at once; SIGPIPE ignored vs default; ESRCH', async () => {
    const r = await inKernel(async (k, env) => {
      const server = k.spawn(
        async (p: Process) => {
          const l = await p.listen('/var/run/srv', 5);
          const c = await p.accept(l);
          await p.read(c); // blocks in S until killed
        },
        [],
        { name: 'srv' },
      );
      const client = k.spawn(
        async (p: Process) => {
          await p.sleep(1); // the server binds first
          await p.connect('/var/run/srv');
          await p.sleep(1_000_000);
        },
        [],
        { name: 'cli' },
      );
      await env.sleep(10);
      const before = k.processes.ps().map((row) => `${row.name} ${row.state} ${row.wchan}`);
      k.processes.kill(server.pid, 'SIGKILL');
      const killed = await k.processes.waitExit(server);
      const killedAt = env.now();
      k.processes.kill(client.pid, 'SIGKILL');
      let esrch = '';
      try {
        k.processes.kill(999, 'SIGTERM');
      } catch (e) {
        esrch = (e as KernelError).code;
      }

      const pipes: string[] = [];
      for (const ignore of [true, false]) {
        const writer = k.spawn(
          async (p: Process) => {
            if (ignore) p.signal('SIGPIPE', 'ignore');
            const l = await p.listen(`/var/run/pipe-${ignore}`, 1);
            const c = await p.connect(`/var/run/pipe-${ignore}`);
            const s = await p.accept(l);
            await p.close(s);
            try {
              await p.write(c, new Uint8Array([1]));
            } catch (e) {
              if (!(e instanceof KernelError)) throw e; // SIGPIPE's default action: the process dies instead
              pipes.push(e.code);
            }
          },
          [],
          { name: 'writer' },
        );
        pipes.push(JSON.stringify(await k.processes.waitExit(writer)));
      }
      return { before, killed, killedAt, esrch, pipes };
    });
    expect(r.before).toEqual([
      'srv S a message on accepted socket on /var/run/srv',
      'cli S cli sleep 1000000 ms',
    ]);
    expect(r.killed).toEqual({ signal: 'SIGKILL', wstatus: 9 });
    expect(r.killedAt).toBe(10);
    expect(r.esrch).toBe('ESRCH');
    expect(r.pipes).toEqual(['EPIPE', '{"code":0,"wstatus":0}', '{"signal":"SIGPIPE","wstatus":13}']);
  });

  test('a crash in a program fails the run loudly but still cleans up', async () => {
    const r = await runKernel(async (k) => {
      const proc = k.spawn(
        async () => {
          throw new TypeError('boom');
        },
        [],
        { name: 'buggy' },
      );
      return k.processes.waitExit(proc);
    });
    expect(r.outcome).toBe('error');
    expect(r.error?.message).toMatch(/boom/);
  });

  test('syscalls from a task outside the process are refused', async () => {
    const r = await runKernel(async (k) => {
      const proc = k.spawn(async (p: Process) => void (await p.sleep(10)), [], { name: 'p' });
      return proc.open('/dev');
    });
    expect(r.outcome).toBe('error');
    expect(r.error?.message).toMatch(/syscall of dom-1\/p\[100\] made from task host\/controller#1/);
  });
});
