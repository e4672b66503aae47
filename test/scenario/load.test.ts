import { describe, expect, it } from 'vitest';
import { ScenarioError } from '../../emulator/scenario/errors.js';
import { parseScenario, scenario } from '../../emulator/scenario/load.js';
import { DEFAULT_VERSIONS } from '../../emulator/scenario/model.js';

const MiB = 1024 * 1024;

const HEAD = `name: t
description: test
domains:
  - name: guest1
host:
  images:
    - name: disk.img
      size: 16MiB
`;

/** The formatted issues for a file made of HEAD plus `rest` (HEAD is 8 lines). */
function problems(rest: string): string[] {
  try {
    parseScenario(HEAD + rest, 'x.yaml');
  } catch (error) {
    if (!(error instanceof ScenarioError)) throw error;
    return error.format().split('\n');
  }
  return [];
}

describe('a valid scenario', () => {
  const text = `name: blktap2-teardown-deadlock
description: |
  libxl 4.1 asks tapdisk to detach while blkback holds the tapdev open.
cites: teardown.md §3
seed: 3
versions:
  libxl: 4.1
  blkback: 2012
host:
  images:
    - name: disk.img
      size: 16MiB
      fill: random
domains:
  - name: guest1
    disks: ["format=raw, vdev=xvda, access=rw, backendtype=tap, target=disk.img"]
steps:
  - xl: create guest1
  - guest: guest1
    shutdown:
  - xenstore-write: { path: /local/domain/0/x, value: 1 }
  - repeat: 2
    steps:
      - tap-ctl: list
        label: list
        reorderable: true
  - xl: destroy guest1
    expect-elapsed: { at-least: 5s, at-most: 6s }
    may-fail: true
expect:
  stall: { chain: [libxl, "/tapdisk\\\\[\\\\d+\\\\]/i"], broken-by: select }
  xenstore: { /local/domain/0/backend/vbd/1/51712/state: 6 }
  log: [{ domain: dom0, not-contains: oops }]
`;

  const s = parseScenario(text, 'scenarios/deadlock.yaml');

  it('fills defaults and keeps versions as written', () => {
    expect(s.versions).toEqual({ ...DEFAULT_VERSIONS, libxl: '4.1', blkback: '2012' });
    expect(s.host).toEqual({
      memory: 64 * MiB,
      images: [{ name: 'disk.img', size: 16 * MiB, format: 'raw', fill: { kind: 'random', seed: 0 } }],
    });
    expect(s.domains).toEqual([
      {
        name: 'guest1',
        memory: 16 * MiB,
        abi: 'x86_64',
        disks: ['format=raw, vdev=xvda, access=rw, backendtype=tap, target=disk.img'],
      },
    ]);
    expect(s.seed).toBe(3);
    expect(s.cites).toBe('teardown.md §3');
    expect(s.description).toBe('libxl 4.1 asks tapdisk to detach while blkback holds the tapdev open.\n');
  });

  it('types each step and keeps its position', () => {
    expect(s.steps.map((step) => step.kind)).toEqual(['xl', 'guest', 'xenstore-write', 'repeat', 'xl']);
    expect(s.steps[1]).toMatchObject({ guest: 'guest1', action: { kind: 'shutdown' } });
    expect(s.steps[2]).toMatchObject({ path: '/local/domain/0/x', value: '1' });
    const repeat = s.steps[3];
    if (repeat.kind !== 'repeat') throw new Error('expected a repeat step');
    expect(repeat.count).toBe(2);
    expect(repeat.steps[0]).toMatchObject({
      kind: 'tap-ctl',
      command: 'list',
      label: 'list',
      reorderable: true,
      at: { path: 'steps[3].steps[0]', file: 'scenarios/deadlock.yaml', line: 24, column: 9 },
    });
    expect(s.steps[4]).toMatchObject({
      expectElapsed: { atLeast: 5000, atMost: 6000 },
      mayFail: true,
      at: { path: 'steps[4]', line: 27, column: 5 },
    });
  });

  it('reads expectations and records positions of every field', () => {
    expect(s.expect).toEqual({
      stall: {
        kind: 'chain',
        chain: [
          { kind: 'substring', text: 'libxl' },
          { kind: 'regex', source: '\\[\\d+\\]'.replace(/^/, 'tapdisk'), flags: 'i' },
        ],
        brokenBy: { kind: 'substring', text: 'select' },
      },
      xenstore: { '/local/domain/0/backend/vbd/1/51712/state': '6' },
      log: [{ domain: 'dom0', notContains: { kind: 'substring', text: 'oops' } }],
    });
    expect(s.source.file).toBe('scenarios/deadlock.yaml');
    expect(s.source.positions['steps[0].xl']).toEqual({ line: 18, column: 9 });
    expect(s.source.positions['expect.stall.broken-by']).toEqual({ line: 31, column: 63 });
  });
});

