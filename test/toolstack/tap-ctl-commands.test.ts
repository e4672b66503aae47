import { describe, expect, test } from 'vitest';
import { host } from './tap-ctl-harness.js';

describe('tap-ctl create, list, destroy against a tapdisk speaking the codec', () => {
  test('create prints the tapdev; list shows the row (tty and pipe); destroy clears everything', async () => {
    const r = await host(async (h) => {
      const create = await h.tapCtl(['create', '-a', 'aio:/srv/disk.img']);
      const tty = await h.tapCtl(['list'], { tty: true });
      const pipe = await h.tapCtl(['list']);
      const messages = [...h.log.received];
      const destroy = await h.tapCtl(['destroy', '-p', '102', '-m', '0']);
      const after = await h.tapCtl(['list']);
      return {
        create,
        tty: tty.out,
        pipe: pipe.out,
        messages,
        destroy,
        after: after.out,
        received: h.log.received.slice(messages.length),
        sysfs: h.k.ns.glob('/sys/class/blktap2/*'),
        nodes: h.k.ns.glob('/dev/xen/blktap-2/*'),
        sockets: h.k.ns.glob('/var/run/blktap-control/*'),
        ps: h.k.processes.ps().map((p) => p.name),
      };
    });
    expect(r.create).toMatchObject({ code: 0, out: ['/dev/xen/blktap-2/tapdev0'] });
    expect(r.tty).toEqual(['     102  0    0        aio /srv/disk.img']);
    expect(r.pipe).toEqual(['pid=102 minor=0 state=0 args=aio:/srv/disk.img']);
    expect(r.messages).toEqual([
      '102 ATTACH 0 @0',
      '102 OPEN 0 @0',
      '102 PID 0 @0',
      '102 LIST 65535 @0',
      '102 PID 0 @0',
      '102 LIST 65535 @0',
    ]);
    expect(r.destroy).toMatchObject({ code: 0, out: [] });
    expect(r.received).toEqual(['102 CLOSE 0 @0', '102 DETACH 0 @0']);
    expect(r.after).toEqual([]);
    expect(r.sysfs).toEqual([]);
    // tap-ctl never unlinks the device nodes it made.
    expect(r.nodes).toEqual([
      '/dev/xen/blktap-2/blktap0',
      '/dev/xen/blktap-2/control',
      '/dev/xen/blktap-2/tapdev0',
    ]);
    expect(r.sockets).toEqual([]);
    expect(r.ps).toEqual([]);
  });
});
