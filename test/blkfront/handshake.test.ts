import { describe, expect, it } from 'vitest';
import { BE, connect, FE, GUEST, hostValue } from './fixtures/host.js';

describe('blkfront handshake against a backend in dom0', () => {
  it('connects: ring-ref, event-channel, protocol, feature-persistent, then Connected with the disk', async () => {
    const { value, result } = await hostValue(async (ctl) => {
      await connect(ctl);
      return {
        fe: await ctl.call(0, 'read', `${FE}/state`),
        be: await ctl.call(0, 'read', `${BE}/state`),
        ringRef: await ctl.call(0, 'read', `${FE}/ring-ref`),
        order: await ctl.call(0, 'read', `${FE}/ring-page-order`),
        evtchn: await ctl.call(0, 'read', `${FE}/event-channel`),
        protocol: await ctl.call(0, 'read', `${FE}/protocol`),
        persistent: await ctl.call(0, 'read', `${FE}/feature-persistent`),
        disks: await ctl.call(GUEST, 'disks'),
        state: await ctl.call(GUEST, 'state'),
      };
    });
    expect(value.fe).toBe('4');
    expect(value.be).toBe('4');
    expect(Number(value.ringRef)).toBeGreaterThanOrEqual(8);
    expect(value.order).toBeUndefined();
    expect(Number(value.evtchn)).toBeGreaterThan(0);
    expect(value.protocol).toBe('x86_64-abi');
    expect(value.persistent).toBe('1');
    expect(value.disks).toEqual([
      { name: 'xvda', major: 202, minor: 0, sectors: 2048, readOnly: false, openers: 0, holders: [] },
    ]);
    expect(value.state).toMatchObject({
      connected: 'connected',
      persistent: true,
      indirect: 32,
      ringPages: 1,
    });
    const states = result.trace
      .filter((e) => e.comp === 'blkfront' && e.kind === 'xenbus-state')
      .map((e) => `${e.fields?.from}->${e.fields?.to}`);
    expect(states).toEqual(['Initialising->Initialised', 'Initialised->Connected']);
    expect(
      (result.dmesg[GUEST] ?? []).some((l) => l.includes('blkfront: xvda: flush diskcache: enabled;')),
    ).toBe(true);
  });
});