describe('checks across fields', () => {
  it.each<[string, string, string[]]>([
    [
      'duplicate labels',
      'steps:\n  - xl: create guest1\n    label: a\n  - xl: destroy guest1\n    label: a\n',
      ['x.yaml:13:12: steps[1].label: duplicate label "a" (also on steps[0]); labels are unique'],
    ],
    [
      'two step kinds',
      'steps:\n  - xl: create guest1\n    tap-ctl: list\n',
      ['x.yaml:11:5: steps[0]: a step has one kind, found xl and tap-ctl; split it into separate steps'],
    ],
    [
      'a guest step without an action',
      'steps:\n  - guest: guest1\n',
      [
        'x.yaml:10:5: steps[0]: the guest step needs an action: one of write, read, flush, discard, fio, open, close, shutdown, crash',
      ],
    ],
    [
      'a step that is not a map',
      'steps:\n  - xl create guest1\n',
      [
        'x.yaml:10:5: steps[0]: a step is a map with one kind, like xl: create guest1; got "xl create guest1"',
      ],
    ],
    [
      'misspelt common key',
      'steps:\n  - xl: create guest1\n    lable: x\n',
      ['x.yaml:11:5: steps[0].lable: unknown key "lable"; did you mean "label"?'],
    ],
    [
      'expect-error with may-fail',
      'steps:\n  - xl: destroy guest1\n    may-fail: true\n    expect-error: EBUSY\n',
      ['x.yaml:11:15: steps[0].may-fail: expect-error already means the step must fail; drop may-fail'],
    ],
    [
      'a wait for two things',
      'steps:\n  - wait: { time: 2s, domain: guest1, state: dead }\n',
      [
        'x.yaml:10:23: steps[0].wait: a wait waits for one thing, found time and domain; use separate wait steps',
      ],
    ],
    [
      'a guest wait with a misspelt no-device',
      'steps:\n  - wait: { guest: guest1, no-devcie: xvda }\n',
      ['x.yaml:10:28: steps[0].wait.no-devcie: unknown key "no-devcie"; did you mean "no-device"?'],
    ],
    [
      'a guest wait without device or no-device',
      'steps:\n  - wait: { guest: guest1, timeout: 1s }\n',
      [
        'x.yaml:10:11: steps[0].wait: a guest wait needs device (to appear) or no-device (to be gone), e.g. no-device: xvda',
      ],
    ],
    [
      'a guest wait for both device and no-device',
      'steps:\n  - wait: { guest: guest1, device: xvda, no-device: xvda }\n',
      [
        'x.yaml:10:42: steps[0].wait: a guest wait waits for one of device and no-device; use separate wait steps',
      ],
    ],
    [
      'a guest wait for a device blkfront cannot name',
      'steps:\n  - wait: { guest: guest1, device: hda }\n',
      [
        'x.yaml:10:36: steps[0].wait.device: bad value "hda": a guest\'s disk is named xvd and letters (blkfront\'s naming); e.g. xvda',
      ],
    ],
    [
      'a guest wait for a disk blkfront cannot name',
      'steps:\n  - wait: { guest: guest1, no-device: sda }\n',
      [
        'x.yaml:10:39: steps[0].wait.no-device: bad value "sda": a guest\'s disk is named xvd and letters (blkfront\'s naming); e.g. xvda',
      ],
    ],
    [
      'a guest wait on an undeclared guest',
      'steps:\n  - wait: { guest: gest1, no-device: xvda }\n',
      ['x.yaml:10:20: steps[0].wait.guest: unknown domain "gest1"; did you mean "guest1"?'],
    ],
    [
      'a guest wait on dom0',
      'steps:\n  - wait: { guest: dom0, no-device: xvda }\n',
      ['x.yaml:10:20: steps[0].wait.guest: this must name a guest, not dom0'],
    ],
    [
      'an unknown fault with a suggestion',
      'steps:\n  - fault: { kill-tapdsk: {} }\n',
      ['x.yaml:10:14: steps[0].fault.kill-tapdsk: unknown fault "kill-tapdsk"; did you mean "kill-tapdisk"?'],
    ],
    [
      'a signal that does not exist',
      'steps:\n  - fault: { kill-tapdisk: { signal: KIL } }\n',
      ['x.yaml:10:38: steps[0].fault.kill-tapdisk.signal: unknown signal "KIL"; did you mean "KILL"?'],
    ],
    [
      'a crash of dom0',
      'steps:\n  - fault: { crash-domain: { domain: dom0 } }\n',
      ['x.yaml:10:38: steps[0].fault.crash-domain.domain: this must name a guest, not dom0'],
    ],
    [
      'a relative xenstore path',
      'steps:\n  - xenstore-rm: { path: backend/vbd }\n',
      [
        'x.yaml:10:26: steps[0].xenstore-rm.path: xenstore path "backend/vbd" is relative; write it in full, like /local/domain/0/backend/vbd',
      ],
    ],
    [
      'a bad regular expression',
      'steps:\n  - xl: create guest1\nexpect:\n  stall: { chain: ["/tap(disk/"] }\n',
      [
        'x.yaml:12:20: expect.stall.chain[0]: bad regular expression /tap(disk/: Invalid regular expression: /tap(disk/: Unterminated group',
      ],
    ],
    [
      'a guest in two end states',
      'steps:\n  - xl: create guest1\nexpect:\n  domains: { dying: [guest1], dead: [guest1] }\n',
      ['x.yaml:12:38: expect.domains.dead[0]: "guest1" is already expected to be dying'],
    ],
    [
      'fio with count and duration and a block size above its size',
      'steps:\n  - guest: guest1\n    fio: { disk: xvda, rw: randrw, bs: 8KiB, size: 4KiB, count: 3, duration: 1s }\n',
      [
        'x.yaml:11:40: steps[0].fio.bs: block size is larger than size (4096 bytes); lower bs or raise size',
        'x.yaml:11:78: steps[0].fio.duration: give either count or duration, not both',
      ],
    ],
    [
      'a missing required field with an example',
      'steps:\n  - guest: guest1\n    write: { disk: xvda, offset: 0, length: 4KiB }\n',
      ['x.yaml:11:12: steps[0].write: missing "pattern" (e.g. pattern: seq)'],
    ],
    [
      'steps that are empty',
      'steps: []\n',
      ['x.yaml:9:8: steps: needs at least one step, e.g. - xl: create guest1'],
    ],
  ])('%s', (_what, rest, expected) => {
    expect(problems(rest)).toEqual(expected);
  });

  it('reports an empty file and a document that is not a map', () => {
    expect(() => parseScenario('', 'e.yaml')).toThrow(
      'e.yaml:1:1: the scenario is empty; start with name:, description: and steps:',
    );
    expect(() => parseScenario('- a\n', 'l.yaml')).toThrow(
      'l.yaml:1:1: expected a map like { name: my-scenario, description: ..., steps: [...] }, got a list',
    );
  });

  it('refuses a second YAML document and an unknown alias', () => {
    expect(() => parseScenario('name: a\n---\nname: b\n', 'd.yaml')).toThrow(
      'd.yaml:2:1: YAML syntax: a scenario file holds one YAML document; remove the extra ---',
    );
    expect(problems('steps:\n  - xl: *cmd\n')).toEqual([
      'x.yaml:10:9: steps[0].xl: unknown alias *cmd; define it first with &cmd',
    ]);
  });

  it('expands aliases, pointing errors at the place of use', () => {
    const ok = parseScenario(`${HEAD}steps:\n  - &c { xl: create guest1 }\n  - *c\n`, 'a.yaml');
    expect(ok.steps.map((s) => s.kind === 'xl' && s.command)).toEqual(['create guest1', 'create guest1']);
    expect(ok.steps[1].at).toMatchObject({ path: 'steps[1]', line: 11, column: 5 });
  });
});

