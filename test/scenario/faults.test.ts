/**
 * Scenario faults in the sim engine, each with the effect the mechanism it stands for produces:
 * stall-xenwatch brings the 2012 failure back under the fixed 4.2 order (teardown.md §2, residual race)
 * with a chain that ends at the stuck callback, not at the toolstack,
 * SIGKILL does not end a tapdisk in its uninterruptible DETACH wait before the tapdev is released,
 * slow-image lengthens a write, fail-image gives the guest EIO (blkback logs it), lose-event with no
 * timeout behind it ends the run in a deadlock whose chain starts at the guest's write.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { chainVerdict, labelWithoutIds } from '../../emulator/runtime/waitgraph.js';
import { parseScenario } from '../../emulator/scenario/load.js';
import { type RunScenarioResult, runScenario } from '../../emulator/scenario/run.js';
import { THREADS_TIME_SCALE, THREADS_WATCHDOG_MS } from '../threads-time.js';

const file = (name: string) => new URL(`../../scenarios/${name}.yaml`, import.meta.url).pathname;

/** A scenario of the 2012 set with `insert` placed before the step that starts with `before`. */
function variant(name: string, before: string, insert: string, edits: [string, string][] = []): string {
  let text = readFileSync(file(name), 'utf8');
  const at = text.indexOf(before);
  if (at < 0) throw new Error(`${name}: no "${before}"`);
  text = text.slice(0, at) + insert + text.slice(at);
  for (const [from, to] of edits) {
    if (!text.includes(from)) throw new Error(`${name}: no "${from}"`);
    text = text.replace(from, to);
  }
  return text;
}

async function run(text: string): Promise<RunScenarioResult> {
  return runScenario(parseScenario(text, 'fault.yaml'), { engine: 'sim', seed: 1 });
}

const stepNamed = (r: RunScenarioResult, prefix: string) => {
  const s = r.steps.find((x) => x.description.startsWith(prefix));
  if (s === undefined)
    throw new Error(`no step "${prefix}" in ${r.steps.map((x) => x.description).join('; ')}`);
  return s;
};

/** A chain verdict with process ids left out (they shift whenever dom0 starts another process). */
const pidless = (stall: Parameters<typeof chainVerdict>[0]) => {
  const v = chainVerdict(stall);
  return {
    cycle: v.cycle,
    links: v.links.map((l) => ({
      holder: l.holder.replace(/\[\d+\]/g, '[pid]'),
      waitsFor: l.waitsFor.replace(/tapdisk \d+/g, 'tapdisk <pid>'),
    })),
  };
};

const faults = (r: RunScenarioResult) => r.trace.filter((e) => e.kind === 'fault');

const SHUTDOWN = '  - guest: guest1\n    shutdown:\n';
const WRITE = '  - guest: guest1\n    write:';
const BACKEND_CLOSED = '  - wait: { xenstore: /local/domain/0/backend/vbd/1/51712/state, value: 6 }\n';
const BACKEND_CONNECTED = '  - wait: { xenstore: /local/domain/0/backend/vbd/1/51712/state, value: 4 }\n';

