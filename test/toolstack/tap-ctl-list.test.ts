import { describe, expect, it } from 'vitest';
import { listReplyMessages } from '../../emulator/tapdisk/message.js';
import {
  filterTapList,
  formatTapList,
  formatTapListDict,
  formatTapListRow,
  joinTapdiskList,
  listTapdiskByPid,
  NO_FILTER,
  type TapdiskProbe,
  type TapListEntry,
  vbdsFromListReplies,
} from '../../emulator/toolstack/tap-ctl-list.js';

const full: TapListEntry = { pid: 201, minor: 0, state: 0, type: 'aio', path: '/srv/disk.img' };
const paused: TapListEntry = { pid: 4242, minor: 12, state: 0x2a, type: 'vhd', path: '/srv/x.vhd' };
const noImage: TapListEntry = { pid: 201, minor: 3, state: 2, type: null, path: null };
const orphanTapdisk: TapListEntry = { pid: 977, minor: -1, state: -1, type: null, path: null };
const orphanMinor: TapListEntry = { pid: -1, minor: 7, state: -1, type: null, path: null };
const bigMinor: TapListEntry = { pid: 12345678, minor: 1023, state: 0x40, type: 'aio', path: '/a b' };
const negState: TapListEntry = { pid: 5, minor: 1, state: -2, type: '', path: 'x' };

describe('terminal rows', () => {
  it.each([
    [full, 'xen', '     201  0    0        aio /srv/disk.img\n'],
    [full, 'xapi', '     201    0    0        aio /srv/disk.img\n'],
    [paused, 'xen', '    4242 12   2a        vhd /srv/x.vhd\n'],
    [paused, 'xapi', '    4242   12 0x2a        vhd /srv/x.vhd\n'],
    [noImage, 'xen', '     201  3    2          - -\n'],
    [noImage, 'xapi', '     201    3  0x2          - -\n'],
    [orphanTapdisk, 'xen', '     977  -    -          - -\n'],
    [orphanTapdisk, 'xapi', '     977    -    -          - -\n'],
    [orphanMinor, 'xen', '       -  7    -          - -\n'],
    [orphanMinor, 'xapi', '       -    7    -          - -\n'],
    [bigMinor, 'xen', '12345678 1023   40        aio /a b\n'],
    [bigMinor, 'xapi', '12345678 1023 0x40        aio /a b\n'],
    [negState, 'xen', '       5  1 fffffffe            x\n'],
    [negState, 'xapi', '       5    1 0xfffffffe            x\n'],
  ] as const)('%o on %s', (entry, variant, line) => {
    expect(formatTapListRow(entry, variant)).toBe(line);
  });
});

describe('piped rows', () => {
  it.each([
    [full, 'xen', 'pid=201 minor=0 state=0 args=aio:/srv/disk.img\n'],
    [full, 'xapi', 'pid=201 minor=0 state=0 args=aio:/srv/disk.img\n'],
    [paused, 'xen', 'pid=4242 minor=12 state=42 args=vhd:/srv/x.vhd\n'],
    [paused, 'xapi', 'pid=4242 minor=12 state=0x2a args=vhd:/srv/x.vhd\n'],
    [noImage, 'xen', 'pid=201 minor=3 state=2\n'],
    [orphanTapdisk, 'xen', 'pid=977\n'],
    [orphanMinor, 'xen', 'minor=7\n'],
    [orphanMinor, 'xapi', 'minor=7\n'],
    [negState, 'xen', 'pid=5 minor=1 state=-2 args=:x\n'],
    [{ pid: -1, minor: -1, state: -1, type: null, path: null }, 'xen', '\n'],
    [{ pid: -1, minor: -1, state: -1, type: 'aio', path: '/p' }, 'xen', 'args=aio:/p\n'],
  ] as const)('%o on %s', (entry, variant, line) => {
    expect(formatTapListDict(entry, variant)).toBe(line);
  });
});

describe('filters', () => {
  const all = [full, paused, noImage, orphanTapdisk, orphanMinor];
  it.each([
    [{}, [full, paused, noImage, orphanTapdisk, orphanMinor]],
    [{ minor: 7 }, [orphanMinor]],
    [{ minor: -5 }, all],
    [{ pid: 201 }, [full, noImage]],
    [{ type: 'vhd' }, [paused, noImage, orphanTapdisk, orphanMinor]],
    [{ file: '/srv/disk.img' }, [full, noImage, orphanTapdisk, orphanMinor]],
    [{ pid: 201, type: 'aio' }, [full, noImage]],
  ])('%o', (f, expected) => {
    expect(filterTapList(all, { ...NO_FILTER, ...f })).toEqual(expected);
  });

  it('formats after filtering', () => {
    expect(
      formatTapList([full, orphanMinor], { variant: 'xen', tty: false, filter: { ...NO_FILTER, minor: 7 } }),
    ).toBe('minor=7\n');
  });
});

const probe = (
  socketId: number,
  vbds: TapdiskProbe['vbds'],
  pid: TapdiskProbe['pid'] = socketId,
): TapdiskProbe => ({
  socketId,
  pid,
  vbds,
});

