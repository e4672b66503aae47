/**
 * GuestKernel.waitNoDevice, the barrier behind the scenario wait `{ guest, no-device }`: it returns once
 * the xenbus device is unregistered to the end (remove, then the switch to Closed, both in xenwatch)
 * and the gendisk is gone; a device that stays, or a disk kept open, makes it time out.
 */
import { describe, expect, it } from 'vitest';
import { BE, connect, FE, GUEST, hostValue } from '../blkfront/fixtures/host.js';

type NoDevice = { result: 'ok' | 'timeout'; at: number; devices: string[] };

describe('waitNoDevice (scenario wait guest no-device)', () => {
  it('times out while the device is registered and connected', async () => {
    const { value } = await hostValue(async (ctl) => {
      await connect(ctl);
      const before = ctl.env.now();
      const r = (await ctl.call(GUEST, 'waitNoDevice', 'xvda', 40)) as NoDevice;
      return { r, took: r.at - before };
    });
    expect(value.r.result).toBe('timeout');
    expect(value.r.devices).toEqual(['device/vbd/51712']);
    expect(value.took).toBeGreaterThanOrEqual(40);
  });

  it('a disk the guest never had is gone at once', async () => {
    const { value } = await hostValue(async (ctl) => {
      await connect(ctl);
      return (await ctl.call(GUEST, 'waitNoDevice', 'xvdb', 40)) as NoDevice;
    });
    expect(value.result).toBe('ok');
    expect(value.devices).toEqual(['device/vbd/51712']);
  });

  it('returns after the unregistration ended: a directory re-created right after is probed afresh', async () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const { value, result } = await hostValue(
        async (ctl) => {
          await connect(ctl);
          // The directory goes; wait straight away, before the guest's xenwatch has run the removal.
          await ctl.call(0, 'rm', FE);
          const r = (await ctl.call(GUEST, 'waitNoDevice', 'xvda')) as NoDevice;
          // Re-created as libxl writes it, `state` last: it must not meet the old device's Closed.
          await ctl.call(0, 'write', `${FE}/backend-id`, '0');
          await ctl.call(0, 'write', `${FE}/backend`, BE);
          await ctl.call(0, 'write', `${FE}/state`, '1');
          await ctl.call(0, 'settle', 50);
          const again = (await ctl.call(GUEST, 'waitNoDevice', 'xvda', 1)) as NoDevice;
          return { r, again, state: await ctl.call(0, 'read', `${FE}/state`) };
        },
        { seed },
      );
      expect(value.r, `seed ${seed}`).toMatchObject({ result: 'ok', devices: [] });
      // The new device was taken (probed while Initialising) and never closed by the old one.
      expect(value.again, `seed ${seed}`).toMatchObject({ result: 'timeout', devices: ['device/vbd/51712'] });
      expect(value.state, `seed ${seed}`).not.toBe('6');
      const unregistered = result.trace.find(
        (e) => e.dom === GUEST && e.kind === 'device-unregister' && e.fields?.node === 'device/vbd/51712',
      );
      expect(unregistered, `seed ${seed}`).toBeDefined();
      expect(unregistered!.t).toBeLessThanOrEqual(value.r.at);
    }
  });

  it('waits for an open disk to be released (blkfront 2012 keeps it until the last close)', async () => {
    const { value } = await hostValue(
      async (ctl) => {
        await connect(ctl);
        const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
        await ctl.call(0, 'write', `${BE}/state`, '5');
        await ctl.call(0, 'rm', FE);
        const whileOpen = (await ctl.call(GUEST, 'waitNoDevice', 'xvda', 100)) as NoDevice;
        const disks = (await ctl.call(GUEST, 'disks')) as Array<{ name: string }>;
        await ctl.call(GUEST, 'close', h);
        const afterClose = (await ctl.call(GUEST, 'waitNoDevice', 'xvda', 100)) as NoDevice;
        return { whileOpen, disks: disks.map((d) => d.name), afterClose };
      },
      { blkfront: { version: '2012' } },
    );
    expect(value.whileOpen.result).toBe('timeout');
    expect(value.disks).toEqual(['xvda']);
    expect(value.afterClose.result).toBe('ok');
  });
});
