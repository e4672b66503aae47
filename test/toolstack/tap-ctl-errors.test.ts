import { describe, expect, test } from 'vitest';
import { tapCtlClose } from '../../emulator/toolstack/tap-ctl/close.js';
import { tapCtlCreate } from '../../emulator/toolstack/tap-ctl/create.js';
import { tapCtlFind } from '../../emulator/toolstack/tap-ctl/list.js';
import { host, onHost } from './tap-ctl-harness.js';

describe('close retries EAGAIN', () => {
  test('20 EAGAIN replies, a 1 ms sleep after each, then EIO', async () => {
    const r = await host(
      async (h) => {
        await h.tapCtl(['create', '-a', 'aio:/srv/disk.img']);
        const before = h.log.received.length;
        const close = await h.tapCtl(['close', '-p', '102', '-m', '0']);
        return { close, received: h.log.received.slice(before) };
      },
      { script: { on: { CLOSE: { kind: 'eagain', times: 1000 } } } },
    );
    expect(r.close).toMatchObject({ code: 5, start: 0, end: 20, out: [] });
    expect(r.received).toEqual(Array.from({ length: 20 }, (_, i) => `102 CLOSE 0 @${i}`));
  });

  test('EAGAIN three times then success: 0 after 3 ms, as a library call', async () => {
    const r = await host(
      async (h) => {
        const created = await h.library((ctx) => tapCtlCreate(ctx, 'aio:/srv/disk.img'));
        const t0 = h.env.now();
        const err = await h.library((ctx) => tapCtlClose(ctx, created.id, created.minor));
        return {
          created,
          err,
          took: h.env.now() - t0,
          closes: h.log.received.filter((m) => m.includes('CLOSE')),
        };
      },
      { script: { on: { CLOSE: { kind: 'eagain', times: 3 } } } },
    );
    expect(r.created).toEqual({ err: 0, devname: '/dev/xen/blktap-2/tapdev0', minor: 0, id: 102 });
    expect(r.err).toBe(0);
    expect(r.took).toBe(3);
    expect(r.closes).toHaveLength(4);
  });
});

describe('create rollback', () => {
  test('ATTACH fails: the minor is freed, no DETACH is sent, the spawned tapdisk stays (orphaned tapdisk row)', async () => {
    const r = await host(
      async (h) => {
        const create = await h.tapCtl(['create', '-a', 'aio:/srv/disk.img']);
        const tty = await h.tapCtl(['list'], { tty: true });
        const pipe = await h.tapCtl(['list']);
        return {
          create,
          received: h.log.received.filter((m) => !m.includes('PID') && !m.includes('LIST')),
          tty: tty.out,
          pipe: pipe.out,
          slots: h.blktap!.slots.filter((s) => s !== undefined).length,
          ps: h.k.processes.ps().map((p) => `${p.pid} ${p.name}`),
        };
      },
      { script: { on: { ATTACH: { kind: 'fail', error: 12 } } } },
    );
    expect(r.create).toMatchObject({ code: 12, out: [] });
    expect(r.received).toEqual(['102 ATTACH 0 @0']);
    expect(r.slots).toBe(0);
    expect(r.ps).toEqual(['102 tapdisk2']);
    expect(r.tty).toEqual(['     102  -    -          - -']);
    expect(r.pipe).toEqual(['pid=102']);
  });

  test('OPEN fails: DETACH then FREE; the tapdisk exits after its last VBD', async () => {
    const r = await host(
      async (h) => {
        const created = await h.library((ctx) => tapCtlCreate(ctx, 'vhd:/srv/missing.vhd'));
        const list = await h.tapCtl(['list']);
        return {
          created,
          received: h.log.received.filter((m) => !m.includes('PID') && !m.includes('LIST')),
          list: list.out,
          ps: h.k.processes.ps(),
        };
      },
      { script: { on: { OPEN: { kind: 'fail', error: 2 } } } },
    );
    // tap_ctl_open returns -u.response.error for an ERROR reply.
    expect(r.created).toEqual({ err: -2, devname: '/dev/xen/blktap-2/tapdev0', minor: 0, id: 102 });
    expect(r.received).toEqual(['102 ATTACH 0 @0', '102 OPEN 0 @0', '102 DETACH 0 @0']);
    expect(r.list).toEqual([]);
    expect(r.ps).toEqual([]);
  });
});

