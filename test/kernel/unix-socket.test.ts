import { describe, expect, test } from 'vitest';
import { KernelError } from '../../emulator/kernel/errno.js';
import type { Process } from '../../emulator/kernel/process.js';
import { inKernel, runKernel } from './sim-kernel.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

async function attempt<T>(fn: () => Promise<T>): Promise<T | string> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof KernelError) return e.code;
    throw e;
  }
}

describe('unix sockets', () => {
  test("tap-ctl's select() times out at exactly 5 s; the stall names the timer and the cycle", async () => {
    const r = await runKernel(async (k, env) => {
      k.ns.mkdir('/var/run/blktap-control', { parents: true });
      const events: string[] = [];
      const tapdisk = k.spawn(
        async (p: Process) => {
          p.signal('SIGPIPE', 'ignore');
          const l = await p.listen(`/var/run/blktap-control/ctl${p.pid}`, 10);
          const c = await p.accept(l);
          events.push(`tapdisk got ${dec(await p.read(c))} at ${env.now()}`);
          const more = await p.read(c); // waits for tap-ctl, which waits for us
          events.push(`tapdisk read ${dec(more)} at ${env.now()}`);
          events.push(`tapdisk reply: ${await attempt(() => p.write(c, enc('DETACH_RSP')))}`);
          await p.unlink(`/var/run/blktap-control/ctl${p.pid}`);
        },
        [],
        { name: 'tapdisk' },
      );
      const tapctl = k.spawn(
        async (p: Process) => {
          await p.sleep(1);
          const [path] = await p.glob('/var/run/blktap-control/ctl*');
          const fd = await p.connect(path!);
          await p.write(fd, enc('DETACH'));
          const ready = await p.select([fd], [], {
            timeoutMs: 5000,
            timeoutName: 'tap-ctl select() 5 s',
            what: `DETACH reply from tapdisk ${tapdisk.pid}`,
          });
          events.push(`select returned ${JSON.stringify(ready)} at ${env.now()}`);
          await p.close(fd);
          return 5; // EIO-style failure code
        },
        [],
        { name: 'tap-ctl' },
      );
      const status = await k.processes.waitExit(tapctl);
      await k.processes.waitExit(tapdisk);
      return { events, status, left: k.sockets.boundPaths('/var/run/blktap-control/ctl*') };
    });
    expect(r.outcome).toBe('completed');
    expect(r.value!.events).toEqual([
      'tapdisk got DETACH at 1',
      'select returned {"readable":[],"writable":[]} at 5001',
      'tapdisk read null at 5001',
      'tapdisk reply: EPIPE',
    ]);
    expect(r.value!.status).toEqual({ code: 5, wstatus: 5 << 8 });
    expect(r.value!.left).toEqual([]);
    expect(r.stalls).toHaveLength(1);
    const stall = r.stalls[0]!;
    expect(stall.at).toBe(1);
    expect(stall.brokenBy).toMatchObject({ timer: 'tap-ctl select() 5 s', at: 5001 });
    expect(stall.cycle).toBe(true);
    expect(stall.chain.map((l) => [l.waitsFor, l.heldBy])).toEqual([
      ['DETACH reply from tapdisk 100', 'dom-1/tapdisk[100]'],
      ['a message on accepted socket on /var/run/blktap-control/ctl100', 'dom-1/tap-ctl[101]'],
      ['DETACH reply from tapdisk 100', 'dom-1/tapdisk[100]'],
    ]);
  });

  test('connect errors, message order, EPIPE, EAGAIN, bound names', async () => {
    const r = await inKernel(async (k) => {
      const out: unknown[] = [];
      k.ns.mknod('/tmp/notasocket', 'chr', 1, 3);
      const proc = k.spawn(
        async (p: Process) => {
          out.push(await attempt(() => p.connect('/var/run/nobody')));
          out.push(await attempt(() => p.connect('/tmp/notasocket')));
          const l = await p.listen('/var/run/ctl1', 0);
          out.push(await attempt(() => p.listen('/var/run/ctl1', 1)));
          const c = await p.connect('/var/run/ctl1');
          out.push(await attempt(() => p.connect('/var/run/ctl1', { nonblocking: true })));
          const s = await p.accept(l);
          p.setNonblocking(s, true);
          out.push(await attempt(() => p.read(s)));
          await p.write(c, enc('one'));
          await p.write(c, enc('two'));
          out.push(dec(await p.read(s)), dec(await p.read(s)));
          out.push(await attempt(() => p.read(l)));
          await p.close(l);
          out.push(await attempt(() => p.connect('/var/run/ctl1')));
          out.push(k.sockets.boundPaths('/var/run/ctl*'));
          await p.unlink('/var/run/ctl1');
          out.push(await attempt(() => p.connect('/var/run/ctl1')));
          await p.close(s);
          out.push(dec(await p.read(c)));
          out.push(await attempt(() => p.write(c, enc('late'))));
        },
        [],
        { name: 'p' },
      );
      proc.signal('SIGPIPE', 'ignore');
      await k.processes.waitExit(proc);
      return out;
    });
    expect(r).toEqual([
      'ENOENT',
      'ECONNREFUSED',
      'EADDRINUSE',
      'EAGAIN',
      'EAGAIN',
      'one',
      'two',
      'ENOTCONN',
      'ECONNREFUSED',
      [{ path: '/var/run/ctl1', listening: false, pending: 0 }],
      'ENOENT',
      null,
      'EPIPE',
    ]);
  });

  test('closing a listener drops unaccepted connections: ECONNRESET, then end of stream (C17)', async () => {
    const r = await inKernel(async (k) => {
      const out: unknown[] = [];
      const proc = k.spawn(
        async (p: Process) => {
          const l = await p.listen('/var/run/blktap-control-ctl', 5);
          const a = await p.connect('/var/run/blktap-control-ctl');
          const b = await p.connect('/var/run/blktap-control-ctl');
          await p.write(a, enc('PID'));
          out.push(k.sockets.boundPaths('/var/run/blktap-control-*')[0]?.pending);
          await p.close(l);
          out.push(await attempt(() => p.read(a)), await attempt(() => p.read(a)));
          out.push(await p.select([b], [], { timeoutMs: 0 }));
          out.push(await attempt(() => p.read(b)));
          out.push(await attempt(() => p.write(b, enc('x'))));
        },
        [],
        { name: 'p' },
      );
      proc.signal('SIGPIPE', 'ignore');
      await k.processes.waitExit(proc);
      return out;
    });
    expect(r).toEqual([2, 'ECONNRESET', null, { readable: [5], writable: [] }, 'ECONNRESET', 'EPIPE']);
  });

  test('a blocked accept and a blocked read wake when the other side acts', async () => {
    const r = await inKernel(async (k, env) => {
      const log: string[] = [];
      const server = k.spawn(
        async (p: Process) => {
          const l = await p.listen('/var/run/s', 1);
          const c = await p.accept(l);
          log.push(`accepted at ${env.now()}`);
          log.push(`${dec(await p.read(c))} at ${env.now()}`);
          log.push(`${dec(await p.read(c))} at ${env.now()}`);
        },
        [],
        { name: 's' },
      );
      k.spawn(
        async (p: Process) => {
          await p.sleep(100);
          const c = await p.connect('/var/run/s');
          await p.sleep(50);
          await p.write(c, enc('hello'));
          await p.sleep(50);
        },
        [],
        { name: 'c' },
      );
      await k.processes.waitExit(server);
      return log;
    });
    expect(r).toEqual(['accepted at 100', 'hello at 150', 'null at 200']);
  });
});
