import { describe, expect, test } from 'vitest';
import { onHost } from './tap-ctl-harness.js';

describe('tap-ctl destroy when tapdisk cannot finish DETACH (teardown §3)', () => {
  test('select() gives up at exactly t+5000 ms, the stall names the wait, FREE is never sent, the minor leaks', async () => {
    const r = await onHost(
      async (h) => {
        await h.tapCtl(['create', '-a', 'aio:/srv/disk.img']);
        const before = h.log.received.length;
        const destroy = await h.tapCtl(['destroy', '-p', '102', '-m', '0']);
        const received = h.log.received.slice(before);
        const slotAfterDestroy = h.blktap!.slots[0] !== undefined;
        const tty = await h.tapCtl(['list'], { tty: true });
        const pipe = await h.tapCtl(['list']);
        const free = await h.tapCtl(['free', '-m', '0']);
        const after = await h.tapCtl(['list']);
        return {
          destroy,
          received,
          slotAfterDestroy,
          tty: tty.out,
          pipe: pipe.out,
          free,
          after: after.out,
          replyErrors: h.log.replyErrors,
        };
      },
      { script: { on: { DETACH: { kind: 'block-until-hangup' } } } },
    );
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    // CLOSE answered at once; DETACH hangs until tap-ctl's select gives up 5 s later: EIO, exit 5.
    expect(v.destroy).toMatchObject({ code: 5, start: 0, end: 5000, out: [] });
    expect(v.received).toEqual(['102 CLOSE 0 @0', '102 DETACH 0 @0']);
    // The tapdisk replied into a socket whose reader had gone.
    expect(v.replyErrors).toEqual(['102 DETACH: EPIPE']);
    expect(v.slotAfterDestroy).toBe(true);
    expect(v.tty).toEqual(['       -  0    -          - -']);
    expect(v.pipe).toEqual(['minor=0']);
    expect(v.free).toMatchObject({ code: 0, out: [] });
    expect(v.after).toEqual([]);

    const frees = r.trace.filter((e) => e.comp === 'tap-ctl' && e.kind.startsWith('free'));
    expect(frees.map((e) => e.fields?.minor)).toEqual([0]); // only the manual `tap-ctl free -m 0`
    const timeouts = r.trace.filter((e) => e.comp === 'tap-ctl' && e.kind === 'timeout');
    expect(timeouts.map((e) => [e.t, e.fields?.waited, e.fields?.seconds])).toEqual([
      [5000, 'DETACH_RSP', 5],
    ]);

    expect(r.stalls).toHaveLength(1);
    const stall = r.stalls[0]!;
    expect(stall.at).toBe(0);
    expect(stall.brokenBy).toMatchObject({ timer: 'tap-ctl select() timeout', at: 5000 });
    expect(stall.cycle).toBe(true);
    expect(stall.chain[0]).toMatchObject({
      waitsFor: 'tap-ctl select() 5 s: DETACH_RSP from tapdisk 102',
      heldBy: 'dom-1/tapdisk2[102]',
      deadline: 5000,
    });
  });
});
