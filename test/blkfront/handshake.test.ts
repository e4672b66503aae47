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

  it('C14: a backend that skips InitWait and shows Connected first still gets the handshake', async () => {
    const { value } = await hostValue(
      async (ctl) => {
        await connect(ctl);
        const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
        const io = await ctl.call(GUEST, 'write', h, 0, 4096, 'seq');
        return {
          fe: await ctl.call(0, 'read', `${FE}/state`),
          ringRef: await ctl.call(0, 'read', `${FE}/ring-ref`),
          io,
        };
      },
      { backend: { jumpToConnected: true } },
    );
    expect(value.fe).toBe('4');
    expect(Number(value.ringRef)).toBeGreaterThanOrEqual(8);
    expect(value.io).toMatchObject({ error: undefined });
  });

  it.each([
    {
      name: 'negotiates a 4-page ring when allowed',
      blkfront: { maxRingPageOrder: 2 },
      backend: {},
      order: '2',
      indirect: 32,
    },
    {
      name: 'takes the smaller of the two ring orders',
      blkfront: { maxRingPageOrder: 4 },
      backend: { maxRingPageOrder: 1 },
      order: '1',
      indirect: 32,
    },
    {
      name: 'uses no indirect segments when the backend offers ≤ 11',
      blkfront: {},
      backend: { maxIndirectSegments: 11 },
      order: undefined,
      indirect: 0,
    },
    {
      name: 'caps indirect segments at the module parameter',
      blkfront: { maxIndirectSegments: 64 },
      backend: { maxIndirectSegments: 256 },
      order: undefined,
      indirect: 64,
    },
  ])('$name', async ({ blkfront, backend, order, indirect }) => {
    const { value } = await hostValue(
      async (ctl) => {
        await connect(ctl);
        const o = (await ctl.call(0, 'read', `${FE}/ring-page-order`)) as string | undefined;
        const refs: unknown[] = [];
        for (let i = 0; i < (o === undefined ? 0 : 1 << Number(o)); i++)
          refs.push(await ctl.call(0, 'read', `${FE}/ring-ref${i}`));
        return {
          o,
          refs,
          single: await ctl.call(0, 'read', `${FE}/ring-ref`),
          state: await ctl.call(GUEST, 'state'),
          stats: await ctl.call(0, 'stats'),
        };
      },
      { blkfront, backend },
    );
    expect(value.o).toBe(order);
    if (order === undefined) expect(value.single).toBeDefined();
    else {
      expect(value.single).toBeUndefined();
      expect(value.refs.every((r) => Number(r) >= 8)).toBe(true);
      expect((value.stats as { ringPages: number }).ringPages).toBe(1 << Number(order));
    }
    expect(value.state).toMatchObject({ connected: 'connected', indirect });
  });

  it('a backend without sectors is fatal: error node and Closing, no disk', async () => {
    const { value } = await hostValue(
      async (ctl) => {
        await connect(ctl);
        return {
          fe: await ctl.call(0, 'read', `${FE}/state`),
          error: await ctl.call(0, 'read', '/local/domain/1/error/device/vbd/51712/error'),
          disks: await ctl.call(GUEST, 'disks'),
        };
      },
      { backend: { omitKeys: ['sectors'] } },
    );
    expect(value.fe).toBe('5');
    expect(value.error).toBe(`2 reading backend fields at ${BE}`);
    expect(value.disks).toEqual([]);
  });

  it('the same seed gives the same trace', async () => {
    const once = async () =>
      (
        await hostValue(
          async (ctl) => {
            await connect(ctl);
            const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
            await ctl.call(GUEST, 'job', h, {
              rw: 'randwrite',
              bs: 4096,
              iodepth: 8,
              count: 24,
              pattern: 'seq',
            });
          },
          { seed: 9, backend: { latencyMs: 1 } },
        )
      ).result.trace.map((e) => `${e.t} ${e.task} ${e.kind} ${JSON.stringify(e.fields ?? {})}`);
    expect(await once()).toEqual(await once());
  });
});
