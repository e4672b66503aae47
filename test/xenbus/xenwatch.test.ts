import { describe, expect, it } from 'vitest';
import { hostValue, runHost } from './harness.js';

describe('xenwatch: one task runs every callback in order', () => {
  it('a sleeping callback delays another watch’s callback until it returns', async () => {
    const log = (await hostValue((ctl) => ctl.call(1, 'watchSerial'))) as { t: number; what: string }[];
    const t0 = log[0]!.t;
    expect(log.map((e) => e.what)).toEqual(['writes', 'A start a/x', 'A end a/x', 'B b/y']);
    const [, aStart, aEnd, b] = log;
    expect(aStart!.t).toBe(t0);
    expect(aEnd!.t).toBe(t0 + 1000);
    // B's event arrived at t0 but ran only after A's 1000 ms sleep.
    expect(b!.t).toBe(t0 + 1000);
  });
});

describe('XSA-349: pending watch events are bounded', () => {
  it('events beyond the per-watch bound are discarded and logged', async () => {
    const r = await runHost((ctl) => ctl.call(1, 'flood', 20), { guestConfig: { maxPendingPerWatch: 4 } });
    expect(r.outcome).toBe('completed');
    // One callback was running while the 20 events came; 4 were queued, 16 dropped.
    expect(r.value).toEqual({ runs: 5, discarded: 16, pendingAfterFlood: 4 });
    const lines = r.dmesg[1] ?? [];
    expect(
      lines.some((l) =>
        /4 events pending for watch flood; discarding event for flood\/n4 \(XSA-349 bound 4\)/.test(l),
      ),
    ).toBe(true);
  });

  it('with the default bound nothing of a small flood is lost', async () => {
    const r = await runHost((ctl) => ctl.call(1, 'flood', 20));
    expect(r.value).toEqual({ runs: 21, discarded: 0, pendingAfterFlood: 20 });
  });
});

describe('switchState (xenbus_switch_state) and dev_fatal', () => {
  it('writes new states, skips equal ones, never resurrects a removed device, and dev_fatal closes', async () => {
    const r = await hostValue((ctl) => ctl.call(1, 'switchStateCases'));
    expect(r).toEqual({
      afterConnect: '4',
      cachedConnect: 4,
      afterNoop: '3',
      existsAfterRemoved: false,
      cachedRemoved: 5,
      errorNode: '12 allocating ring',
      afterFatal: '5',
    });
  });
});
