// C15 (teardown.md §4, Bob Liu, "xen-blkfront: save uncompleted reqs in blkfront_resume()",
// d8b31d834629): a guest suspended with a read in flight and resumed against a fresh backend (its
// host changed). The fix takes the uncompleted requests out of the shadow in blkfront_resume, before
// the ring is freed and renegotiated, and resubmits them; before it blkif_recover looked for them in
// the shadow of the new ring — empty — and the read never completes.
import { describe, expect, it } from 'vitest';
import type { BlkfrontResume } from '../../drivers/blkfront/info.js';
import { connect, FE, GUEST, runHost } from './fixtures/host.js';

interface Outcome {
  held: number;
  lost: number;
  resumed: boolean;
  read: unknown;
  fe: string | undefined;
  state: unknown;
  after: unknown;
}

async function suspendWithReadInFlight(resume: BlkfrontResume) {
  return runHost<Outcome>(
    async (ctl) => {
      await connect(ctl);
      const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
      await ctl.call(GUEST, 'write', h, 0, 65536, 'seq');
      await ctl.call(0, 'hold');
      const done = ctl.env.waitQueue('reader done');
      let read: unknown;
      ctl.env.spawn('reader', async () => {
        read = await ctl.call(GUEST, 'read', h, 0, 65536, 'seq');
        done.wakeAll();
      });
      await ctl.call(0, 'settle', 10);
      const held = (await ctl.call(0, 'held')) as number;
      // Suspend, move to another host (the old backend and what it held are gone), resume.
      const lost = (await ctl.call(0, 'migrate')) as number;
      const resumed = (await ctl.call(GUEST, 'resume')) as boolean;
      await ctl.env.wait(done, () => read !== undefined, {
        what: 'the read issued before the suspend',
        timeoutMs: 5000,
      });
      const out: Outcome = {
        held,
        lost,
        resumed,
        read,
        fe: (await ctl.call(0, 'read', `${FE}/state`)) as string | undefined,
        state: await ctl.call(GUEST, 'state'),
        after: await ctl.call(GUEST, 'read', h, 0, 4096, 'seq'),
      };
      return out;
    },
    { blkfront: { resume, featurePersistent: true } },
  );
}

describe('C15: requests in flight across a suspend/resume', () => {
  it('save-in-resume (d8b31d834629): the read is resubmitted on the new ring and completes with its data', async () => {
    const r = await suspendWithReadInFlight('save-in-resume');
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.held).toBe(1);
    expect(v.lost).toBe(1);
    expect(v.resumed).toBe(true);
    expect(v.read).toMatchObject({ error: undefined, mismatchAt: -1 });
    expect(v.fe).toBe('4');
    expect(v.state).toMatchObject({ connected: 'connected' });
    expect(v.after).toMatchObject({ error: undefined, mismatchAt: -1 });
    expect(r.stalls).toEqual([]);
    const dmesg = r.dmesg[GUEST] ?? [];
    expect(dmesg).toContainEqual(expect.stringContaining('xvda: recovered 1 request(s) after resume'));
    const states = r.trace
      .filter((e) => e.comp === 'blkfront' && e.kind === 'xenbus-state')
      .map((e) => `${e.fields?.from}->${e.fields?.to}`);
    expect(states).toEqual([
      'Initialising->Initialised',
      'Initialised->Connected',
      'Connected->Initialising',
      'Initialising->Initialised',
      'Initialised->Connected',
    ]);
  });

  it('save-in-recover (before it): the new shadow is empty, the read is never resubmitted and hangs', async () => {
    const r = await suspendWithReadInFlight('save-in-recover');
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.held).toBe(1);
    expect(v.resumed).toBe(true);
    expect(v.read).toBeUndefined();
    // The device itself came back: new I/O works, only the request in flight was lost.
    expect(v.fe).toBe('4');
    expect(v.after).toMatchObject({ error: undefined, mismatchAt: -1 });
    const dmesg = r.dmesg[GUEST] ?? [];
    expect(dmesg).toContainEqual(expect.stringContaining('xvda: recovered 0 request(s) after resume'));
    // Nothing but the 5 s timeout could end the wait for the lost read.
    expect(r.stalls.length).toBeGreaterThanOrEqual(1);
    expect(r.stalls[0]!.chain[0]!.waitsFor).toContain('the read issued before the suspend');
    expect(r.stalls[0]!.brokenBy?.timer).toBeDefined();
  });

  it('bios submitted while suspended wait for the new ring in both versions', async () => {
    for (const resume of ['save-in-recover', 'save-in-resume'] as const) {
      const r = await runHost(
        async (ctl) => {
          await connect(ctl);
          const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
          await ctl.call(GUEST, 'write', h, 8192, 4096, 'seq');
          await ctl.call(0, 'migrate');
          await ctl.call(GUEST, 'resume');
          return ctl.call(GUEST, 'read', h, 8192, 4096, 'seq');
        },
        { blkfront: { resume } },
      );
      expect(r.outcome).toBe('completed');
      expect(r.value).toMatchObject({ error: undefined, mismatchAt: -1 });
    }
  });
});
