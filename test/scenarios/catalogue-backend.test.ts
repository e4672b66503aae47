/**
 * The backend catalogue (teardown.md §4, blkback): each buggy/fixed pair runs in the sim engine; both
 * verdicts pass, and the observation that tells them apart is asserted here as well.
 */
import { describe, expect, test } from 'vitest';
import { chainVerdict } from '../../emulator/runtime/waitgraph.js';
import { runScenario } from '../../emulator/scenario/run.js';
import { loadRunnableScenario } from '../../emulator/scenario/run-demo.js';
import { describeThreadsVerdicts, scenarioFile } from './catalogue-files.js';

const writeStep = (r: Awaited<ReturnType<typeof runScenario>>) =>
  r.steps.find((s) => s.description.startsWith('guest1: write xvda'))!;

describe('C7: blkback disconnect on frontend Closing (6f5986bce558)', () => {
  test('2012: the write issued during the detach is lost and fails only at the forced removal', async () => {
    const r = await runScenario(scenarioFile('c7-blkback-disconnect-on-closing'), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    const w = writeStep(r);
    expect(w.status).toBe('tolerated');
    expect(w.error).toMatch(/EIO/);
    expect(w.end - w.start).toBeGreaterThanOrEqual(9000);
  }, 30_000);

  test('2013: the same write is served at once', async () => {
    const r = await runScenario(scenarioFile('c7-blkback-disconnect-on-closing-fixed'), { engine: 'sim' });
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    const w = writeStep(r);
    expect(w.status).toBe('ok');
    expect(w.end - w.start).toBeLessThan(100);
  }, 30_000);

  test('the two files differ only in the blkback version', () => {
    const a = loadRunnableScenario(scenarioFile('c7-blkback-disconnect-on-closing')).scenario;
    const b = loadRunnableScenario(scenarioFile('c7-blkback-disconnect-on-closing-fixed')).scenario;
    expect(a.versions).toEqual({ ...b.versions, blkback: '2012' });
    expect(b.versions.blkback).toBe('2013');
    const strip = (s: typeof a) => JSON.stringify(s.steps, (k, v) => (k === 'at' ? undefined : v));
    expect(strip(a)).toBe(strip(b));
  });

  test('one switch, 2012 -> 2013, on the buggy file: the data check fails because the write landed', async () => {
    const { scenario: s } = loadRunnableScenario(scenarioFile('c7-blkback-disconnect-on-closing'));
    const r = await runScenario({ ...s, versions: { ...s.versions, blkback: '2013' } }, { engine: 'sim' });
    expect(r.verdict).toBe('fail');
    expect(r.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['expect.data disk.img 65536@0']);
  }, 30_000);
});

const run = (name: string) => runScenario(scenarioFile(name), { engine: 'sim' });

/** The two files of a pair differ only in `versions` (and names/descriptions). */
function samePairSteps(buggy: string, fixed: string) {
  const a = loadRunnableScenario(scenarioFile(buggy)).scenario;
  const b = loadRunnableScenario(scenarioFile(fixed)).scenario;
  const strip = (s: typeof a) => JSON.stringify(s.steps, (k, v) => (k === 'at' ? undefined : v));
  expect(strip(a)).toBe(strip(b));
  return { a, b };
}

describe('C6: guest-triggered xenblkd leak on reconnect (2.6.18, ef9e715c419c)', () => {
  test('2.6.18: the leaked thread keeps the blkif reference: xenwatch sleeps for good, tapdev0 stays open, the guest stays dying', async () => {
    const r = await run('c6-blkback-reconnect-thread-leak');
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    const chain = r.stalls[0]!.chain.map((l) => l.waitsFor);
    expect(chain).toEqual([
      'tap-ctl select() 5 s: DETACH_RSP from tapdisk 101',
      'tapdev0 to have no openers',
      'blkif vbd-1-51712 references to drop (0 request(s) in flight, 1 xenblkd not stopped)',
      'requests on ring vbd-1-51712/0',
    ]);
    expect(r.tapCtlList).toEqual(['minor=0']);
    // two connects, one thread each; only the second was ever stopped
    const dmesg = r.dmesg[0]!.join('\n');
    expect(dmesg.match(/using 1 queues/g)).toHaveLength(1);
  }, 30_000);

  test('ef9e715c419c: the same walk tears down first; the destroy is clean', async () => {
    const r = await run('c6-blkback-reconnect-thread-leak-fixed');
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.stalls).toEqual([]);
    expect(r.tapCtlList).toEqual([]);
    expect(r.dmesg[0]!.join('\n').match(/using 1 queues/g)).toHaveLength(2);
    expect(r.trace.some((e) => e.kind === 'blkif-free')).toBe(true);
  }, 30_000);

  test('the pair differs only in blkback-reconnect; flipping it on the buggy file fails its stall and leak checks', async () => {
    const { a, b } = samePairSteps(
      'c6-blkback-reconnect-thread-leak',
      'c6-blkback-reconnect-thread-leak-fixed',
    );
    expect(a.versions).toEqual({ ...b.versions, blkbackReconnect: '2.6.18' });
    const r = await runScenario(
      { ...a, versions: { ...a.versions, blkbackReconnect: 'ef9e715c419c' } },
      { engine: 'sim' },
    );
    expect(r.verdict).toBe('fail');
    expect(r.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual([
      'expect.stall',
      'expect.tap-ctl-list',
      'expect.domains.dying',
      expect.stringMatching(/^expect\.log guest1 contains/),
    ]);
  }, 30_000);
});

describe('C8: xenwatch blocked by the disconnect waiting for in-flight I/O (2013 vs 2017)', () => {
  const create2 = (r: Awaited<ReturnType<typeof runScenario>>) =>
    r.steps.find((s) => s.description === 'xl create /etc/xen/guest2.cfg')!;

  test('2013: guest1 removal sleeps in xenwatch for the slow write; guest2 is never probed and xl create fails after 10 s', async () => {
    const r = await run('c8-xenwatch-blocked-by-disconnect');
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    const s = create2(r);
    expect(s.status).toBe('tolerated');
    expect(s.end - s.start).toBeGreaterThanOrEqual(10_000);
    // libxl's wait names dom0's xenwatch, which sleeps in guest1's disconnect for the request in flight
    const initWait = r.stalls.filter((st) =>
      st.chain[0]!.waitsFor.includes('vbd/2/51712 to reach state 2 (InitWait)'),
    );
    expect(initWait).toHaveLength(1);
    const links = chainVerdict(initWait[0]!).links;
    expect(links.slice(0, 2)).toEqual([
      {
        holder: expect.stringMatching(/^dom0\/xl\[\d+\]$/),
        waitsFor: 'backend /local/domain/0/backend/vbd/2/51712 to reach state 2 (InitWait)',
      },
      {
        holder: 'dom0/xenwatch',
        waitsFor: 'blkif vbd-1-51712 references to drop (1 request(s) in flight, 0 xenblkd not stopped)',
      },
    ]);
    // the disk's I/O holder: the tapdisk serving the slow image
    expect(links[2]?.holder).toMatch(/^dom0\/tapdisk2\[\d+\]$/);
    // guest1's own destroy waited on the same sleeping callback for its backend to close
    expect(
      r.stalls
        .filter((st) => st.chain[0]!.waitsFor.includes('vbd/1/51712 to reach state 6 (Closed)'))
        .map((st) => chainVerdict(st).links[1]),
    ).toEqual([
      {
        holder: 'dom0/xenwatch',
        waitsFor: 'blkif vbd-1-51712 references to drop (1 request(s) in flight, 0 xenblkd not stopped)',
      },
      {
        holder: 'dom0/xenwatch',
        waitsFor: 'blkif vbd-1-51712 references to drop (1 request(s) in flight, 0 xenblkd not stopped)',
      },
    ]);
    // guest1's disconnect (at fe Closed, 100 ms) returned only when the 30 s write completed, and guest2's
    // backend never moved before that
    const states = r.trace.filter((e) => e.kind === 'xenbus-state' && e.comp === 'blkback');
    const closed1 = states.find((e) => e.fields?.path === 'backend/vbd/1/51712' && e.fields?.to === 'Closed');
    expect(closed1?.t).toBeGreaterThanOrEqual(30_000);
    expect(states.filter((e) => e.fields?.path === 'backend/vbd/2/51712' && e.t < 30_000)).toEqual([]);
  }, 30_000);

  test('2017: the removal returns at once; guest2 starts at once', async () => {
    const r = await run('c8-xenwatch-blocked-by-disconnect-fixed');
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    const s = create2(r);
    expect(s.status).toBe('ok');
    expect(s.end - s.start).toBeLessThan(100);
    expect(r.trace.some((e) => e.kind === 'oops')).toBe(false);
  }, 30_000);

  test('the pair differs only in the blkback version', () => {
    const { a, b } = samePairSteps(
      'c8-xenwatch-blocked-by-disconnect',
      'c8-xenwatch-blocked-by-disconnect-fixed',
    );
    expect(a.versions).toEqual({ ...b.versions, blkback: '2013' });
    expect(b.versions.blkback).toBe('2017');
  });
});

describe('C9: disconnect with I/O in flight (2014 vs 2017)', () => {
  test('2014: the completion writes into the unmapped ring: the expected oops ends the run, and the verdict passes', async () => {
    const r = await run('c9-disconnect-with-io-in-flight');
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.outcome).toBe('error');
    expect(r.error).toMatch(/BUG: unable to handle kernel paging request in make_response/);
    const oops = r.trace.filter((e) => e.kind === 'oops');
    expect(oops).toHaveLength(1);
    // the write's 3 s on the slow disk, after the destroy at 100 ms
    expect(oops[0]!.t).toBeGreaterThanOrEqual(3000);
    expect(r.dmesg[0]!.some((l) => l.includes('BUG: unable to handle kernel paging request'))).toBe(true);
  }, 30_000);

  test('2017: the busy ring stays mapped until the completion; then the blkif is freed and the guest is gone', async () => {
    const r = await run('c9-disconnect-with-io-in-flight-fixed');
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.trace.some((e) => e.kind === 'oops')).toBe(false);
    const free = r.trace.find((e) => e.kind === 'blkif-free');
    expect(free?.t).toBeGreaterThanOrEqual(3000);
  }, 30_000);

  test('the pair differs only in the blkback version; 2017 on the buggy file fails its expect.oops', async () => {
    const { a, b } = samePairSteps(
      'c9-disconnect-with-io-in-flight',
      'c9-disconnect-with-io-in-flight-fixed',
    );
    expect(a.versions).toEqual({ ...b.versions, blkback: '2014' });
    const r = await runScenario({ ...a, versions: { ...a.versions, blkback: '2017' } }, { engine: 'sim' });
    expect(r.verdict).toBe('fail');
    expect(r.checks.filter((c) => !c.ok).map((c) => c.detail)).toEqual(['no oops: run completed']);
  }, 30_000);

  test('an oops the scenario did not expect fails the run, and so does one that does not match', async () => {
    const { scenario: s } = loadRunnableScenario(scenarioFile('c9-disconnect-with-io-in-flight'));
    const { oops: _, ...rest } = s.expect;
    const none = await runScenario({ ...s, expect: rest }, { engine: 'sim' });
    expect(none.verdict).toBe('fail');
    expect(none.failures[0]).toMatch(/^run error: .*BUG: unable to handle kernel paging request/);
    const other = await runScenario(
      { ...s, expect: { ...rest, oops: { kind: 'substring', text: 'BUG: KASAN' } } },
      { engine: 'sim' },
    );
    expect(other.verdict).toBe('fail');
    expect(other.failures.map((f) => f.split(':')[0])).toEqual(['run error', 'expect.oops "BUG']);
  }, 30_000);
});

