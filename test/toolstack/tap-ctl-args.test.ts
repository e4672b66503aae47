import { describe, expect, it } from 'vitest';
import { atoi, parseTapCtlArgs, tapCtlHelp, tapCtlUsage } from '../../emulator/toolstack/tap-ctl-args.js';

const run = (argv: string[], variant: 'xen' | 'xapi' = 'xen') => {
  const r = parseTapCtlArgs(argv, variant);
  if (r.kind !== 'run') throw new Error(`expected a command, got exit ${r.code}: ${r.stderr}`);
  return r.command;
};

describe('atoi', () => {
  it.each([
    ['7', 7],
    ['  42', 42],
    ['-1', -1],
    ['+3', 3],
    ['12abc', 12],
    ['abc', 0],
    ['', 0],
    ['4294967297', 1],
    ['99999999999999999999', -1],
  ])('atoi(%j) = %i', (s, n) => {
    expect(atoi(s)).toBe(n);
  });
});

describe('commands', () => {
  it.each([
    [['list'], { name: 'list', pid: -1, minor: -1, type: null, file: null }],
    [['list', '-m', '7', '-t', 'aio'], { name: 'list', pid: -1, minor: 7, type: 'aio', file: null }],
    [
      ['list', '-p201', '-f', '/srv/a.img'],
      { name: 'list', pid: 201, minor: -1, type: null, file: '/srv/a.img' },
    ],
    [['allocate'], { name: 'allocate', devname: null }],
    [['allocate', '-d', 'mydev'], { name: 'allocate', devname: 'mydev' }],
    [['free', '-m', '3'], { name: 'free', minor: 3 }],
    [['free', '-m', 'x'], { name: 'free', minor: 0 }],
    [['attach', '-p', '201', '-m', '0'], { name: 'attach', pid: 201, minor: 0 }],
    [['detach', 'junk', '-m', '0', '-p', '201'], { name: 'detach', pid: 201, minor: 0 }],
    [
      ['close', '-p', '1', '-m', '2', '-f'],
      { name: 'close', pid: 1, minor: 2, force: true, timeoutSeconds: null },
    ],
    [['close', '-fp1', '-m2'], { name: 'close', pid: 1, minor: 2, force: true, timeoutSeconds: null }],
    [['pause', '-p', '1', '-m', '2'], { name: 'pause', pid: 1, minor: 2, timeoutSeconds: null }],
    [['unpause', '-p', '1', '-m', '2'], { name: 'unpause', pid: 1, minor: 2, args: null }],
    [
      ['unpause', '-p', '1', '-m', '2', '-a', 'aio:/b'],
      { name: 'unpause', pid: 1, minor: 2, args: 'aio:/b' },
    ],
    [['open', '-p', '1', '-m', '2', '-a', 'aio:/x'], { name: 'open', pid: 1, minor: 2, args: 'aio:/x' }],
    [['create', '-a', 'aio:/x'], { name: 'create', args: 'aio:/x', devname: null }],
    [['destroy', '-p', '1', '-m', '0'], { name: 'destroy', pid: 1, minor: 0, timeoutSeconds: null }],
    [['spawn'], { name: 'spawn', cgroupSlice: null }],
    [['major'], { name: 'major', charDevice: false }],
    [['major', '-c'], { name: 'major', charDevice: true }],
    [['check'], { name: 'check' }],
    [['destroy', '--', '-p', '1'], null],
  ])('xen %j', (argv, expected) => {
    const r = parseTapCtlArgs(argv, 'xen');
    if (expected === null) {
      expect(r).toMatchObject({ kind: 'exit', code: 22 });
    } else {
      expect(run(argv)).toMatchObject(expected);
    }
  });

  it.each([
    [['destroy', '-p', '1', '-m', '0', '-t', '30'], { name: 'destroy', timeoutSeconds: 30 }],
    [['close', '-p', '1', '-m', '0', '-t', '5'], { name: 'close', timeoutSeconds: 5, force: false }],
    [
      [
        'create',
        '-a',
        'vhd:/x',
        '-R',
        '-D',
        '-r',
        '-e',
        '4',
        '-2',
        'nbd:/s',
        '-s',
        '-t',
        '9',
        '-c',
        'sl',
        '-C',
        '/log',
      ],
      {
        name: 'create',
        readonly: true,
        noODirect: true,
        addLocalCache: true,
        reuseParentMinor: 4,
        secondary: 'nbd:/s',
        standby: true,
        timeoutSeconds: 9,
        cgroupSlice: 'sl',
        logPath: '/log',
      },
    ],
    [['open', '-p', '1', '-m', '0', '-a', 'aio:/x', '-E'], { name: 'open', readKeyFromStdin: true }],
    [
      ['unpause', '-p', '1', '-m', '0', '-2', '/s', '-c', '/l'],
      { name: 'unpause', secondary: '/s', logPath: '/l' },
    ],
    [['spawn', '-c', 'tapdisk.slice'], { name: 'spawn', cgroupSlice: 'tapdisk.slice' }],
    [['stats', '-p', '1', '-m', '0'], { name: 'stats', pid: 1, minor: 0 }],
  ])('xapi %j', (argv, expected) => {
    expect(run(argv, 'xapi')).toMatchObject(expected);
  });

  it('strips --debug anywhere after the command', () => {
    const r = parseTapCtlArgs(['free', '--debug', '-m', '1'], 'xen');
    expect(r).toMatchObject({ kind: 'run', debug: true, environmentChecked: true, command: { minor: 1 } });
  });
});