describe('errors as tap-ctl returns them', () => {
  test.each([
    { argv: ['attach', '-p', '4242', '-m', '0'], code: 2, why: 'no socket ctl4242: -ENOENT' },
    { argv: ['detach', '-p', '4242', '-m', '0'], code: 2, why: 'no socket: -ENOENT' },
    { argv: ['close', '-p', '4242', '-m', '0'], code: 2, why: 'close turns -ENOENT into ENOENT' },
    { argv: ['pause', '-p', '4242', '-m', '0'], code: 2, why: 'no socket' },
    { argv: ['unpause', '-p', '4242', '-m', '0'], code: 2, why: 'no socket' },
    { argv: ['open', '-p', '4242', '-m', '0', '-a', 'aio:/x'], code: 2, why: 'no socket' },
    { argv: ['free', '-m', '3'], code: 2, why: 'only allocate makes the control node: open gives ENOENT' },
    { argv: ['check'], code: 0, why: 'blktap-control is in /proc/misc', out: ['ok'] },
    { argv: ['major', '-c'], code: 22, why: 'the char major is refused with EINVAL' },
  ])('$argv: $why', async ({ argv, code, out }) => {
    const r = await host(async (h) => h.tapCtl(argv));
    expect(r.code).toBe(code);
    expect(r.out).toEqual(out ?? []);
  });

  test('a socket name nobody listens on gives ECONNREFUSED (111)', async () => {
    const r = await host(async (h) => {
      h.k.ns.mkdir('/var/run/blktap-control', { parents: true });
      h.k.ns.bindSocket('/var/run/blktap-control/ctl77', undefined);
      return h.tapCtl(['attach', '-p', '77', '-m', '0']);
    });
    expect(r.code).toBe(111);
  });

  test('free while the tapdisk still has the ring open: EBUSY, exit 1, minor kept', async () => {
    const r = await host(async (h) => {
      await h.tapCtl(['create', '-a', 'aio:/srv/disk.img']);
      const free = await h.tapCtl(['free', '-m', '0']);
      return { free, kept: h.blktap!.slots[0] !== undefined, errno: h.k.ns.glob('/sys/class/blktap2/*') };
    });
    expect(r.free.code).toBe(1);
    expect(r.kept).toBe(true);
    expect(r.errno).toEqual(['/sys/class/blktap2/blktap0']);
  });

  test('without the blktap module every command prints the check message and exits with -ENOSYS & 0xff', async () => {
    const r = await host(async (h) => [await h.tapCtl(['list']), await h.tapCtl(['free', '-m', '0'])], {
      blktap: false,
    });
    for (const run of r)
      expect(run).toMatchObject({ code: 218, out: ['blktap kernel module not installed'] });
  });

  test('xapi prints strerror of a failure on stderr', async () => {
    const r = await host(async (h) => h.tapCtl(['attach', '-p', '4242', '-m', '0'], { variant: 'xapi' }));
    expect(r).toMatchObject({ code: 2, out: ['No such file or directory'] });
  });

  test('allocate makes the control node from /proc/misc, then the ring and I/O nodes; -d names the I/O node', async () => {
    const r = await host(async (h) => {
      const a = await h.tapCtl(['allocate']);
      const b = await h.tapCtl(['allocate', '-d', '/dev/mytap']);
      const nodes = ['/dev/xen/blktap-2/control', '/dev/xen/blktap-2/blktap1', '/dev/mytap'].map((p) =>
        h.k.ns.lookup(p),
      );
      return {
        a: a.out,
        b: b.out,
        nodes,
        control: h.blktap!.controlMinor,
        ring: h.blktap!.ringMajor,
        blk: h.blktap!.blockMajor,
      };
    });
    expect(r.a).toEqual(['/dev/xen/blktap-2/tapdev0']);
    expect(r.b).toEqual(['/dev/mytap']);
    expect(r.nodes).toEqual([
      { kind: 'chr', major: 10, minor: r.control },
      { kind: 'chr', major: r.ring, minor: 1 },
      { kind: 'blk', major: r.blk, minor: 1 },
    ]);
  });

  test('list skips a tapdisk whose PID request times out after 2 s and shows its minor as orphaned', async () => {
    const r = await onHost(
      async (h) => {
        await h.tapCtl(['create', '-a', 'aio:/srv/disk.img']);
        return h.tapCtl(['list'], { tty: true });
      },
      { script: { on: { PID: { kind: 'block-until-hangup' } } } },
    );
    expect(r.value).toMatchObject({ start: 0, end: 2000, out: ['       -  0    -          - -'] });
    expect(r.stalls[0]?.chain[0]?.waitsFor).toBe('tap-ctl select() 2 s: PID_RSP from tapdisk 102');
  });

  test('tap_ctl_find returns the socket id and minor of a type:path, -ENOENT otherwise', async () => {
    const r = await host(async (h) => {
      await h.tapCtl(['create', '-a', 'aio:/srv/a.img']);
      await h.tapCtl(['create', '-a', 'vhd:/srv/b.vhd']);
      return [
        await h.library((ctx) => tapCtlFind(ctx, 'vhd', '/srv/b.vhd')),
        await h.library((ctx) => tapCtlFind(ctx, 'aio', '/srv/b.vhd')),
      ];
    });
    expect(r[0]).toEqual({ err: 0, found: { id: 105, pid: 105, minor: 1, state: 0 } });
    expect(r[1]).toEqual({ err: -2 });
  });
});
