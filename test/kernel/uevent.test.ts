import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { KernelError } from '../../emulator/kernel/errno.js';
import {
  decodeUevent,
  encodeUevent,
  UEVENT_ACTIONS,
  UEVENT_BUFFER_SIZE,
  UEVENT_NUM_ENVP,
  type UeventAction,
} from '../../emulator/kernel/uevent.js';
import { inKernel } from './sim-kernel.js';

const SRC = {
  devpath: '/devices/xen-backend/vbd-1-51712',
  subsystem: 'xen-backend',
  vars: [
    ['XENBUS_TYPE', 'vbd'],
    ['XENBUS_PATH', 'backend/vbd/1/51712'],
  ] as const,
};

describe('uevent datagrams', () => {
  test('emit: ACTION, DEVPATH, SUBSYSTEM, the bus variables, SEQNUM, in that order', async () => {
    const bytes = await inKernel(async (k) => {
      const p = k.spawn(async (proc) => {
        const fd = await proc.ueventSocket();
        k.uevents.emit('add', SRC);
        const d = await proc.read(fd, { length: 4096 });
        proc.print(new TextDecoder().decode(d!));
      });
      await k.processes.waitExit(p);
      return p.output[0]!;
    });
    expect(bytes).toBe(
      'add@/devices/xen-backend/vbd-1-51712\0ACTION=add\0DEVPATH=/devices/xen-backend/vbd-1-51712\0' +
        'SUBSYSTEM=xen-backend\0XENBUS_TYPE=vbd\0XENBUS_PATH=backend/vbd/1/51712\0SEQNUM=1\0',
    );
  });

  test.each<[string, string, RegExp]>([
    ['no NUL at the end', 'add@/x\0ACTION=add', /not NUL-terminated/],
    ['header without @', 'add/x\0ACTION=add\0', /not action@devpath/],
    ['unknown action', 'plug@/x\0ACTION=plug\0DEVPATH=/x\0SEQNUM=1\0', /action "plug" is unknown/],
    ['relative devpath', 'add@x\0ACTION=add\0DEVPATH=x\0SEQNUM=1\0', /devpath "x"/],
    ['variable without =', 'add@/x\0ACTION=add\0JUNK\0', /variable 1: "JUNK"/],
    [
      'ACTION disagrees',
      'add@/x\0ACTION=remove\0DEVPATH=/x\0SEQNUM=1\0',
      /ACTION "remove" is not the header's add/,
    ],
    ['DEVPATH disagrees', 'add@/x\0ACTION=add\0DEVPATH=/y\0SEQNUM=1\0', /DEVPATH "\/y"/],
    ['SEQNUM missing', 'add@/x\0ACTION=add\0DEVPATH=/x\0', /SEQNUM undefined/],
    ['SEQNUM not a number', 'add@/x\0ACTION=add\0DEVPATH=/x\0SEQNUM=1a\0', /SEQNUM "1a"/],
  ])('decode refuses %s', (_name, text, error) => {
    expect(() => decodeUevent(new TextEncoder().encode(text))).toThrow(error);
  });

  test('encode/decode round trip (property)', () => {
    const name = fc
      .stringMatching(/^[A-Z_][A-Z0-9_]{0,8}$/)
      .filter((n) => !['ACTION', 'DEVPATH', 'SEQNUM'].includes(n));
    const value = fc.string({ maxLength: 12 }).filter((v) => !v.includes('\0'));
    fc.assert(
      fc.property(
        fc.constantFrom<UeventAction>(...UEVENT_ACTIONS),
        fc.stringMatching(/^(\/[a-z0-9-]{1,6}){1,4}$/),
        fc.uniqueArray(fc.tuple(name, value), { maxLength: 6, selector: ([k]) => k }),
        fc.nat(1_000_000),
        (action, devpath, vars, seq) => {
          const env: Array<[string, string]> = [
            ['ACTION', action],
            ['DEVPATH', devpath],
            ...vars,
            ['SEQNUM', String(seq)],
          ];
          const ev = decodeUevent(encodeUevent(action, devpath, env));
          expect(ev.action).toBe(action);
          expect(ev.devpath).toBe(devpath);
          expect(ev.seqnum).toBe(seq);
          expect([...ev.env]).toEqual(env);
        },
      ),
    );
  });
});