describe('guest blkfront parameters and the slow-hotplug fault', () => {
  it('reads blkfront parameters per domain, leaving out what the file leaves out', () => {
    const s = parseScenario(
      `name: t
description: test
domains:
  - name: guest1
    blkfront: { feature-persistent: false }
  - name: guest2
    blkfront: { max-indirect-segments: 0, max-ring-page-order: 2 }
  - name: guest3
steps:
  - fault: { slow-hotplug: { delay: 2s } }
`,
      'x.yaml',
    );
    expect(s.domains.map((d) => d.blkfront)).toEqual([
      { featurePersistent: false },
      { maxIndirectSegments: 0, maxRingPageOrder: 2 },
      undefined,
    ]);
    expect('blkfront' in s.domains[2]).toBe(false);
    expect(s.steps[0]).toMatchObject({ kind: 'fault', fault: { kind: 'slow-hotplug', delay: 2000 } });
  });

  it('reports misspellings, wrong types and ranges with file:line:column', () => {
    let error: ScenarioError | undefined;
    try {
      parseScenario(
        `name: t
description: test
domains:
  - name: guest1
    blkfront: { feature-persistant: false, max-ring-page-order: 9 }
  - name: guest2
    blkfront: { feature-persistent: "no", max-indirect-segments: 1.5 }
  - name: guest3
    blkfront: off
  - name: guest4
    blkfrnt: { feature-persistent: false }
steps:
  - fault: { slow-hotplug: { delay: fast } }
  - fault: { slow-hotplug: {} }
  - fault: { slow-hotplg: { delay: 1s } }
  - fault: { slow-hotplug: { delay: 0s } }
  - fault: { slow-hotplug: { dealy: 1s } }
`,
        'x.yaml',
      );
    } catch (e) {
      error = e as ScenarioError;
    }
    expect(error?.format().split('\n')).toEqual([
      'x.yaml:5:17: domains[0].blkfront.feature-persistant: unknown blkfront parameter "feature-persistant"; did you mean "feature-persistent"?',
      'x.yaml:5:65: domains[0].blkfront.max-ring-page-order: 9 is out of range; expected 0 to 4',
      'x.yaml:7:37: domains[1].blkfront.feature-persistent: expected true or false, got "no"',
      'x.yaml:7:66: domains[1].blkfront.max-indirect-segments: expected a whole number from 0 to 4096, got 1.5',
      'x.yaml:9:15: domains[2].blkfront: expected a map like { feature-persistent: false }, got "off"',
      'x.yaml:11:5: domains[3].blkfrnt: unknown key "blkfrnt"; did you mean "blkfront"?',
      'x.yaml:13:37: steps[0].fault.slow-hotplug.delay: bad duration "fast"; write a number with a unit, like 5s, 500ms, 10us or 2m (a bare number is seconds)',
      'x.yaml:14:28: steps[1].fault.slow-hotplug: missing "delay" (e.g. delay: 2s)',
      'x.yaml:15:14: steps[2].fault.slow-hotplg: unknown fault "slow-hotplg"; did you mean "slow-hotplug"?',
      'x.yaml:16:37: steps[3].fault.slow-hotplug.delay: duration "0s" is out of range; expected 0.001 ms to 31536000000 ms',
      'x.yaml:17:30: steps[4].fault.slow-hotplug.dealy: unknown key "dealy"; did you mean "delay"?',
    ]);
  });
});