describe('joinTapdiskList', () => {
  it('joins a healthy host: one tapdisk per minor, nothing orphaned', () => {
    const r = joinTapdiskList(
      [1, 0],
      [
        probe(300, [{ minor: 1, state: 0, path: 'aio:/b' }]),
        probe(200, [{ minor: 0, state: 0, path: 'aio:/a' }]),
      ],
      'xen',
    );
    expect(r).toEqual({
      ok: true,
      entries: [
        { pid: 200, minor: 0, state: 0, type: 'aio', path: '/a' },
        { pid: 300, minor: 1, state: 0, type: 'aio', path: '/b' },
      ],
    });
  });

  it('shows the 2012 leak: minors no tapdisk claims, after the tapdisk rows', () => {
    const r = joinTapdiskList([7, 2, 9], [probe(201, [{ minor: 9, state: 0, path: 'aio:/g' }])], 'xen');
    expect(r.ok && formatTapList(r.entries, { variant: 'xen', tty: true })).toBe(
      '     201  9    0        aio /g\n       -  2    -          - -\n       -  7    -          - -\n',
    );
    expect(r.ok && formatTapList(r.entries, { variant: 'xen', tty: false })).toBe(
      'pid=201 minor=9 state=0 args=aio:/g\nminor=2\nminor=7\n',
    );
  });

  it('shows a tapdisk without VBDs as an orphaned tapdisk', () => {
    expect(joinTapdiskList([], [probe(55, [])], 'xen')).toEqual({
      ok: true,
      entries: [{ pid: 55, minor: -1, state: -1, type: null, path: null }],
    });
  });

  it('leaves out a tapdisk whose PID request timed out (the blocked one) and orphans its minor', () => {
    const r = joinTapdiskList(
      [4],
      [probe(201, { error: -110, stage: 'read' }, { error: -110, stage: 'read' })],
      'xen',
    );
    expect(r).toEqual({ ok: true, entries: [{ pid: -1, minor: 4, state: -1, type: null, path: null }] });
  });

  it('lists VBDs of one tapdisk in reverse reply order', () => {
    const r = joinTapdiskList(
      [],
      [
        probe(9, [
          { minor: 1, state: 0, path: 'aio:/1' },
          { minor: 2, state: 0, path: '' },
        ]),
      ],
      'xapi',
    );
    expect(r.ok && r.entries.map((e) => e.minor)).toEqual([2, 1]);
    expect(r.ok && r.entries[0].type).toBe(null);
  });

  it('orders by number on Xen and by glob (strcmp) on xapi', () => {
    const tds = [probe(1000, []), probe(99, [])];
    const xen = joinTapdiskList([10, 2], tds, 'xen');
    const xapi = joinTapdiskList([10, 2], tds, 'xapi');
    expect(xen.ok && xen.entries.map((e) => `${e.pid}/${e.minor}`)).toEqual([
      '99/-1',
      '1000/-1',
      '-1/2',
      '-1/10',
    ]);
    expect(xapi.ok && xapi.entries.map((e) => `${e.pid}/${e.minor}`)).toEqual([
      '1000/-1',
      '99/-1',
      '-1/10',
      '-1/2',
    ]);
  });

  it.each([
    [{ error: -110, stage: 'read' as const }, -71],
    [{ error: -111, stage: 'connect' as const }, -111],
  ])('fails the whole Xen listing when LIST fails (%o)', (failure, err) => {
    expect(joinTapdiskList([0], [probe(1, failure)], 'xen')).toEqual({ ok: false, err });
  });

  it('shows a tapdisk whose LIST failed as orphaned on xapi', () => {
    expect(joinTapdiskList([0], [probe(1, { error: -110, stage: 'read' })], 'xapi')).toEqual({
      ok: true,
      entries: [
        { pid: 1, minor: -1, state: -1, type: null, path: null },
        { pid: -1, minor: 0, state: -1, type: null, path: null },
      ],
    });
  });

  it('treats a LIST path without a colon as -EINVAL on Xen and as a failed LIST on xapi', () => {
    const tds = [probe(1, [{ minor: 0, state: 0, path: 'nocolon' }])];
    expect(joinTapdiskList([0], tds, 'xen')).toEqual({ ok: false, err: -22 });
    expect(joinTapdiskList([0], tds, 'xapi')).toEqual({
      ok: true,
      entries: [
        { pid: 1, minor: -1, state: -1, type: null, path: null },
        { pid: -1, minor: 0, state: -1, type: null, path: null },
      ],
    });
  });

  it('uses the PID reply, not the socket number, as the pid', () => {
    const r = joinTapdiskList([], [probe(7, [], 8)], 'xen');
    expect(r.ok && r.entries[0].pid).toBe(8);
  });
});

describe('listTapdiskByPid (xapi -p)', () => {
  it.each([
    [undefined, []],
    [probe(5, [], { error: -2, stage: 'connect' }), []],
    [probe(5, []), [{ pid: 5, minor: -1, state: -1, type: null, path: null }]],
    [probe(5, { error: -110, stage: 'read' }), [{ pid: 5, minor: -1, state: -1, type: null, path: null }]],
    [
      probe(5, [{ minor: 3, state: 0, path: 'ram:/r' }]),
      [{ pid: 5, minor: 3, state: 0, type: 'ram', path: '/r' }],
    ],
  ])('%o', (p, entries) => {
    expect(listTapdiskByPid(p)).toEqual({ ok: true, entries });
  });
});

describe('vbdsFromListReplies', () => {
  it('reads until count 0', () => {
    const msgs = listReplyMessages(0xffff, [
      { minor: 0, state: 0, path: 'aio:/a' },
      { minor: 1, state: 2, path: '' },
    ]);
    expect(vbdsFromListReplies(msgs)).toEqual([
      { minor: 0, state: 0, path: 'aio:/a' },
      { minor: 1, state: 2, path: '' },
    ]);
  });

  it('reports a truncated stream as a read failure', () => {
    const msgs = listReplyMessages(0xffff, [{ minor: 0, state: 0, path: 'aio:/a' }]).slice(0, 1);
    expect(vbdsFromListReplies(msgs)).toEqual({ error: -71, stage: 'read' });
  });
});
