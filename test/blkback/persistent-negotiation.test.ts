// C16 (teardown.md §4, Linux fc9be616bb8f): the persistent-grant flag blkback uses depends on whether
// connect_ring (frontend Initialised) or xen_vbd_create (hotplug writes physical-device) runs first.
import { describe, expect, it } from 'vitest';
import type { BlkbackPersistentNegotiation } from '../../drivers/blkback/common.js';
import type { Controller } from '../../emulator/runtime/engine.js';
import { BE, hostValue } from './harness.js';

type Order = 'hotplug-first' | 'connect-first';

const full = { first: 0, last: 7 };

async function until(ctl: Controller, what: string, test: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (await test()) return;
    await ctl.env.sleep(1);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function attach(order: Order, negotiation: BlkbackPersistentNegotiation, fePersistent: boolean) {
  const r = await hostValue(
    async (ctl) => {
      await ctl.call(0, 'start');
      await ctl.call(0, 'addVbd', 1, 51712);
      await until(ctl, 'backend InitWait', async () => (await ctl.call(0, 'read', `${BE(1)}/state`)) === '2');
      if (order === 'hotplug-first') {
        await ctl.call(0, 'hotplug', 1, 51712, 0);
        await ctl.call(1, 'connect', { persistent: fePersistent });
      } else {
        await ctl.call(1, 'connect', { persistent: fePersistent, wait: false });
        // connect_ring has mapped the ring (its port is bound) before physical-device appears.
        await until(ctl, 'connect_ring', async () => {
          const snap = (await ctl.call(0, 'snapshot')) as Array<{ rings: Array<{ port: number }> }>;
          return (snap[0]?.rings[0]?.port ?? 0) !== 0;
        });
        await ctl.call(0, 'hotplug', 1, 51712, 0);
        await until(
          ctl,
          'backend Connected',
          async () => (await ctl.call(0, 'read', `${BE(1)}/state`)) === '4',
        );
      }
      const io = (await ctl.call(1, 'io', [
        { op: 1, sector: 0, segs: [full], fill: 5 },
        { op: 0, sector: 0, segs: [full] },
      ])) as { responses: Array<{ status: number }> };
      const snap = (await ctl.call(0, 'snapshot')) as Array<{ rings: Array<{ persistentGrants: number }> }>;
      return {
        statuses: io.responses.map((x) => x.status),
        kept: snap[0]!.rings[0]!.persistentGrants,
        stillMapped: (await ctl.call(1, 'grantsInUse')) as number,
        advertised: await ctl.call(0, 'read', `${BE(1)}/feature-persistent`),
      };
    },
    { dom0: { persistentNegotiation: negotiation } },
  );
  const line = r.dmesg[0]!.find((l) => l.includes('using 1 queues'));
  return { ...r.value!, saysPersistent: line?.includes('persistent grants') };
}

// used: blkback keeps the frontend's grants mapped (persistent); says: connect_ring's log line;
// advertised: backend feature-persistent.
const table: Array<{
  order: Order;
  sw: BlkbackPersistentNegotiation;
  fe: boolean;
  used: boolean;
  /** Write then read: a write's page is granted read-only unless persistent, so a persistent map fails. */
  statuses: number[];
  says: boolean;
  advertised: string;
}> = [
  {
    order: 'hotplug-first',
    sw: 'aac8a70db24b',
    fe: true,
    used: true,
    statuses: [0, 0],
    says: true,
    advertised: '1',
  },
  {
    order: 'hotplug-first',
    sw: 'aac8a70db24b',
    fe: false,
    used: false,
    statuses: [0, 0],
    says: false,
    advertised: '0',
  },
  {
    order: 'connect-first',
    sw: 'aac8a70db24b',
    fe: true,
    used: true,
    statuses: [0, 0],
    says: false,
    advertised: '1',
  },
  // The bug: the frontend did not offer persistent grants, and blkback keeps its grants mapped anyway.
  {
    order: 'connect-first',
    sw: 'aac8a70db24b',
    fe: false,
    used: true,
    statuses: [-1, 0],
    says: false,
    advertised: '1',
  },
  {
    order: 'hotplug-first',
    sw: 'fc9be616bb8f',
    fe: true,
    used: true,
    statuses: [0, 0],
    says: true,
    advertised: '1',
  },
  {
    order: 'hotplug-first',
    sw: 'fc9be616bb8f',
    fe: false,
    used: false,
    statuses: [0, 0],
    says: false,
    advertised: '1',
  },
  {
    order: 'connect-first',
    sw: 'fc9be616bb8f',
    fe: true,
    used: true,
    statuses: [0, 0],
    says: true,
    advertised: '1',
  },
  {
    order: 'connect-first',
    sw: 'fc9be616bb8f',
    fe: false,
    used: false,
    statuses: [0, 0],
    says: false,
    advertised: '1',
  },
];

describe('C16 persistent-grant negotiation: connect_ring vs xen_vbd_create order', () => {
  it.each(table)('$sw, $order, frontend persistent=$fe → used=$used', async (row) => {
    const got = await attach(row.order, row.sw, row.fe);
    expect(got.statuses).toEqual(row.statuses);
    expect(got.kept > 0).toBe(row.used);
    // Grants left mapped by dom0 after every response: only persistent ones.
    expect(got.stillMapped > 0).toBe(row.used);
    expect(got.saysPersistent).toBe(row.says);
    expect(got.advertised).toBe(row.advertised);
  });

  it('refuses an unknown switch value', async () => {
    await expect(
      hostValue(async () => 0, {
        dom0: { persistentNegotiation: 'bogus' as unknown as BlkbackPersistentNegotiation },
      }),
    ).rejects.toThrow(/persistentNegotiation: "bogus" is not one of 'aac8a70db24b', 'fc9be616bb8f'/);
  });
});
