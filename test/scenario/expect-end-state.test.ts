// Checking expectations against an end state the run may not have finished reading, and an oops the
// scenario expects.
import { describe, expect, it } from 'vitest';
import {
  checkExpectations,
  type EndState,
  endStateParts,
  howRunEnded,
  type RunFacts,
} from '../../emulator/scenario/expect.js';
import { parseScenario } from '../../emulator/scenario/load.js';

const s = parseScenario(
  `name: t
description: test
domains:
  - name: guest1
host:
  images:
    - name: disk.img
      size: 4MiB
steps:
  - xl: create /etc/xen/guest1.cfg
expect:
  tap-ctl-list: ["minor=0"]
  loop-devices: []
  xenstore-absent: [/local/domain/0/backend/vbd/1]
  xenstore: { /local/domain/1/name: guest1 }
  domains:
    dead: [guest1]
`,
  't.yaml',
);

const facts = (end: EndState, outcome: RunFacts['outcome'] = 'completed'): RunFacts => ({
  outcome,
  stalls: [],
  endTime: 100,
  dmesg: {},
  domainNames: { 0: 'dom0' },
  end,
  workDir: '/nonexistent',
  steps: [],
});

const fullyRead: EndState = {
  guestStates: { guest1: 'dead' },
  xenstore: { '/local/domain/0/backend/vbd/1': undefined, '/local/domain/1/name': 'guest1' },
  tapCtlList: ['minor=0'],
  loopDevices: [],
};

const nothingRead: EndState = { guestStates: {}, xenstore: {}, tapCtlList: undefined };

const byName = (end: EndState, outcome: RunFacts['outcome'] = 'completed') =>
  Object.fromEntries(checkExpectations(s, facts(end, outcome)).map((c) => [c.name, [c.ok, c.detail]]));

describe('the end state and what was read of it', () => {
  it('lists the parts the expectations look at, in the order the runner reads them', () => {
    expect(endStateParts(s)).toEqual([
      'guest states',
      'xenstore /local/domain/0/backend/vbd/1',
      'xenstore /local/domain/1/name',
      'tap-ctl list',
      'losetup -a',
    ]);
  });

  it.each([
    ['deadlock', 'in a deadlock'],
    ['error', 'with an error'],
    ['completed', 'early'],
  ] as const)('a run with outcome %s ended %s', (outcome, how) => {
    expect(howRunEnded(outcome)).toBe(how);
  });

  it('a fully read end state is judged as read', () => {
    expect(byName(fullyRead)).toEqual({
      'expect.tap-ctl-list': [true, 'minor=0'],
      'expect.loop-devices': [true, '(no loop devices bound)'],
      'expect.xenstore-absent /local/domain/0/backend/vbd/1': [true, 'absent'],
      'expect.xenstore /local/domain/1/name': [true, '= "guest1"'],
      'expect.domains.dead': [true, '[guest1]'],
    });
  });

  it('parts a deadlock kept the runner from reading fail as "not checked", never as empty values', () => {
    const end: EndState = {
      ...nothingRead,
      unread: { ended: 'in a deadlock', parts: endStateParts(s) },
    };
    expect(byName(end, 'deadlock')).toEqual({
      'expect.tap-ctl-list': [
        false,
        'not checked: the run ended in a deadlock before tap-ctl list could run',
      ],
      'expect.loop-devices': [false, 'not checked: the run ended in a deadlock before losetup -a could run'],
      'expect.xenstore-absent /local/domain/0/backend/vbd/1': [
        false,
        'not checked: the run ended in a deadlock before /local/domain/0/backend/vbd/1 was read',
      ],
      'expect.xenstore /local/domain/1/name': [
        false,
        'not checked: the run ended in a deadlock before /local/domain/1/name was read',
      ],
      'expect.domains.dead': [
        false,
        "not checked: the run ended in a deadlock before the domains' states were read",
      ],
    });
  });

  it('a run stopped part way judges what it read and marks only the rest', () => {
    const end: EndState = {
      ...fullyRead,
      tapCtlList: undefined,
      loopDevices: undefined,
      unread: { ended: 'with an error', parts: ['tap-ctl list', 'losetup -a'] },
    };
    const got = byName(end, 'error');
    expect(got['expect.domains.dead']).toEqual([true, '[guest1]']);
    expect(got['expect.xenstore /local/domain/1/name']).toEqual([true, '= "guest1"']);
    expect(got['expect.tap-ctl-list']).toEqual([
      false,
      'not checked: the run ended with an error before tap-ctl list could run',
    ]);
  });

  it('tap-ctl list and losetup that failed say why; with neither rows nor an error, say so', () => {
    const failed = byName({ ...fullyRead, tapCtlList: undefined, tapCtlError: 'ECONNREFUSED' });
    expect(failed['expect.tap-ctl-list']).toEqual([false, 'tap-ctl list failed: ECONNREFUSED']);
    const bare = byName({ ...fullyRead, tapCtlList: undefined, loopDevices: undefined });
    expect(bare['expect.tap-ctl-list']).toEqual([
      false,
      'tap-ctl list failed: no rows and no error were recorded',
    ]);
    expect(bare['expect.loop-devices']).toEqual([
      false,
      'losetup -a failed: no rows and no error were recorded',
    ]);
    for (const [, detail] of Object.values(bare)) expect(detail).not.toContain('undefined');
  });
});

describe('expect.oops', () => {
  const oops = parseScenario(
    `name: o
description: test
domains:
  - name: guest1
host:
  images:
    - name: disk.img
      size: 4MiB
steps:
  - xl: create /etc/xen/guest1.cfg
expect:
  oops: "BUG: unable to handle"
`,
    'o.yaml',
  );
  const run = (outcome: RunFacts['outcome'], error?: string) =>
    checkExpectations(oops, { ...facts(nothingRead, outcome), ...(error ? { error } : {}) }).map((c) => [
      c.ok,
      c.detail,
    ]);

  it.each<[string, RunFacts['outcome'], string | undefined, boolean, string]>([
    [
      'the expected oops',
      'error',
      'task dom0/oops#27 failed: BUG: unable to handle kernel paging request',
      true,
      "the run's expected ending: task dom0/oops#27 failed: BUG: unable to handle kernel paging request",
    ],
    ['another error', 'error', 'task dom0/x#3 failed: EIO', false, 'task dom0/x#3 failed: EIO'],
    ['no oops at all', 'completed', undefined, false, 'no oops: run completed'],
    ['a deadlock', 'deadlock', undefined, false, 'no oops: run deadlock'],
  ])('%s', (_what, outcome, error, ok, detail) => {
    expect(run(outcome, error)).toEqual([[ok, detail]]);
  });
});
