import { describe, expect, test } from 'vitest';
import { makeImage, onHost, tapdiskMessages } from './tap-ctl-harness.js';

describe('tap-ctl create, list, destroy with the real blktap2 driver and tapdisk2', () => {
  test('create prints the tapdev; list shows the row (tty and pipe); destroy clears everything but the nodes', async () => {
    const path = makeImage(1 << 20);
    const r = await onHost(async (h) => {
      const create = await h.tapCtl(['create', '-a', `aio:${path}`]);
      const tty = await h.tapCtl(['list'], { tty: true });
      const pipe = await h.tapCtl(['list']);
      const destroyAt = h.env.now();
      const destroy = await h.tapCtl(['destroy', '-p', '101', '-m', '0']);
      const after = await h.tapCtl(['list']);
      return {
        create,
        tty: tty.out,
        pipe: pipe.out,
        destroyAt,
        destroy,
        after: after.out,
        minors: h.drv!.minors(),
        sysfs: h.k.ns.glob('/sys/class/blktap2/*'),
        nodes: h.k.ns.glob('/dev/xen/blktap-2/*'),
        sockets: h.k.ns.glob('/var/run/blktap-control/*'),
        disks: h.k.blocks.list().map((d) => d.name),
        ps: h.k.processes.ps().map((p) => p.name),
      };
    });
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    // tap-ctl is pid 100; the tapdisk2 it spawned is 101 and serves ctl101.
    expect(v.create).toMatchObject({ code: 0, out: ['/dev/xen/blktap-2/tapdev0'] });
    expect(v.tty).toEqual([`     101  0    0        aio ${path}`]);
    expect(v.pipe).toEqual([`pid=101 minor=0 state=0 args=aio:${path}`]);
    expect(v.destroy).toMatchObject({ code: 0, out: [] });
    expect(v.after).toEqual([]);
    expect(v.minors).toEqual([]);
    expect(v.sysfs).toEqual([]);
    expect(v.disks).toEqual([]);
    // tap-ctl never unlinks the device nodes it made.
    expect(v.nodes).toEqual([
      '/dev/xen/blktap-2/blktap0',
      '/dev/xen/blktap-2/control',
      '/dev/xen/blktap-2/tapdev0',
    ]);
    expect(v.sockets).toEqual([]);
    expect(v.ps).toEqual([]);
    expect(tapdiskMessages(r.trace)).toEqual([
      '101 attach 0 @0',
      '101 open 0 @0',
      '101 pid 0 @0',
      '101 list 65535 @0',
      '101 pid 0 @0',
      '101 list 65535 @0',
      '101 close 0 @0',
      '101 detach 0 @0',
    ]);
    const frees = r.trace.filter((e) => e.comp === 'blktap' && e.kind === 'free');
    expect(frees.map((e) => e.fields?.minor)).toEqual([0]);
    expect(r.stalls).toEqual([]);
  });
});
