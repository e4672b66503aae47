import { describe, expect, test } from 'vitest';
import type { TraceEvent } from '../../emulator/runtime/engine.js';
import { escapeMermaidText, toMermaid } from '../../emulator/trace/mermaid.js';

const ev = (
  t: number,
  dom: number,
  comp: string,
  kind: string,
  fields: Record<string, unknown> = {},
): TraceEvent => ({
  t,
  dom,
  task: `${comp}#1`,
  comp,
  kind,
  fields,
});

describe('escapeMermaidText', () => {
  test.each([
    ['plain text', 'plain text'],
    ['a;b', 'a#59;b'],
    ['#1', '#35;1'],
    ['x < y > z', 'x #lt; y #gt; z'],
    ['detach-end', 'detach-(end)'],
    ['END of line', '(END) of line'],
    ['endpoint ends legend', 'endpoint ends legend'],
    ['two\nlines\r\nhere', 'two lines here'],
    ['#;', '#35;#59;'],
    ['  padded  ', 'padded'],
  ])('%j -> %j', (input, output) => {
    expect(escapeMermaidText(input)).toBe(output);
  });
});

describe('toMermaid', () => {
  test('the 2012 teardown: handshake, libxl, tap-ctl timeout, a stall', () => {
    const names = new Map([[1, 'guest1']]);
    const events: TraceEvent[] = [
      ev(0, 0, 'libxl', 'op', {
        pid: 50,
        op: 'xs_transaction generic_add device/vbd/51712 backend/vbd/1/51712',
      }),
      ev(1, 1, 'blkfront', 'xenbus-state', {
        path: 'device/vbd/51712',
        from: 'Initialising',
        to: 'Initialised',
      }),
      ev(2, 0, 'xenbus', 'watch-callback', { path: 'device/vbd/51712/state', token: 'be', flow: 1 }),
      ev(3, 0, 'blkback', 'xenbus-state', { path: 'backend/vbd/1/51712', from: 2, to: 4 }),
      ev(4, 0, 'blkback', 'blk-req', { phase: 'start', ring: 'vbd-1-51712', id: '1' }), // data path: not shown
      ev(5, 0, 'tap-ctl', 'send', { pid: 60, to: 201, type: 'DETACH', cookie: 0 }),
      ev(5, -1, 'runtime', 'stall', {
        chain: [
          { holder: 'dom0/tap-ctl#9', waitsFor: 'DETACH_RSP from tapdisk 201' },
          { holder: 'dom0/tapdisk#7', waitsFor: 'tapdev0 to have no openers' },
        ],
        cycle: false,
        brokenBy: { timer: 'tap-ctl select() timeout', task: 'dom0/tap-ctl#9', at: 5005 },
      }),
      ev(5005, 0, 'tap-ctl', 'timeout', { pid: 60, from: 201, waited: 'DETACH_RSP', seconds: 5 }),
      ev(5005, -1, 'runtime', 'stall-end', { by: 'timeout', task: 'dom0/tap-ctl#9', duration: 5000 }),
      ev(5006, 0, 'tapdisk', 'detach-end', { pid: 201, minor: 0 }),
      ev(5007, 0, 'blktap', 'destroy-wait', { minor: 0, openers: 1 }),
      ev(5008, 0, 'blkback', 'vbd-close', { disk: 'tapdev0', holder: 'blkback vbd-1-51712' }),
      ev(5009, 0, 'libxl', 'op', { op: 'tap_ctl_destroy 201 0', err: -5 }),
      ev(5010, 0, 'libxl', 'log', {
        level: 'error',
        where: 'x',
        message: 'tap-ctl destroy failed; minor 0 left',
      }),
    ];
    expect(toMermaid(events, { domainNames: names })).toBe(
      [
        'sequenceDiagram',
        '  box rgb(230,242,255) guest1',
        '    participant fe1 as guest1 blkfront',
        '  end',
        '  box rgb(240,240,240) dom0',
        '    participant xs as xenstore',
        '    participant bb as xenwatch/blkback',
        '    participant libxl as libxl',
        '    participant tapctl as tap-ctl',
        '    participant td201 as tapdisk[201]',
        '    participant blktap as blktap',
        '  end',
        '  libxl->>xs: xs_transaction generic_add device/vbd/51712 backend/vbd/1/51712',
        '  fe1->>xs: device/vbd/51712/state = Initialised (Initialising(1) → Initialised(3))',
        '  xs-)bb: watch fires: device/vbd/51712/state',
        '  bb->>xs: backend/vbd/1/51712/state = 4 (InitWait(2) → Connected(4))',
        '  tapctl->>td201: DETACH',
        '  rect rgb(255,228,225)',
        '    Note over fe1,blktap: STALL: dom0/tap-ctl#35;9 waits for DETACH_RSP from tapdisk 201 → dom0/tapdisk#35;7 waits for tapdev0 to have no openers — broken by tap-ctl select() timeout in dom0/tap-ctl#35;9',
        '    tapctl-xtd201: no DETACH_RSP after 5 s (select timeout)',
        '    Note over fe1,blktap: stall ends (timeout in dom0/tap-ctl#35;9)',
        '  end',
        '  Note over td201: detach-(end) minor=0',
        '  Note over blktap: destroy-wait minor=0 openers=1',
        '  bb->>blktap: close tapdev0',
        '  libxl->>tapctl: tap_ctl_destroy 201 0',
        '  Note over libxl: error: tap-ctl destroy failed#59; minor 0 left',
        '',
      ].join('\n'),
    );
  });

  test('size is bounded: the rest is one note, an open stall block is still closed', () => {
    const events: TraceEvent[] = [ev(0, -1, 'runtime', 'stall', { chain: [], cycle: true })];
    for (let i = 0; i < 50; i++) events.push(ev(1 + i, 0, 'tap-ctl', 'send', { to: 201, type: `T${i}` }));
    const lines = toMermaid(events, { maxSteps: 3 }).trimEnd().split('\n');
    expect(lines.slice(-6)).toEqual([
      '  rect rgb(255,228,225)',
      '    Note over tapctl,td201: STALL (cycle): no waits recorded',
      '    tapctl->>td201: T0',
      '    tapctl->>td201: T1',
      '  end',
      '  Note over tapctl,td201: 48 more steps not shown',
    ]);
  });

  test('frontends of several guests come first, in domid order; autonumber on request', () => {
    const text = toMermaid(
      [
        ev(0, 3, 'blkfront', 'xenbus-state', { path: 'device/vbd/51712', from: 1, to: 3 }),
        ev(1, 2, 'blkfront', 'xenbus-state', { path: 'device/vbd/51712', from: 1, to: 3 }),
        ev(2, 0, 'xenbus', 'xenbus-state', { path: 'backend/vbd/2/51712', from: 2, to: 4 }),
      ],
      { autonumber: true },
    );
    expect(text.split('\n').slice(0, 12)).toEqual([
      'sequenceDiagram',
      '  autonumber',
      '  box rgb(230,242,255) dom2',
      '    participant fe2 as dom2 blkfront',
      '  end',
      '  box rgb(230,242,255) dom3',
      '    participant fe3 as dom3 blkfront',
      '  end',
      '  box rgb(240,240,240) dom0',
      '    participant xs as xenstore',
      '    participant bb as xenwatch/blkback',
      '  end',
    ]);
  });

  test('no control-path events: a diagram with xenstore alone', () => {
    expect(toMermaid([ev(0, 1, 'blkfront', 'request-start', { disk: 'xvda', id: 1, op: 'read' })])).toBe(
      'sequenceDiagram\n  box rgb(240,240,240) dom0\n    participant xs as xenstore\n  end\n',
    );
  });

  test('bad maxSteps is refused', () => {
    expect(() => toMermaid([], { maxSteps: 0 })).toThrow('maxSteps must be a positive integer, got 0');
  });
});
