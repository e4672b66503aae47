import { describe, expect, test } from 'vitest';
import { SECTOR_SIZE } from '../../emulator/kernel/block-device.js';
import { tapCtlClose } from '../../emulator/toolstack/tap-ctl/close.js';
import { tapCtlCreate } from '../../emulator/toolstack/tap-ctl/create.js';
import { tapCtlFind } from '../../emulator/toolstack/tap-ctl/list.js';
import { type Host, host, makeImage, onHost, tapdiskMessages } from './tap-ctl-harness.js';

/** Puts one write in flight on tapdev0 (blkback's open stands in); tapdisk holds it for its latency. */
async function writeInFlight(h: Host): Promise<{ ended: () => number | undefined }> {
  await h.holdTapdev(0);
  let error: number | undefined;
  h.k.blocks.submit(h.tapdev(0), {
    op: 'write',
    sector: 0,
    vecs: [new Uint8Array(SECTOR_SIZE)],
    end: (e) => {
      error = e;
    },
  });
  // Let tapdisk's event loop take the request off the ring.
  await h.env.sleep(0);
  return { ended: () => error };
}

describe('close retries EAGAIN (tapdisk still has requests in flight)', () => {
  test('20 EAGAIN replies, a 1 ms sleep after each, then EIO', async () => {
    const path = makeImage(1 << 20);
    const r = await onHost(
      async (h) => {
        await h.tapCtl(['create', '-a', `aio:${path}`]);
        await writeInFlight(h);
        return h.tapCtl(['close', '-p', '101', '-m', '0']);
      },
      { tapdisk: { latencyMs: 1000 } },
    );
    expect(r.outcome).toBe('completed');
    expect(r.value).toMatchObject({ code: 5, start: 0, end: 20, out: [] });
    const closes = tapdiskMessages(r.trace).filter((m) => m.includes(' close '));
    expect(closes).toEqual(Array.from({ length: 20 }, (_, i) => `101 close 0 @${i}`));
  });

  test('EAGAIN until the write completes, then success, as a library call', async () => {
    const path = makeImage(1 << 20);
    const r = await onHost(
      async (h) => {
        const created = await h.library((ctx) => tapCtlCreate(ctx, `aio:${path}`));
        const io = await writeInFlight(h);
        const t0 = h.env.now();
        const err = await h.library((ctx) => tapCtlClose(ctx, created.id, created.minor));
        return { created, err, took: h.env.now() - t0, ended: io.ended() };
      },
      { tapdisk: { latencyMs: 3 } },
    );
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.created).toEqual({ err: 0, devname: '/dev/xen/blktap-2/tapdev0', minor: 0, id: 101 });
    expect(v.err).toBe(0);
    expect(v.ended).toBe(0);
    // The write is due 3 ms after tapdisk took it; each refused CLOSE costs tap-ctl 1 ms.
    const closes = tapdiskMessages(r.trace).filter((m) => m.includes(' close '));
    expect(v.took).toBeGreaterThanOrEqual(3);
    expect(closes).toHaveLength(v.took + 1);
  });
});

