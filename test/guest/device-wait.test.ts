/**
 * GuestKernel.waitDevice, behind the scenario wait `{ guest, device }`: it returns once the gendisk
 * exists, and blkfront adds it only after it is connected (add_disk last, as Linux's blkfront_connect),
 * so I/O issued the moment the disk appears reaches the ring instead of failing with EIO.
 */
import { describe, expect, it } from 'vitest';
import { connect, GUEST, hostValue } from '../blkfront/fixtures/host.js';

type Device = { result: 'ok' | 'timeout'; at: number; present: boolean; connected: number[] };

describe('waitDevice (scenario wait guest device)', () => {
  it('times out while the guest has no such disk', async () => {
    const { value } = await hostValue(async (ctl) => {
      await connect(ctl);
      return (await ctl.call(GUEST, 'waitDevice', 'xvdb', 40)) as Device;
    });
    expect(value).toMatchObject({ result: 'timeout', present: false });
  });

  it('returns when the disk appears, and a read issued at once succeeds (every seed)', async () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const { value } = await hostValue(
        async (ctl) => {
          await ctl.call(0, 'start');
          await ctl.call(GUEST, 'start');
          // The waiter is there before the device exists; the vbd is plugged meanwhile.
          ctl.env.spawn('plug', async () => {
            await ctl.call(0, 'addVbd', GUEST, 51712);
          });
          const w = (await ctl.call(GUEST, 'waitDevice', 'xvda')) as Device;
          const id = (await ctl.call(GUEST, 'open', 'xvda')) as number;
          const r = (await ctl.call(GUEST, 'read', id, 0, 4096)) as { error?: string };
          return { w, error: r.error };
        },
        { seed },
      );
      expect(value.w, `seed ${seed}`).toMatchObject({ result: 'ok', present: true, connected: [4] });
      expect(value.error, `seed ${seed}`).toBeUndefined();
    }
  });
});