describe('stall-xenwatch', () => {
  test('the fixed order passes without it', async () => {
    const r = await run(variant('blktap2-teardown-fixed', '  - wait: { domain: guest1', BACKEND_CLOSED));
    expect(r.failures).toEqual([]);
    expect(r.tapCtlList).toEqual([]);
  });

  test('a 7 s stall once the backend is Closed brings back the 2012 failure, broken by tap-ctl, and the orphan; the chain ends at the stuck callback', async () => {
    const r = await run(
      variant(
        'blktap2-teardown-fixed',
        '  - wait: { domain: guest1',
        `${BACKEND_CLOSED}  - fault: { stall-xenwatch: { for: 7s } }\n`,
      ),
    );
    expect(r.outcome).toBe('completed');
    expect(r.stalls).toHaveLength(1);
    const stall = r.stalls[0]!;
    // Not the 2012 cycle: the backend directory is already gone, so blkback waits on xenwatch, not on the
    // toolstack, and xenwatch sleeps in the injected callback.
    expect(pidless(stall)).toEqual({
      cycle: false,
      links: [
        { holder: 'dom0/xl[pid]', waitsFor: 'tap-ctl select() 5 s: DETACH_RSP from tapdisk <pid>' },
        { holder: 'dom0/tapdisk2[pid]', waitsFor: 'tapdev0 to have no openers' },
        { holder: 'blkback vbd-1-51712', waitsFor: 'xenwatch to run the removal of backend/vbd/1/51712' },
        { holder: 'dom0/xenwatch', waitsFor: 'fault: xenwatch stalled for 7000 ms' },
      ],
    });
    expect(stall.chain.at(-1)!.heldBy).toBeUndefined();
    expect(stall.brokenBy?.timer).toBe('tap-ctl select() timeout');
    expect(r.tapCtlList).toEqual(['minor=0']);
    // The verdict flips on exactly the expectations the fix had made true.
    expect(r.failures.some((f) => f.startsWith('expect.stall'))).toBe(true);
    expect(r.failures.some((f) => f.startsWith('expect.tap-ctl-list'))).toBe(true);
    const phases = faults(r)
      .filter((e) => e.fields?.fault === 'stall-xenwatch')
      .map((e) => [e.fields?.phase, e.t - stepNamed(r, 'fault stall-xenwatch').start]);
    expect(phases).toEqual([
      ['queued', 0],
      ['start', 0],
      ['end', 7000],
    ]);
  });

  // A stall (30 s) beyond the whole destroy (25 s): libxl's waits on the backend state and, after its forced
  // removal, blkback's hold on tapdev0 both lead to the sleeping callback, in both engines alike.
  const DESTROY_UNDER_STALL = readFileSync(file('blktap2-teardown-fixed'), 'utf8').replace(
    SHUTDOWN,
    '  - fault: { stall-xenwatch: { for: 30s } }\n  - xl: destroy guest1\n',
  );
  const STUCK = { holder: 'dom0/xenwatch', waitsFor: 'fault: xenwatch stalled for 30000 ms' };
  const CLOSED_WAIT = {
    holder: 'dom0/xl[pid]',
    waitsFor: 'backend /local/domain/0/backend/vbd/1/51712 to reach state 6 (Closed)',
  };
  const WANTED = [
    { timer: 'libxl devstate 10 s timeout', verdict: { cycle: false, links: [CLOSED_WAIT, STUCK] } },
    { timer: 'libxl devstate 10 s timeout', verdict: { cycle: false, links: [CLOSED_WAIT, STUCK] } },
    {
      timer: 'tap-ctl select() timeout',
      verdict: {
        cycle: false,
        links: [
          { holder: 'dom0/xl[pid]', waitsFor: 'tap-ctl select() 5 s: DETACH_RSP from tapdisk <pid>' },
          { holder: 'dom0/tapdisk2[pid]', waitsFor: 'tapdev0 to have no openers' },
          { holder: 'blkback vbd-1-51712', waitsFor: 'xenwatch to run the removal of backend/vbd/1/51712' },
          STUCK,
        ],
      },
    },
  ];
  test.each(['sim', 'threads'] as const)(
    '%s: a destroy under a 30 s stall: libxl waits on xenwatch, then blkback does',
    async (engine) => {
      const r = await runScenario(parseScenario(DESTROY_UNDER_STALL, 'fault.yaml'), {
        engine,
        seed: 1,
        ...(engine === 'threads' ? { timeScale: THREADS_TIME_SCALE, watchdogMs: THREADS_WATCHDOG_MS } : {}),
      });
      expect(r.outcome).toBe('completed');
      expect(r.stalls.map((s) => ({ timer: s.brokenBy?.timer, verdict: pidless(s) }))).toEqual(WANTED);
      expect(r.tapCtlList).toEqual(['minor=0']);
    },
    30_000,
  );
});

describe('kill-tapdisk', () => {
  test('SIGKILL to the tapdisk blocked in DETACH takes effect only when the tapdev is released', async () => {
    const r = await run(
      variant(
        'blktap2-teardown-deadlock',
        '  - wait: { domain: guest1',
        '  - wait: { time: 1s }\n  - fault: { kill-tapdisk: { signal: KILL, minor: 0 } }\n',
        [['expect-elapsed: { at-least: 5s }', 'expect-elapsed: { at-least: 4s }']],
      ),
    );
    expect(r.failures).toEqual([]);
    const killedAt = stepNamed(r, 'fault kill-tapdisk SIGKILL minor 0').start;
    expect(killedAt).toBe(1101);
    const sig = r.trace.find((e) => e.comp === 'proc' && e.kind === 'signal');
    expect(sig?.t).toBe(killedAt);
    const exit = r.trace.find(
      (e) => e.comp === 'proc' && e.kind === 'exit' && e.fields?.pid === sig?.fields?.pid,
    );
    expect(exit?.fields).toMatchObject({ signal: 'SIGKILL', wstatus: 9 });
    // Released when tap-ctl's select() gives up at 5.101 s and libxl removes the backend.
    expect(exit?.t).toBe(5101);
    expect(faults(r).map((e) => e.fields?.fault)).toEqual(['kill-tapdisk']);
  });

  test('a minor nobody serves is a precise step error', async () => {
    const r = await run(
      variant(
        'blktap2-teardown-fixed',
        SHUTDOWN,
        '  - fault: { kill-tapdisk: { minor: 7 } }\n    may-fail: true\n',
      ),
    );
    expect(stepNamed(r, 'fault kill-tapdisk').error).toBe('kill-tapdisk: blktap minor 7 is not allocated');
  });
});

