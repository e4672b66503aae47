import { describe, expect, test } from 'vitest';
import { scenario } from '../../emulator/scenario/load.js';
import { runScenario } from '../../emulator/scenario/run.js';
import { parseRunnableScenario } from '../../emulator/scenario/run-demo.js';
import { splitCommand } from '../../emulator/scenario/run-steps.js';
import { THREADS_TIME_SCALE } from '../threads-time.js';

const helloGrant = new URL('../../scenarios/hello-grant.yaml', import.meta.url).pathname;

describe('runScenario', () => {
  test.each(['sim', 'threads'] as const)(
    'hello-grant passes with its timeline events (%s)',
    async (engine) => {
      const r = await runScenario(helloGrant, { engine, seed: 1, timeScale: THREADS_TIME_SCALE });
      expect(r.failures).toEqual([]);
      expect(r.verdict).toBe('pass');
      expect(r.steps.map((s) => [s.path, s.status])).toEqual([
        ['demo', 'ok'],
        ['steps[0]', 'ok'],
      ]);
      const kinds = new Set(r.trace.filter((e) => e.comp === 'hello').map((e) => e.kind));
      for (const k of ['grant', 'map', 'send', 'upcall', 'recv', 'unmap', 'end-access'])
        expect(kinds).toContain(k);
      expect(r.checks.map((c) => [c.name, c.ok])).toEqual([
        ['expect.stall: none', true],
        ['expect.deadlock: false', true],
        ['expect.domains.dead', true],
      ]);
    },
    60_000,
  );

  test('a failed expectation and a failed step make the verdict fail, with what was seen', async () => {
    const s = scenario({
      name: 'wrong-expectations',
      description: 'expects the wrong things',
      steps: [
        { 'xenstore-read': { path: '/local/domain/0/name', expect: 'Domain-1' } },
        { 'xenstore-write': { path: '/vm/x', value: 'left' } },
        { 'xenstore-read': { path: '/nope' }, 'may-fail': true },
        { wait: { time: '2s' }, 'expect-elapsed': { 'at-most': '1s' } },
      ],
      expect: {
        'xenstore-absent': ['/vm/x'],
        xenstore: { '/local/domain/0/domid': '0' },
        elapsed: { 'at-most': '1s' },
      },
    });
    const r = await runScenario(s, { engine: 'sim', seed: 2 });
    expect(r.verdict).toBe('fail');
    expect(r.steps.map((x) => x.status)).toEqual(['failed', 'ok', 'tolerated', 'failed']);
    expect(r.failures).toEqual([
      'step steps[0] (xenstore-read /local/domain/0/name) failed: /local/domain/0/name is "Domain-0", expected "Domain-1"',
      'step steps[3] (wait 2s) failed: took 2s, expected at most 1s',
      'expect.xenstore-absent /vm/x: left behind: /vm/x = "left"',
      'expect.elapsed: 2s (wanted <= 1s)',
    ]);
    expect(r.steps[3].end - r.steps[3].start).toBe(2000);
  });

  test("an xl step runs the real xl in dom0: a config that does not exist fails with xl's words", async () => {
    const s = scenario({
      name: 'xl-missing-config',
      description: 'xl create of a file the machine did not write',
      domains: [{ name: 'vm' }],
      steps: [{ xl: 'create vm.cfg' }],
    });
    const r = await runScenario(s, { engine: 'sim', seed: 1 });
    expect(r.verdict).toBe('fail');
    expect(r.steps[0]).toMatchObject({
      status: 'failed',
      exitCode: 1,
      stdout: ['Parsing config from vm.cfg', 'Failed to read config file: vm.cfg: No such file or directory'],
    });
    expect(r.failures[0]).toBe(
      'step steps[0] (xl create vm.cfg) failed: exit code 1: Failed to read config file: vm.cfg: No such file or directory',
    );
  });
});

describe('demo block', () => {
  const base = 'name: d\ndescription: x\nsteps:\n  - wait: { time: 1s }\n';
  test.each([
    ['demo:\n  kind: hello-grant\n  messages: 5\n', { kind: 'hello-grant', messages: 5 }],
    ['demo: { kind: hello-grant }\n', { kind: 'hello-grant', messages: 10 }],
  ])('%j parses', (block, want) => {
    expect(parseRunnableScenario(block + base, 'f.yaml').demo).toEqual(want);
  });

  test.each([
    ['demo:\n  kind: hello\n', 'f.yaml:2:9: demo.kind: must be one of hello-grant, got "hello"'],
    [
      'demo:\n  kind: hello-grant\n  messages: 0\n',
      'f.yaml:3:13: demo.messages: must be an integer in 1..100000, got 0',
    ],
    [
      'demo:\n  kind: hello-grant\n  speed: 3\n',
      'f.yaml:3:3: demo.speed: unknown key; demo takes kind and messages',
    ],
    ['demo: 3\n', 'f.yaml:1:7: demo: must be a map like { kind: hello-grant, messages: 10 }'],
  ])('%j is refused with its position', (block, message) => {
    expect(() => parseRunnableScenario(block + base, 'f.yaml')).toThrow(message);
  });

  test('positions after a demo block stay right', () => {
    expect(() => parseRunnableScenario(`demo:\n  kind: hello-grant\n${base}steps2: 1\n`, 'f.yaml')).toThrow(
      /^f\.yaml:7:1:/,
    );
  });
});

test.each([
  ['create vm.cfg', ['create', 'vm.cfg']],
  ["  block-detach  'my vm'  51712 ", ['block-detach', 'my vm', '51712']],
  ['a "" b', ['a', '', 'b']],
])('splitCommand(%j)', (cmd, want) => {
  expect(splitCommand(cmd)).toEqual(want);
});
