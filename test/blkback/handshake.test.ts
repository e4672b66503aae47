import { describe, expect, it } from 'vitest';
import { BE, hostValue } from './harness.js';

const b64 = (byte: number, n: number) => Buffer.from(new Uint8Array(n).fill(byte)).toString('base64');

describe('blkback handshake and phy data path', () => {
  it('probe -> InitWait; physical-device opens the disk; frontend Initialised -> Connected with the keys', async () => {
    const r = await hostValue(async (ctl) => {
      await ctl.call(0, 'start');
      await ctl.call(0, 'addVbd', 1, 51712);
      const initWait = await ctl.call(0, 'waitValue', `${BE(1)}/state`, '2');
      const probeKeys = {
        indirect: await ctl.call(0, 'read', `${BE(1)}/feature-max-indirect-segments`),
        order: await ctl.call(0, 'read', `${BE(1)}/max-ring-page-order`),
        queues: await ctl.call(0, 'read', `${BE(1)}/multi-queue-max-queues`),
      };
      const blocksBefore = await ctl.call(0, 'blocks');
      await ctl.call(0, 'hotplug', 1, 51712, 0);
      await ctl.call(0, 'settle', 5);
      const blocksAfter = await ctl.call(0, 'blocks');
      const conn = await ctl.call(1, 'connect', {});
      const keys: Record<string, unknown> = {};
      for (const k of [
        'feature-flush-cache',
        'feature-barrier',
        'feature-discard',
        'feature-persistent',
        'sectors',
        'info',
        'sector-size',
        'physical-sector-size',
      ])
        keys[k] = await ctl.call(0, 'read', `${BE(1)}/${k}`);
      return {
        initWait,
        probeKeys,
        blocksBefore,
        blocksAfter,
        conn,
        keys,
        snap: await ctl.call(0, 'snapshot'),
      };
    });
    const v = r.value!;
    expect(v.initWait).toBeGreaterThanOrEqual(0);
    expect(v.probeKeys).toEqual({ indirect: '256', order: '4', queues: '4' });
    expect((v.blocksBefore as Array<{ name: string; openers: string[] }>)[0]!.openers).toEqual([]);
    expect((v.blocksAfter as Array<{ name: string; openers: string[] }>)[0]!.openers).toEqual([
      'blkback vbd-1-51712',
    ]);
    expect(v.keys).toEqual({
      'feature-flush-cache': '1',
      'feature-barrier': '1',
      'feature-discard': '0',
      'feature-persistent': '1',
      sectors: '2048',
      info: '0',
      'sector-size': '512',
      'physical-sector-size': '512',
    });
    const snap = v.snap as Array<{ state: number; rings: Array<{ thread: string }> }>;
    expect(snap[0]!.state).toBe(4);
    expect(snap[0]!.rings[0]!.thread).toBe('blkback.1.xvda-0');
    const states = r.trace.filter((e) => e.kind === 'xenbus-state').map((e) => e.fields!.to);
    expect(states).toEqual(['InitWait', 'Connected']);
  });

  it('writes reach the disk image and reads return its bytes (direct and multi-page ring)', async () => {
    for (const order of [0, 2]) {
      const r = await hostValue(async (ctl) => {
        await ctl.call(0, 'start');
        await ctl.call(0, 'addVbd', 1, 51712);
        await ctl.call(0, 'hotplug', 1, 51712, 0);
        await ctl.call(1, 'connect', { order });
        const w = await ctl.call(1, 'io', [
          {
            op: 1,
            sector: 16,
            segs: [
              { first: 0, last: 7 },
              { first: 2, last: 3 },
            ],
            fill: 0x5a,
          },
        ]);
        const disk = await ctl.call(0, 'diskBytes', 0, 16 * 512, 10 * 512);
        await ctl.call(0, 'fillDisk', 0, 100 * 512, 1024, 0x33);
        const rd = await ctl.call(1, 'io', [{ op: 0, sector: 100, segs: [{ first: 6, last: 7 }] }]);
        return { w, disk, rd, inUse: await ctl.call(1, 'grantsInUse') };
      });
      const v = r.value!;
      expect((v.w as { responses: unknown[] }).responses).toEqual([{ id: '1', op: 1, status: 0 }]);
      expect(v.disk).toBe(b64(0x5a, 10 * 512));
      const rd = v.rd as { responses: unknown[]; data: Record<string, string[]> };
      expect(rd.responses).toEqual([{ id: '2', op: 0, status: 0 }]);
      expect(rd.data['2']).toEqual([b64(0x33, 1024)]);
      // Persistent grants are off (frontend did not ask): nothing stays mapped after the responses.
      expect(v.inUse).toBe(0);
      const kinds = r.trace
        .filter((e) => e.kind === 'blk-req')
        .map((e) => `${e.fields!.phase}:${e.fields!.op}`);
      expect(kinds).toEqual(['start:write', 'end:write', 'start:read', 'end:read']);
      expect(r.trace.some((e) => e.kind === 'ring')).toBe(true);
    }
  });
});