describe('uevent sockets', () => {
  test('every socket gets every event, SEQNUM counts up, a closed socket gets nothing', async () => {
    const r = await inKernel(async (k) => {
      const seen: string[] = [];
      const reader = (name: string, n: number) =>
        k.spawn(async (proc) => {
          const fd = await proc.ueventSocket();
          await proc.sleep(1);
          for (let i = 0; i < n; i++) {
            const ev = decodeUevent((await proc.read(fd, { length: 4096 }))!);
            seen.push(`${name}:${ev.action}:${ev.seqnum}`);
          }
        });
      const a = reader('a', 2);
      const b = reader('b', 1);
      await k.env.sleep(0.5);
      expect(k.uevents.listenerCount).toBe(2);
      k.uevents.emit('add', SRC);
      k.uevents.emit('remove', SRC);
      await k.processes.waitExit(a);
      await k.processes.waitExit(b);
      const after = k.uevents.listenerCount;
      k.uevents.emit('add', SRC);
      return { seen, after, seq: k.uevents.seqnum };
    });
    expect(r.seen.sort()).toEqual(['a:add:1', 'a:remove:2', 'b:add:1']);
    expect(r.after).toBe(0);
    expect(r.seq).toBe(3);
  });

  test('a full receive queue drops the event; the next recv reports ENOBUFS first (sk_err), then goes on', async () => {
    const out = await inKernel(async (k) => {
      const p = k.spawn(async (proc) => {
        // Room for one datagram of this size only.
        const fd = await proc.ueventSocket({ rcvbuf: 200 });
        k.uevents.emit('add', SRC);
        k.uevents.emit('remove', SRC);
        try {
          await proc.read(fd, { length: 4096 });
        } catch (e) {
          proc.print((e as KernelError).code);
        }
        const first = decodeUevent((await proc.read(fd, { length: 4096 }))!);
        proc.print(`got ${first.action} ${first.seqnum}`);
        k.uevents.emit('change', SRC);
        proc.print(`got ${decodeUevent((await proc.read(fd, { length: 4096 }))!).seqnum}`);
      });
      await k.processes.waitExit(p);
      return p.output;
    });
    expect(out).toEqual(['ENOBUFS', 'got add 1', 'got 3']);
  });

  test('nonblocking recv with nothing queued is EAGAIN', async () => {
    const out = await inKernel(async (k) => {
      const p = k.spawn(async (proc) => {
        const fd = await proc.ueventSocket({ nonblocking: true });
        try {
          await proc.read(fd, { length: 10 });
        } catch (e) {
          proc.print((e as KernelError).code);
        }
      });
      await k.processes.waitExit(p);
      return p.output;
    });
    expect(out).toEqual(['EAGAIN']);
  });

  test.each<[string, Parameters<typeof encodeUevent>[2] | undefined, string, RegExp]>([
    [
      'too many variables',
      Array.from({ length: UEVENT_NUM_ENVP }, (_, i) => [`V${i}`, 'x'] as const),
      '/d',
      /variables > 32.*ENOMEM/,
    ],
    ['too many bytes', [['BIG', 'x'.repeat(UEVENT_BUFFER_SIZE)]], '/d', /bytes > 2048.*ENOMEM/],
    ['bad name', [['lower-case', 'x']], '/d', /variable "lower-case".*EINVAL/],
    ['relative devpath', undefined, 'd', /devpath "d".*EINVAL/],
  ])('emit refuses %s and sends nothing', async (_name, vars, devpath, error) => {
    const r = await inKernel(async (k) => {
      let msg = '';
      try {
        k.uevents.emit('add', { devpath, subsystem: 's', ...(vars ? { vars } : {}) });
      } catch (e) {
        msg = (e as Error).message;
      }
      return { msg, seq: k.uevents.seqnum };
    });
    expect(r.msg).toMatch(error);
    expect(r.seq).toBe(0);
  });
});

describe('boot pids', () => {
  test('a boot daemon takes a pid below firstPid; the run still starts at firstPid', async () => {
    const r = await inKernel(async (k) => {
      const d = k.spawn(async (proc) => proc.sleep(10), [], { name: 'udevd', bootPid: 42 });
      const p = k.spawn(async () => {});
      const errors: string[] = [];
      for (const pid of [42, 1, 100]) {
        try {
          k.spawn(async () => {}, [], { bootPid: pid });
        } catch (e) {
          errors.push((e as KernelError).code);
        }
      }
      return { d: d.pid, p: p.pid, errors };
    });
    expect(r).toEqual({ d: 42, p: 100, errors: ['EEXIST', 'EINVAL', 'EINVAL'] });
  });
});