describe('usage and exit codes', () => {
  it.each([
    [[], 'xen', 0, tapCtlHelp('xen'), ''],
    [['bogus'], 'xen', 0, tapCtlHelp('xen'), ''],
    [['stats', '-p', '1', '-m', '0'], 'xen', 0, tapCtlHelp('xen'), ''],
    [['l'.repeat(30)], 'xapi', 0, tapCtlHelp('xapi'), ''],
    [['free'], 'xen', 22, '', 'usage: free <-m minor>\n'],
    [['free', '-m', '-1'], 'xen', 22, '', 'usage: free <-m minor>\n'],
    [['free', '-x'], 'xen', 22, '', "free: invalid option -- 'x'\nusage: free <-m minor>\n"],
    [['free', '-m'], 'xen', 22, '', "free: option requires an argument -- 'm'\nusage: free <-m minor>\n"],
    [['free', '--minor=1'], 'xen', 22, '', "free: invalid option -- '-'\nusage: free <-m minor>\n"],
    [['free', '-h'], 'xen', 0, 'usage: free <-m minor>\n', ''],
    [['free', '-h', '-x'], 'xen', 0, 'usage: free <-m minor>\n', ''],
    [['free', '-x', '-h'], 'xen', 22, '', "free: invalid option -- 'x'\nusage: free <-m minor>\n"],
    [['free'], 'xapi', 22, '', 'usage: free <-m minor>\nInvalid argument\n'],
    [['attach', '-h'], 'xen', 0, '', 'usage: attach <-p pid> <-m minor>\n'],
    [['attach', '-p', '1'], 'xen', 22, '', 'usage: attach <-p pid> <-m minor>\n'],
    [['allocate', '-h'], 'xen', 0, 'usage: allocate [-d device name]>\n', ''],
    [['open', '-p', '1', '-m', '2'], 'xen', 22, '', 'usage: open <-p pid> <-m minor> <-a args>\n'],
    [['create'], 'xen', 22, '', 'usage: create <-a args> [-d device name]\n'],
    [['check', '-h'], 'xen', 22, '', 'usage: check\n(checks whether environment is suitable for tapdisk2)\n'],
    [
      ['destroy', '-p', '1', '-m', '0', '-t', '5'],
      'xen',
      22,
      '',
      "destroy: invalid option -- 't'\nusage: destroy <-p pid> <-m minor>\n",
    ],
    [
      ['pause', '-p', '1', '-m', '0', '-t', '5'],
      'xapi',
      22,
      '',
      'usage: pause <-p pid> <-m minor>\nInvalid argument\n',
    ],
    [
      ['open', '-p', '1', '-m', '0', '-a', 'a:b', '-E', '-E'],
      'xapi',
      1,
      '',
      'Only supply -E once\nOperation not permitted\n',
    ],
    [['spawn', '-c', 'x'], 'xen', 22, '', "spawn: invalid option -- 'c'\nusage: spawn\n"],
  ] as const)('%j on %s exits %i', (argv, variant, code, stdout, stderr) => {
    expect(parseTapCtlArgs(argv as unknown as string[], variant)).toMatchObject({
      kind: 'exit',
      code,
      stdout,
      stderr,
    });
  });

  it('marks Xen list outcomes as happening only after a successful listing', () => {
    expect(parseTapCtlArgs(['list', '-x'], 'xen')).toMatchObject({ code: 22, onlyIfListSucceeds: true });
    expect(parseTapCtlArgs(['list', '-x'], 'xapi')).not.toHaveProperty('onlyIfListSucceeds');
  });

  it('prints the exact help and list usage', () => {
    expect(tapCtlHelp('xen')).toBe(
      'usage: tap-ctl COMMAND [OPTIONS]\nCOMMAND := { list | allocate | free | create | destroy | spawn | attach | detach | open | close | pause | unpause | major | check }\n',
    );
    expect(tapCtlHelp('xapi')).toContain('| unpause | stats | major |');
    expect(tapCtlUsage('list', 'xapi')).toBe(
      'usage: list [-h] [-p pid] [-m minor] [-t type] [-f file]\n\nLists tapdisks in the following format:\n     pid minor state       type file\n',
    );
  });
});
