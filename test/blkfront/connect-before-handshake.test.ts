// C14 (teardown.md §4, Linux c31ecf6c126d): a backend that publishes its disk and shows Connected
// before the frontend ever saw InitWait. Before the fix blkfront_connect ran with nothing negotiated
// and faulted in blkfront_setup_indirect; after it, Connected-before-handshake is handled as InitWait.
import { describe, expect, it } from 'vitest';
import { BE, connect, FE, GUEST, hostValue } from './fixtures/host.js';

describe('C14: backend Connected before the handshake', () => {
  it('handshake-first (c31ecf6c126d): talks to the backend first, then connects and serves I/O', async () => {
    const { value, result } = await hostValue(
      async (ctl) => {
        await connect(ctl);
        const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
        const io = await ctl.call(GUEST, 'write', h, 0, 4096, 'seq');
        const back = await ctl.call(GUEST, 'read', h, 0, 4096, 'seq');
        return {
          fe: await ctl.call(0, 'read', `${FE}/state`),
          ringRef: await ctl.call(0, 'read', `${FE}/ring-ref`),
          io,
          back,
        };
      },
      { backend: { jumpToConnected: true }, blkfront: { connect: 'handshake-first' } },
    );
    expect(value.fe).toBe('4');
    expect(Number(value.ringRef)).toBeGreaterThanOrEqual(8);
    expect(value.io).toMatchObject({ error: undefined });
    expect(value.back).toMatchObject({ error: undefined, mismatchAt: -1 });
    // The first backend state blkfront saw was Connected: InitWait never happened.
    const seen = result.trace
      .filter((e) => e.comp === 'blkfront' && e.kind === 'backend-state')
      .map((e) => e.fields?.state);
    expect(seen[0]).toBe('Connected');
    expect(seen).not.toContain('InitWait');
    const states = result.trace
      .filter((e) => e.comp === 'blkfront' && e.kind === 'xenbus-state')
      .map((e) => `${e.fields?.from}->${e.fields?.to}`);
    expect(states).toEqual(['Initialising->Initialised', 'Initialised->Connected']);
    expect(result.trace.some((e) => e.kind === 'oops')).toBe(false);
  });

  it('direct (before c31ecf6c126d): connect runs with no ring negotiated and the guest oopses', async () => {
    const { value, result } = await hostValue(
      async (ctl) => {
        await connect(ctl);
        return {
          fe: await ctl.call(0, 'read', `${FE}/state`),
          be: await ctl.call(0, 'read', `${BE}/state`),
          ringRef: await ctl.call(0, 'read', `${FE}/ring-ref`),
        };
      },
      { backend: { jumpToConnected: true }, blkfront: { connect: 'direct' } },
    );
    // The frontend never got past Initialising and granted no ring.
    expect(value.fe).toBe('1');
    expect(value.be).toBe('4');
    expect(value.ringRef).toBeUndefined();
    const dmesg = result.dmesg[GUEST] ?? [];
    expect(dmesg.some((l) => l.includes('BUG: unable to handle kernel NULL pointer dereference'))).toBe(true);
    expect(
      dmesg.some((l) => l.includes('blkfront_setup_indirect: xvda: rinfo->shadow is not allocated')),
    ).toBe(true);
    expect(dmesg.some((l) => l.includes('Kernel panic - not syncing: Fatal exception'))).toBe(true);
    const oops = result.trace.filter((e) => e.kind === 'oops');
    expect(oops).toHaveLength(1);
    expect(oops[0]).toMatchObject({ dom: GUEST, comp: 'blkfront' });
  });

  it('direct is harmless when the backend follows the states (InitWait first)', async () => {
    const { value, result } = await hostValue(
      async (ctl) => {
        await connect(ctl);
        const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
        return {
          fe: await ctl.call(0, 'read', `${FE}/state`),
          io: await ctl.call(GUEST, 'write', h, 0, 4096, 'seq'),
        };
      },
      { blkfront: { connect: 'direct' } },
    );
    expect(value.fe).toBe('4');
    expect(value.io).toMatchObject({ error: undefined });
    expect(result.trace.some((e) => e.kind === 'oops')).toBe(false);
  });
});