describe('the TypeScript builder', () => {
  it('builds the same model as the file, without positions', () => {
    const built = scenario({
      name: 'b',
      description: 'built in TypeScript',
      versions: { libxl: '4.1' },
      domains: [{ name: 'guest1', memory: '32MiB' }],
      steps: [{ xl: 'create guest1' }, { guest: 'guest1', open: 'xvda' }, { wait: { time: 2 } }],
    });
    expect(built.versions.libxl).toBe('4.1');
    expect(built.domains[0].memory).toBe(32 * MiB);
    expect(built.steps[1]).toEqual({
      kind: 'guest',
      guest: 'guest1',
      action: { kind: 'open', disk: 'xvda' },
      at: { path: 'steps[1]' },
      reorderable: false,
      mayFail: false,
    });
    expect(built.steps[2]).toMatchObject({ wait: { kind: 'time', time: 2000 } });
    expect(built.source).toEqual({ positions: {} });
  });

  it('reports every problem by field path', () => {
    let error: ScenarioError | undefined;
    try {
      scenario({
        name: 'b',
        description: 'bad',
        domains: [{ name: 'guest1' }],
        steps: [{ guest: 'gest1', open: 'xvda' }, { repeat: 0, steps: [{ xl: 'list' }] }, { xl: () => 1 }],
      });
    } catch (e) {
      error = e as ScenarioError;
    }
    expect(error?.format().split('\n')).toEqual([
      'steps[0].guest: unknown domain "gest1"; did you mean "guest1"?',
      'steps[1].repeat: 0 is out of range; expected 1 to 1000',
      'steps[2].xl: unsupported value of type function; use strings, numbers, booleans, arrays and plain objects',
    ]);
  });
});

describe('scenario() in TypeScript: per-guest blkfront parameters', () => {
  it('takes the YAML keys and gives the model fields', () => {
    const s = scenario({
      name: 'bf',
      description: 'blkfront parameters',
      domains: [{ name: 'guest1', blkfront: { 'feature-persistent': false, 'max-ring-page-order': 2 } }],
      steps: [{ wait: { time: '1ms' } }],
    });
    expect(s.domains[0].blkfront).toEqual({ featurePersistent: false, maxRingPageOrder: 2 });
  });
});
