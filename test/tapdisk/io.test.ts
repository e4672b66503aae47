import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { type BlockDevice, SECTOR_SIZE } from '../../emulator/kernel/block-device.js';
import { KernelError } from '../../emulator/kernel/errno.js';
import { namedHolder } from '../../emulator/kernel/kernel.js';
import { openMessage, requestMessage, TapdiskMessageType } from '../../emulator/tapdisk/message.js';
import { allocTap, type Host, inHost, makeImage, rspError, spawnTapdisk, tapCtl } from './harness.js';

async function setup(h: Host, params: string) {
  const minor = await allocTap(h.k);
  const td = spawnTapdisk(h.k);
  await h.env.sleep(1);
  const attach = await tapCtl(h.k, td.pid, requestMessage('ATTACH', minor));
  const open = await tapCtl(h.k, td.pid, openMessage(minor, params));
  return { minor, td, attach, open };
}

async function ioError(
  h: Host,
  bdev: BlockDevice,
  op: 'read' | 'write' | 'flush',
  sector: number,
  data: Uint8Array,
) {
  try {
    await h.k.blocks.submitAndWait(bdev, op, sector, data);
    return 0;
  } catch (e) {
    if (e instanceof KernelError) return e.code;
    throw e;
  }
}

describe('I/O through tapdevN into tapdisk images', () => {
  test('aio: reads come from the file, acknowledged writes are in the file (64 KiB spans two ring requests)', async () => {
    const path = makeImage(1 << 20);
    const r = await inHost({ semantics: '2010-08' }, async (h) => {
      const { minor, td, attach, open } = await setup(h, `aio:${path}`);
      const bdev = h.k.blocks.lookup(h.drv.deviceMajor, minor)!;
      const blkback = namedHolder('blkback vbd-1-51712');
      await h.k.blocks.open(bdev, blkback, { write: true });
      const sector7 = new Uint8Array(SECTOR_SIZE);
      const readErr = await ioError(h, bdev, 'read', 7, sector7);
      const payload = new Uint8Array(64 * 1024).map((_, i) => (i * 7) & 0xff);
      const writeErr = await ioError(h, bdev, 'write', 100, payload);
      const flushErr = await ioError(h, bdev, 'flush', 0, new Uint8Array(0));
      const back = new Uint8Array(64 * 1024);
      const readBackErr = await ioError(h, bdev, 'read', 100, back);
      const beyond = await ioError(h, bdev, 'read', 2048, new Uint8Array(512));
      return {
        output: td.output,
        attach: rspError(attach),
        open,
        name: bdev.name,
        capacity: bdev.capacitySectors,
        readErr,
        sector7: new DataView(sector7.buffer).getUint32(0, true),
        writeErr,
        flushErr,
        readBackErr,
        same: Buffer.from(back).equals(Buffer.from(payload)),
        beyond,
        stats: h.drv.tap(minor)!.stats,
        payload,
      };
    });
    expect(r.output).toEqual(['/var/run/blktap-control/ctl101']);
    expect(r.attach).toBe(0);
    expect(r.open).toEqual([
      {
        type: TapdiskMessageType.OPEN_RSP,
        cookie: 0,
        body: { kind: 'image', sectors: 2048n, sectorSize: 512, info: 0 },
      },
    ]);
    expect([r.name, r.capacity]).toEqual(['tda', 2048]);
    expect([r.readErr, r.sector7, r.writeErr, r.flushErr, r.readBackErr, r.same]).toEqual([
      0,
      7,
      0,
      0,
      0,
      true,
    ]);
    expect(r.beyond).toBe('EIO');
    // 64 KiB = 16 pages: one request of 11 segments and one of 5.
    expect(r.stats.wrReq).toBe(2);
    const file = readFileSync(path);
    expect(Buffer.from(file.subarray(100 * 512, 100 * 512 + 65536)).equals(Buffer.from(r.payload))).toBe(
      true,
    );
  });

  test('ram: writes stay in memory, reads see them, the file is untouched', async () => {
    const path = makeImage(64 * 1024);
    const r = await inHost({ semantics: '2010-08' }, async (h) => {
      const { minor, open } = await setup(h, `ram:${path}`);
      const bdev = h.k.blocks.lookup(h.drv.deviceMajor, minor)!;
      const holder = namedHolder('blkback');
      await h.k.blocks.open(bdev, holder, { write: true });
      const data = new Uint8Array(4096).fill(0xab);
      await h.k.blocks.submitAndWait(bdev, 'write', 8, data);
      const back = new Uint8Array(4096);
      await h.k.blocks.submitAndWait(bdev, 'read', 8, back);
      return { open: rspError(open), back: [...new Set(back)] };
    });
    expect(r.back).toEqual([0xab]);
    expect(new DataView(readFileSync(path).buffer).getUint32(8 * 512, true)).toBe(8);
  });

  test.each([
    ['foo:/x', 2],
    ['vhd:/x', 38],
    ['aio:/nonexistent/disk.img', 2],
    ['noColon', 22],
  ])('OPEN %s fails with errno %i in an ERROR reply', async (params, err) => {
    const r = await inHost({ semantics: '2010-08' }, async (h) => {
      const { open } = await setup(h, params);
      return open;
    });
    expect(r).not.toBe('timeout');
    const m = (r as { type: number; body: { kind: string; error?: number } }[])[0]!;
    expect(m.type).toBe(TapdiskMessageType.ERROR);
    expect(m.body.error).toBe(err);
  });
});
