import { describe, expect, it } from 'vitest';
import type { Controller } from '../../emulator/runtime/engine.js';
import type { DriverEvent } from './fixtures/recording-driver.js';
import { hostValue } from './harness.js';

const FE = '/local/domain/1/device/vbd/51712';
const BE = '/local/domain/0/backend/vbd/1/51712';

async function logs(ctl: Controller) {
  return {
    be: (await ctl.call(0, 'backendLog')) as DriverEvent[],
    fe: (await ctl.call(1, 'frontendLog')) as DriverEvent[],
  };
}

const states = (log: DriverEvent[]) => log.filter((e) => e.what === 'otherend').map((e) => e.state);

describe('xenbus buses: probing, other-end watching, removal', () => {
  it('both buses probe a new vbd, read the other end, and follow its state', async () => {
    const v = await hostValue(async (ctl) => {
      await ctl.call(0, 'startBackendBus', { probeState: 2 });
      await ctl.call(1, 'startFrontendBus');
      await ctl.call(0, 'addVbd', 1, 51712);
      await ctl.call(0, 'settle', 10);
      const first = await logs(ctl);
      await ctl.call(1, 'switchFrontend', 'device/vbd/51712', 3);
      await ctl.call(0, 'settle', 10);
      return {
        first,
        after: await logs(ctl),
        beDevs: await ctl.call(0, 'backendDevices'),
        feDevs: await ctl.call(1, 'frontendDevices'),
      };
    });
    const [beProbe] = v.first.be;
    expect(beProbe).toMatchObject({
      what: 'probe',
      node: 'backend/vbd/1/51712',
      otherend: FE,
      otherendId: 1,
    });
    expect(states(v.first.be)).toEqual([1]); // the watch fires once when set
    const [feProbe] = v.first.fe;
    expect(feProbe).toMatchObject({ what: 'probe', node: 'device/vbd/51712', otherend: BE, otherendId: 0 });
    // The frontend saw the backend's InitWait (perhaps after an Initialising it read first).
    expect(states(v.first.fe).at(-1)).toBe(2);
    expect(states(v.after.be).at(-1)).toBe(3);
    expect(v.beDevs).toEqual([{ node: 'backend/vbd/1/51712', busId: 'vbd-1-51712', state: 2 }]);
    expect(v.feDevs).toEqual([{ node: 'device/vbd/51712', busId: 'vbd-51712', state: 3 }]);
  });

  it('removing the frontend directory unregisters both devices (backend: other end Unknown)', async () => {
    const v = await hostValue(async (ctl) => {
      await ctl.call(0, 'startBackendBus', { probeState: 2 });
      await ctl.call(1, 'startFrontendBus');
      await ctl.call(0, 'addVbd', 1, 51712);
      await ctl.call(0, 'settle', 10);
      await ctl.call(0, 'rm', FE);
      await ctl.call(0, 'settle', 10);
      return {
        ...(await logs(ctl)),
        beDevs: await ctl.call(0, 'backendDevices'),
        feDevs: await ctl.call(1, 'frontendDevices'),
        beState: await ctl.call(0, 'read', `${BE}/state`),
      };
    });
    expect(v.be.at(-1)).toMatchObject({ what: 'remove', node: 'backend/vbd/1/51712' });
    expect(states(v.be)).not.toContain(0); // Unknown is handled by the bus, not passed to the driver
    expect(v.fe.at(-1)).toMatchObject({ what: 'remove', node: 'device/vbd/51712' });
    expect(v.beDevs).toEqual([]);
    expect(v.feDevs).toEqual([]);
    // xenbus_dev_remove switches a non-rebindable device to Closed while its node still exists.
    expect(v.beState).toBe('6');
  });

  it('removing the backend directory unregisters the backend without resurrecting it', async () => {
    const v = await hostValue(async (ctl) => {
      await ctl.call(0, 'startBackendBus', { probeState: 2 });
      await ctl.call(1, 'startFrontendBus');
      await ctl.call(0, 'addVbd', 1, 51712);
      await ctl.call(0, 'settle', 10);
      await ctl.call(0, 'rm', BE);
      await ctl.call(0, 'settle', 10);
      return {
        ...(await logs(ctl)),
        beDevs: await ctl.call(0, 'backendDevices'),
        beState: await ctl.call(0, 'read', `${BE}/state`),
        beDir: await ctl.call(0, 'read', BE),
      };
    });
    expect(v.be.at(-1)).toMatchObject({ what: 'remove', node: 'backend/vbd/1/51712' });
    expect(v.beDevs).toEqual([]);
    expect(v.beState).toBeUndefined();
    expect(v.beDir).toBeUndefined();
    // The frontend is told its backend is gone (Unknown) and decides itself.
    expect(states(v.fe).at(-1)).toBe(0);
  });

  it('a handler re-reads the state: states passed while it slept are skipped', async () => {
    const v = await hostValue(async (ctl) => {
      await ctl.call(0, 'startBackendBus');
      await ctl.call(1, 'startFrontendBus', { sleepFirstOtherendMs: 100 });
      await ctl.call(0, 'addVbd', 1, 51712);
      await ctl.call(0, 'settle', 10);
      for (const s of [2, 3, 4]) await ctl.call(0, 'switchBackend', 'backend/vbd/1/51712', s);
      await ctl.call(0, 'settle', 200);
      return logs(ctl);
    });
    const seen = states(v.fe);
    expect(seen[0]).toBe(1);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen.slice(1).every((s) => s === 4)).toBe(true);
  });

  it('XSA-349: the backend keeps at most one pending event for the frontend state', async () => {
    const v = await hostValue(async (ctl) => {
      await ctl.call(0, 'startBackendBus', { sleepFirstOtherendMs: 100 });
      await ctl.call(1, 'startFrontendBus');
      await ctl.call(0, 'addVbd', 1, 51712);
      await ctl.call(0, 'settle', 10);
      for (const s of [2, 3, 4, 3, 4]) await ctl.call(1, 'switchFrontend', 'device/vbd/51712', s);
      await ctl.call(0, 'settle', 200);
      return logs(ctl);
    });
    // The first (registration) event was running; of the five that followed one was queued.
    expect(states(v.be)).toEqual([1, 4]);
  });
});
