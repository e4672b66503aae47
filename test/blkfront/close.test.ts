import { describe, expect, it } from 'vitest';
import { BE, connect, FE, GUEST, hostValue } from './fixtures/host.js';

describe('blkfront close with the disk open (teardown.md 1.1, 3.2, C7)', () => {
  it('2012: refuses to close while open, keeps serving I/O, and the last release finishes the close', async () => {
    const { value, result } = await hostValue(
      async (ctl) => {
        await connect(ctl);
        const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
        await ctl.call(0, 'write', `${BE}/state`, '5'); // the toolstack asks the backend to close
        await ctl.call(0, 'settle', 50);
        const whileOpen = {
          fe: await ctl.call(0, 'read', `${FE}/state`),
          error: await ctl.call(0, 'read', '/local/domain/1/error/device/vbd/51712/error'),
          io: await ctl.call(GUEST, 'write', h, 0, 4096, 'seq'),
          disks: await ctl.call(GUEST, 'disks'),
        };
        await ctl.call(GUEST, 'close', h);
        await ctl.call(0, 'settle', 50);
        return {
          whileOpen,
          fe: await ctl.call(0, 'read', `${FE}/state`),
          disks: await ctl.call(GUEST, 'disks'),
        };
      },
      { blkfront: { version: '2012' } },
    );
    expect(value.whileOpen.fe).toBe('5');
    expect(value.whileOpen.error).toBe('16 Device in use; refusing to close');
    expect(value.whileOpen.io).toMatchObject({ error: undefined });
    expect(value.whileOpen.disks).toMatchObject([{ name: 'xvda', openers: 1 }]);
    expect(value.fe).toBe('6');
    expect(value.disks).toEqual([]);
    const dmesg = result.dmesg[GUEST] ?? [];
    expect(dmesg.some((l) => l.includes('Device in use; refusing to close'))).toBe(true);
    expect(dmesg.some((l) => l.includes('xvda: releasing disk'))).toBe(true);
    const states = result.trace
      .filter((e) => e.comp === 'blkfront' && e.kind === 'xenbus-state')
      .map((e) => e.fields?.to);
    expect(states).toEqual(['Initialised', 'Connected', 'Closing', 'Closed']);
  });

  it('2016: marks the disk dead and goes Closed at once; I/O on the open disk fails', async () => {
    const { value } = await hostValue(
      async (ctl) => {
        await connect(ctl);
        const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
        await ctl.call(0, 'write', `${BE}/state`, '5');
        await ctl.call(0, 'settle', 50);
        const fe = await ctl.call(0, 'read', `${FE}/state`);
        const io = await ctl.call(GUEST, 'write', h, 0, 4096, 'seq');
        await ctl.call(GUEST, 'close', h);
        return { fe, io, error: await ctl.call(0, 'read', '/local/domain/1/error/device/vbd/51712/error') };
      },
      { blkfront: { version: '2016' } },
    );
    expect(value.fe).toBe('6');
    expect(value.io).toMatchObject({ error: 'EIO' });
    expect(value.error).toBeUndefined();
  });

  it.each(['2012', '2016'] as const)('%s: closes at once when the disk is not open', async (version) => {
    const { value } = await hostValue(
      async (ctl) => {
        await connect(ctl);
        await ctl.call(0, 'write', `${BE}/state`, '5');
        await ctl.call(0, 'settle', 50);
        return { fe: await ctl.call(0, 'read', `${FE}/state`), be: await ctl.call(0, 'read', `${BE}/state`) };
      },
      { blkfront: { version } },
    );
    expect(value).toEqual({ fe: '6', be: '6' });
  });

  it('guest shutdown: the frontend bus switches to Closing and the device closes without a timeout', async () => {
    const { value, result } = await hostValue(async (ctl) => {
      await connect(ctl);
      const t0 = ctl.env.now();
      await ctl.call(GUEST, 'shutdown');
      return {
        took: ctl.env.now() - t0,
        fe: await ctl.call(0, 'read', `${FE}/state`),
        be: await ctl.call(0, 'read', `${BE}/state`),
      };
    });
    expect(value.fe).toBe('6');
    expect(value.be).toBe('6');
    expect(value.took).toBeLessThan(5000);
    expect((result.dmesg[GUEST] ?? []).some((l) => l.includes('timeout closing device'))).toBe(false);
  });

  it('remove frees the ring: grants revoked, none deferred once the backend unmapped', async () => {
    const { value } = await hostValue(async (ctl) => {
      await connect(ctl);
      const before = (await ctl.call(GUEST, 'grants')) as { free: number };
      await ctl.call(0, 'write', `${BE}/state`, '5');
      await ctl.call(0, 'settle', 50);
      await ctl.call(0, 'rm', FE);
      await ctl.call(0, 'settle', 1500);
      return { before, after: await ctl.call(GUEST, 'grants'), disks: await ctl.call(GUEST, 'disks') };
    });
    const after = value.after as { free: number; deferred: number };
    expect(after.deferred).toBe(0);
    expect(after.free).toBeGreaterThan(value.before.free);
    expect(value.disks).toEqual([]);
  });
});