describe('slow-image', () => {
  test('each request of the write takes the extra delay', async () => {
    const plain = await run(variant('blktap2-teardown-fixed', WRITE, ''));
    const slow = await run(
      variant(
        'blktap2-teardown-fixed',
        WRITE,
        '  - fault: { slow-image: { image: disk.img, delay: 40ms } }\n',
      ),
    );
    expect(slow.failures).toEqual([]);
    const took = (r: RunScenarioResult) => {
      const s = stepNamed(r, 'guest1: write');
      return s.end - s.start;
    };
    expect(took(slow) - took(plain)).toBe(40);
  });

  test('an undeclared image is refused when the scenario is read', () => {
    const text = variant(
      'blktap2-teardown-fixed',
      WRITE,
      '  - fault: { slow-image: { image: nope.img, delay: 1ms } }\n',
    );
    expect(() => parseScenario(text, 'fault.yaml')).toThrow(
      /slow-image.image: unknown image "nope.img"; declared: disk.img/,
    );
  });
});

describe('fail-image', () => {
  test('after one good request the guest gets EIO, blkback logs it, and only the first request (11 pages) is written', async () => {
    const r = await run(
      variant(
        'blktap2-teardown-fixed',
        WRITE,
        '  - fault: { fail-image: { image: disk.img, error: EIO, after: 1 } }\n',
        [['    write: {', '    expect-error: EIO\n    write: {']],
      ),
    );
    expect(stepNamed(r, 'guest1: write').status).toBe('tolerated');
    // One blkback bio per request: the first tapdisk request carries 11 pages (BLKTAP_SEGMENT_MAX).
    expect(r.failures).toEqual(['expect.data disk.img 65536@0: first difference at byte 45056']);
    const failed = faults(r).filter((e) => e.comp === 'tapdisk');
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((e) => e.fields?.error === 'EIO')).toBe(true);
    expect(r.dmesg[0]!.some((l) => /xen-blkback: .*error=-5/.test(l))).toBe(true);
  });
});

describe('lose-event', () => {
  test('losing the response notification of blkback to the guest leaves its write waiting forever: a deadlock', async () => {
    const r = await run(
      variant(
        'blktap2-teardown-fixed',
        WRITE,
        // The guest's end of the blkif channel is the port it published in xenstore (2 here).
        `${BACKEND_CONNECTED}  - xenstore-read: { path: /local/domain/1/device/vbd/51712/event-channel, expect: "2" }\n  - fault: { lose-event: { domain: guest1, port: 2 } }\n`,
      ),
    );
    expect(r.outcome).toBe('deadlock');
    const last = r.stalls.at(-1)!;
    expect(last.brokenBy).toBeUndefined();
    expect(last.chain.map((l) => labelWithoutIds(l.holder))).toEqual(['host/controller', 'dom1/write']);
    expect(last.chain[1]!.waitsFor).toBe('write of 128 sectors at 0 on xvda');
    const dropped = faults(r).filter((e) => e.comp === 'evtchn');
    expect(dropped).toHaveLength(1);
    expect(dropped[0]!.fields).toMatchObject({ fault: 'lose-event', to: 1, remotePort: 2 });
  });

  test('a lost xenstore notification is rescued by the next one', async () => {
    const r = await run(
      variant(
        'blktap2-teardown-fixed',
        WRITE,
        `${BACKEND_CONNECTED}  - fault: { lose-event: { domain: dom0, count: 1 } }\n`,
      ),
    );
    expect(r.failures).toEqual([]);
    expect(faults(r).filter((e) => e.comp === 'evtchn')).toHaveLength(1);
  });

  test('a guest that has no domain yet is a precise step error', async () => {
    const r = await run(
      variant(
        'blktap2-teardown-fixed',
        '  - xl: create',
        '  - fault: { lose-event: { domain: guest1 } }\n    may-fail: true\n',
      ),
    );
    expect(stepNamed(r, 'fault lose-event').error).toBe(
      'lose-event: guest guest1 has no domain now (create it first)',
    );
  });
});