describe('C16: persistent-grant negotiation vs. hotplug order (aac8a70db24b vs fc9be616bb8f)', () => {
  const buggy = 'c16-persistent-grant-negotiation';
  const fixed = 'c16-persistent-grant-negotiation-fixed';
  const step = (r: Awaited<ReturnType<typeof runScenario>>, label: string) =>
    r.steps.find((s) => s.label === label)!;
  const firstTime = (
    r: Awaited<ReturnType<typeof runScenario>>,
    test: (e: (typeof r.trace)[number]) => boolean,
  ) => r.trace.find(test)?.t;
  const connectRingAt = (r: Awaited<ReturnType<typeof runScenario>>) =>
    firstTime(r, (e) => e.kind === 'log' && String(e.fields?.msg).includes('using 1 queues'));

  test('aac8a70db24b: connect_ring runs before physical-device; the write fails with EIO and the disk is disabled', async () => {
    const r = await run(buggy);
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    // the order the slow hotplug forces: connect_ring (its log line) at 0, physical-device (vbd-open) at 5 s
    expect(connectRingAt(r)).toBe(0);
    expect(firstTime(r, (e) => e.kind === 'vbd-open')).toBe(5000);
    const w = step(r, 'write-after-connect');
    expect(w.status).toBe('tolerated');
    expect(w.error).toBe('write xvda: EIO');
    expect(step(r, 'read-back')).toMatchObject({ status: 'tolerated', error: 'read xvda: EIO' });
    // the write request reached blkback and was answered BLKIF_RSP_ERROR
    const ends = r.trace.filter((e) => e.kind === 'blk-req' && e.fields?.phase === 'end');
    expect(ends.map((e) => [e.fields?.op, e.fields?.status])).toEqual([
      ['write', -1],
      ['read', 0],
    ]);
  }, 30_000);

  test('fc9be616bb8f: the same order, the write lands and reads back', async () => {
    const r = await run(fixed);
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(connectRingAt(r)).toBe(0);
    expect(firstTime(r, (e) => e.kind === 'vbd-open')).toBe(5000);
    expect(step(r, 'write-after-connect').status).toBe('ok');
    expect(step(r, 'read-back').status).toBe('ok');
  }, 30_000);

  test('the pair differs only in blkback-persistent-negotiation; the fixed value on the buggy file fails its data and log checks', async () => {
    const { a, b } = samePairSteps(buggy, fixed);
    expect(a.versions).toEqual({ ...b.versions, blkbackPersistentNegotiation: 'aac8a70db24b' });
    expect(b.versions.blkbackPersistentNegotiation).toBe('fc9be616bb8f');
    expect(a.domains).toEqual(b.domains);
    const r = await runScenario(
      { ...a, versions: { ...a.versions, blkbackPersistentNegotiation: 'fc9be616bb8f' } },
      { engine: 'sim' },
    );
    expect(r.verdict).toBe('fail');
    expect(r.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual([
      'expect.data disk.img 4096@0',
      'expect.log dom0 contains "xen-blkback: vbd-1-51712/0: invalid buffer -- could not remap it"',
      'expect.log guest1 contains "backed has not unmapped grant"',
      'expect.log guest1 contains "xvda disabled for further use"',
    ]);
  }, 30_000);

  test('both triggers are needed: without the slow hotplug, or with the frontend offering persistent grants, the buggy blkback writes (seeds 1-5)', async () => {
    const { scenario: s } = loadRunnableScenario(scenarioFile(buggy));
    const noFault = { ...s, steps: s.steps.filter((st) => st.kind !== 'fault') };
    const offered = {
      ...s,
      domains: s.domains.map((d) => ({ ...d, blkfront: { featurePersistent: true } })),
    };
    for (const [what, variant] of [
      ['no slow hotplug', noFault],
      ['frontend offers persistent grants', offered],
    ] as const) {
      for (let seed = 1; seed <= 5; seed++) {
        const r = await runScenario(variant, { engine: 'sim', seed, imageStore: 'memory' });
        const got = [step(r, 'write-after-connect').status, step(r, 'read-back').status];
        expect(got, `${what}, seed ${seed}`).toEqual(['ok', 'ok']);
        // physical-device came first without the fault (vbd-open before connect_ring's line)
        if (variant === noFault)
          expect(firstTime(r, (e) => e.kind === 'vbd-open')).toBeLessThanOrEqual(connectRingAt(r)!);
      }
    }
  }, 60_000);
});

// C16 in threads: the 5 s slow hotplug (500 ms real at 0.1) orders connect_ring first, the no-device wait
// orders the hot-plug after the guest's boot, and the device wait lets blkfront add its disk.
describeThreadsVerdicts('C16 in the threads engine: the same verdicts as in sim', [
  'c16-persistent-grant-negotiation',
  'c16-persistent-grant-negotiation-fixed',
]);

describe('C23: dom0 power-off waits 5 s per backend device (Durrant, Dec 2019)', () => {
  const dmesg0 = (r: Awaited<ReturnType<typeof runScenario>>) => r.dmesg[0]!.join('\n');
  const powerOff = (r: Awaited<ReturnType<typeof runScenario>>) =>
    r.steps.find((s) => s.label === 'power-off')!;

  test('xenbus_dev_shutdown on the backend bus: 5 s and a "timeout closing device" per Connected disk', async () => {
    const r = await run('c23-dom0-shutdown-backend-timeout');
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(powerOff(r).end - powerOff(r).start).toBe(10_000);
    expect(r.stalls.map((s) => s.brokenBy?.timer)).toEqual([
      'xenbus_dev_shutdown 5 s timeout',
      'xenbus_dev_shutdown 5 s timeout',
    ]);
    // last registered first, as device_shutdown walks the list backwards
    expect(dmesg0(r).match(/xenbus_dev_shutdown: \S+ timeout closing device/g)).toEqual([
      'xenbus_dev_shutdown: backend/vbd/2/51712 timeout closing device',
      'xenbus_dev_shutdown: backend/vbd/1/51712 timeout closing device',
    ]);
  }, 30_000);

  test('frontend-only: the backend bus has no hook, the power-off is immediate', async () => {
    const r = await run('c23-dom0-shutdown-backend-timeout-fixed');
    expect(r.failures).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(powerOff(r).end - powerOff(r).start).toBe(0);
    expect(r.stalls).toEqual([]);
    expect(dmesg0(r)).not.toContain('timeout closing device');
  }, 30_000);

  test('the two files differ only in xenbus-backend-shutdown', () => {
    const { a, b } = samePairSteps(
      'c23-dom0-shutdown-backend-timeout',
      'c23-dom0-shutdown-backend-timeout-fixed',
    );
    expect(a.versions).toEqual({ ...b.versions, xenbusBackendShutdown: 'xenbus_dev_shutdown' });
    expect(b.versions.xenbusBackendShutdown).toBe('frontend-only');
  });

  test('one switch on the buggy file: the 10 s expectation and the stalls are gone', async () => {
    const { scenario: s } = loadRunnableScenario(scenarioFile('c23-dom0-shutdown-backend-timeout'));
    const r = await runScenario(
      { ...s, versions: { ...s.versions, xenbusBackendShutdown: 'frontend-only' } },
      { engine: 'sim' },
    );
    expect(r.verdict).toBe('fail');
    expect(r.stalls).toEqual([]);
    expect(r.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(
      expect.arrayContaining(['expect.stall']),
    );
  }, 30_000);
});
