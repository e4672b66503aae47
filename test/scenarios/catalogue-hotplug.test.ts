/**
 * C21 (teardown.md §4, xen.git 92e6cb5673): the block hotplug script's `remove` runs while a slow
 * `add` is still at work. Before the fix `remove` finds no loop device recorded and `add` then binds one
 * for a disk already detached; after it `remove` waits for the "block" lock and unbinds what `add` bound.
 * Both files in sim (their own seed, seeds 1-30, one switch flipped) and in threads.
 */
import { describe, expect, test } from 'vitest';
import { runScenario } from '../../emulator/scenario/run.js';
import { loadRunnableScenario } from '../../emulator/scenario/run-demo.js';
import { describeThreadsVerdicts, scenarioFile } from './catalogue-files.js';

const BUGGY = 'c21-hotplug-loop-leak';
const FIXED = 'c21-hotplug-loop-leak-fixed';
const load = (name: string) => loadRunnableScenario(scenarioFile(name)).scenario;

type Result = Awaited<ReturnType<typeof runScenario>>;
const step = (r: Result, label: string) => r.steps.find((s) => s.label === label)!;
const LEAKED = /^\/dev\/loop0: \(\/.*\/disk\.img\)$/;
const NODE = '/local/domain/0/backend/vbd/1/51712/node';

describe('C21: hotplug add/remove race leaks loop devices (92e6cb5673)', () => {
  test('the pair differs only in the hotplug-block version', () => {
    const a = load(BUGGY);
    const b = load(FIXED);
    expect(a.versions.hotplugBlock).toBe('2009-pre');
    expect(b.versions).toEqual({ ...a.versions, hotplugBlock: '92e6cb5673' });
    const strip = (s: typeof a) => JSON.stringify(s.steps, (k, v) => (k === 'at' ? undefined : v));
    expect(strip(a)).toBe(strip(b));
    expect(JSON.stringify(a.domains)).toBe(JSON.stringify(b.domains));
    expect(JSON.stringify(a.host)).toBe(JSON.stringify(b.host));
    expect(a.seed).toBe(b.seed);
  });

  test('2009-pre: remove fails at once on the missing node; add binds loop0 afterwards and it stays bound', async () => {
    const r = await runScenario(scenarioFile(BUGGY), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    const detach = step(r, 'detach');
    expect([detach.status, detach.start, detach.end]).toEqual(['ok', 2000, 2000]);
    expect(detach.stdout).toEqual([
      'libxl: warning: libxl_exec.c:libxl_report_child_exitstatus: /etc/xen/scripts/block remove [106] exited with error status 1',
      `libxl: warning: libxl_device.c:device_hotplug_child_death_cb: script: xenstore-read ${NODE.replace('/node', '')}/node failed.`,
    ]);
    const attach = step(r, 'attach');
    expect([attach.status, attach.end]).toEqual(['ok', 8000]);
    expect(r.end.loopDevices).toHaveLength(1);
    expect(r.end.loopDevices![0]).toMatch(LEAKED);
    // the bind comes 6 s after the remove, into the directory libxl had removed
    const bind = r.trace.find((e) => e.comp === 'loop' && e.kind === 'set-fd')!;
    const remove = r.trace.find(
      (e) => e.comp === 'hotplug' && e.kind === 'run' && e.fields?.command === 'remove',
    )!;
    expect([remove.t, bind.t]).toEqual([2000, 8000]);
    expect(r.trace.some((e) => e.comp === 'loop' && e.kind === 'clr-fd')).toBe(false);
    expect(r.end.xenstore[NODE]).toBe('/dev/loop0');
  }, 30_000);

  test('92e6cb5673: remove waits for the lock until add has bound loop0, then unbinds it', async () => {
    const r = await runScenario(scenarioFile(FIXED), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    const detach = step(r, 'detach');
    expect([detach.status, detach.start, detach.end]).toEqual(['ok', 2000, 8000]);
    expect(detach.stdout ?? []).toEqual([]);
    expect(r.end.loopDevices).toEqual([]);
    const events = r.trace
      .filter(
        (e) => (e.comp === 'hotplug' && (e.kind === 'lock' || e.kind === 'unlock')) || e.comp === 'loop',
      )
      .map((e) => `${e.t} ${e.kind}${e.fields?.pid === undefined ? '' : ` ${e.fields.pid}`}`);
    expect(events).toEqual([
      '0 lock 103',
      '8000 set-fd',
      '8000 unlock 103',
      '8000 lock 106',
      '8000 clr-fd',
      '8000 unlock 106',
    ]);
  }, 30_000);

  test('one switch, 2009-pre -> 92e6cb5673, on the buggy file: exactly the leak checks fail', async () => {
    const s = load(BUGGY);
    const r = await runScenario(
      { ...s, versions: { ...s.versions, hotplugBlock: '92e6cb5673' } },
      { engine: 'sim' },
    );
    expect(r.verdict).toBe('fail');
    expect(r.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual([
      'expect.loop-devices',
      `expect.xenstore ${NODE}`,
      'expect.log dom0 contains "block: xenstore-read /local/domain/0/backend/vbd/1/51712/node failed."',
    ]);
  }, 30_000);

  test('both files pass in sim for seeds 1-30', async () => {
    const failing: string[] = [];
    for (const name of [BUGGY, FIXED]) {
      const s = load(name);
      for (let seed = 1; seed <= 30; seed++) {
        const r = await runScenario(s, { engine: 'sim', seed, imageStore: 'memory' });
        if (r.verdict !== 'pass') failing.push(`${name} seed ${seed}: ${r.failures.join('; ')}`);
      }
    }
    expect(failing).toEqual([]);
  }, 120_000);
});

// In threads at 0.1 the detach comes 200 ms (real) after the frontend's Initialised and the add sleeps
// 800 ms: the remove runs inside the add's sleep however the workers are scheduled.
describeThreadsVerdicts('C21 in the threads engine: the same verdicts as in sim', [BUGGY, FIXED]);