describe('create rollback', () => {
  // Peers: the real tapdisk's ATTACH only fails when the ring cannot be opened, which a fresh minor
  // from ALLOC_TAP never causes; the scripted tapdisk answers ATTACH with ENOMEM.
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
      { peers: { script: { on: { ATTACH: { kind: 'fail', error: 12 } } } } },
    );
    expect(r.create).toMatchObject({ code: 12, out: [] });
    expect(r.received).toEqual(['102 ATTACH 0 @0']);
    expect(r.slots).toBe(0);
    expect(r.ps).toEqual(['102 tapdisk2']);
    expect(r.tty).toEqual(['     102  -    -          - -']);
    expect(r.pipe).toEqual(['pid=102']);
  });

  test('OPEN fails (no such image): tap_ctl_open gives -ENOENT; DETACH then FREE; the tapdisk exits', async () => {
    const r = await onHost(async (h) => {
      const created = await h.library((ctx) => tapCtlCreate(ctx, 'aio:/srv/missing.img'));
      const list = await h.tapCtl(['list']);
      return { created, list: list.out, ps: h.k.processes.ps(), minors: h.drv!.minors() };
    });
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    // tapdisk answers ERROR with the positive errno; tap_ctl_open returns -u.response.error.
    expect(v.created).toEqual({ err: -2, devname: '/dev/xen/blktap-2/tapdev0', minor: 0, id: 101 });
    expect(tapdiskMessages(r.trace)).toEqual(['101 attach 0 @0', '101 open 0 @0', '101 detach 0 @0']);
    expect(v.list).toEqual([]);
    expect(v.ps).toEqual([]);
    expect(v.minors).toEqual([]);
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
    { argv: ['check'], code: 0, why: 'blktap-control is in /proc/misc', out: ['ok'] },
    { argv: ['major', '-c'], code: 22, why: 'the char major is refused with EINVAL' },
  ])('$argv: $why', async ({ argv, code, out }) => {
    const r = await host(async (h) => h.tapCtl(argv));
    expect(r.code).toBe(code);
    expect(r.out).toEqual(out ?? []);
  });

  test('free before any allocate: udev made the control node, FREE_TAP of a free minor is ENODEV (exit 1)', async () => {
    const r = await host(async (h) => ({
      free: await h.tapCtl(['free', '-m', '3']),
      node: h.k.ns.lookup('/dev/xen/blktap-2/control'),
      control: h.drv!.controlMinor,
    }));
    expect(r.free).toMatchObject({ code: 1, out: [] });
    expect(r.node).toEqual({ kind: 'chr', major: 10, minor: r.control });
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
    const path = makeImage(1 << 20);
    const r = await host(async (h) => {
      await h.tapCtl(['create', '-a', `aio:${path}`]);
      const free = await h.tapCtl(['free', '-m', '0']);
      return { free, minors: h.drv!.minors(), sysfs: h.k.ns.glob('/sys/class/blktap2/*') };
    });
    expect(r.free.code).toBe(1);
    expect(r.minors).toEqual([0]);
    expect(r.sysfs).toEqual(['/sys/class/blktap2/blktap0']);
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

  test('allocate re-makes the control node from /proc/misc when it is gone, unlinks and re-mknods the ring and I/O nodes; -d names the I/O node', async () => {
    const r = await host(async (h) => {
      // Stale nodes with wrong numbers, and no control node: tap-ctl must not trust either.
      h.k.ns.unlink('/dev/xen/blktap-2/control');
      h.k.ns.mknod('/dev/xen/blktap-2/blktap1', 'chr', 1, 1);
      h.k.ns.mknod('/dev/mytap', 'blk', 1, 1);
      const a = await h.tapCtl(['allocate']);
      const b = await h.tapCtl(['allocate', '-d', '/dev/mytap']);
      const nodes = ['/dev/xen/blktap-2/control', '/dev/xen/blktap-2/blktap1', '/dev/mytap'].map((p) =>
        h.k.ns.lookup(p),
      );
      const drv = h.drv!;
      return {
        a: a.out,
        b: b.out,
        nodes,
        control: drv.controlMinor,
        ring: drv.ringMajor,
        blk: drv.deviceMajor,
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

  test('list skips a tapdisk whose PID request times out after 2 s (stuck in munmap) and shows its minor as orphaned', async () => {
    const path = makeImage(1 << 20);
    const r = await onHost(async (h) => {
      await h.tapCtl(['create', '-a', `aio:${path}`]);
      await h.holdTapdev(0);
      await h.tapCtl(['destroy', '-p', '101', '-m', '0']);
      return h.tapCtl(['list'], { tty: true });
    });
    expect(r.value).toMatchObject({ start: 5000, end: 7000, out: ['       -  0    -          - -'] });
    expect(r.stalls[1]?.chain[0]?.waitsFor).toBe('tap-ctl select() 2 s: PID_RSP from tapdisk 101');
  });

  test('tap_ctl_find returns the socket id and minor of a type:path, -ENOENT otherwise', async () => {
    const a = makeImage(1 << 20, 'a.img');
    const b = makeImage(1 << 20, 'b.img');
    const r = await host(async (h) => {
      await h.tapCtl(['create', '-a', `aio:${a}`]);
      await h.tapCtl(['create', '-a', `aio:${b}`]);
      return [
        await h.library((ctx) => tapCtlFind(ctx, 'aio', b)),
        await h.library((ctx) => tapCtlFind(ctx, 'ram', b)),
      ];
    });
    // The second create is tap-ctl 102, its tapdisk2 103.
    expect(r[0]).toEqual({ err: 0, found: { id: 103, pid: 103, minor: 1, state: 0 } });
    expect(r[1]).toEqual({ err: -2 });
  });
});
