import { describe, expect, test } from 'vitest';
import { type BlockDevice, SECTOR_SIZE } from '../../emulator/kernel/block-device.js';
import { namedHolder } from '../../emulator/kernel/kernel.js';
import { listReplyMessages, openMessage, requestMessage } from '../../emulator/tapdisk/message.js';
import {
  allocTap,
  freeTap,
  type Host,
  inHost,
  makeImage,
  rspError,
  runHost,
  spawnTapdisk,
  tapCtl,
} from './harness.js';

const BLKBACK = 'blkback vbd-1-51712';

/** allocate + spawn + attach + open, then blkback opens the tapdev (xen_vbd_create). */
async function attachedDisk(h: Host, path: string) {
  const minor = await allocTap(h.k);
  const td = spawnTapdisk(h.k);
  await h.env.sleep(1);
  expect(rspError(await tapCtl(h.k, td.pid, requestMessage('ATTACH', minor)))).toBe(0);
  expect(await tapCtl(h.k, td.pid, openMessage(minor, `aio:${path}`))).not.toBe('timeout');
  const bdev = h.k.blocks.lookup(h.drv.deviceMajor, minor)!;
  const blkback = namedHolder(BLKBACK);
  await h.k.blocks.open(bdev, blkback, { write: true });
  return { minor, td, bdev, blkback };
}

function endOf(h: Host, bdev: BlockDevice, op: 'read' | 'write', sector: number) {
  const result: { error?: number; at?: number } = {};
  h.k.blocks.submit(bdev, {
    op,
    sector,
    vecs: [new Uint8Array(SECTOR_SIZE)],
    end: (e) => {
      result.error = e;
      result.at = h.env.now();
    },
  });
  return result;
}

describe('DETACH while blkback still holds tapdevN open', () => {
  test('2010-08 + xen-4.1: tapdisk blocks in munmap (D), tap-ctl times out at 5 s, the minor leaks', async () => {
    const path = makeImage(1 << 20);
    const r = await runHost({ semantics: '2010-08', tapdisk: { variant: 'xen-4.1' } }, async (h) => {
      const { minor, td, bdev, blkback } = await attachedDisk(h, path);
      expect(rspError(await tapCtl(h.k, td.pid, requestMessage('CLOSE', minor)))).toBe(0);
      const t0 = h.env.now();
      const detach = await tapCtl(h.k, td.pid, requestMessage('DETACH', minor));
      const at = h.env.now() - t0;
      const ps = h.k.processes.ps().find((p) => p.pid === td.pid);
      const wait = td.blockedOn();
      const holders = wait?.holders?.().map((x) => x.label);
      // tap_ctl_destroy stops here; libxl then removes the backend and blkback lets go.
      await h.k.blocks.close(bdev, blkback);
      const status = await h.k.processes.waitExit(td);
      const afterExit = {
        socket: h.k.ns.exists(`/var/run/blktap-control/ctl${td.pid}`),
        disk: h.k.blocks.byName('tda') !== undefined,
        minors: h.drv.minors(),
      };
      const free = await freeTap(h.k, minor);
      return { detach, at, ps, wait: wait?.what, holders, status, afterExit, free, minors: h.drv.minors() };
    });
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.detach).toBe('timeout');
    expect(v.at).toBe(5000);
    expect(v.ps).toMatchObject({ name: 'tapdisk2', state: 'D', wchan: 'tapdev0 to have no openers' });
    expect(v.wait).toBe('tapdev0 to have no openers');
    expect(v.holders).toEqual([BLKBACK]);
    expect(v.status).toEqual({ code: 0, wstatus: 0 });
    expect(v.afterExit).toEqual({ socket: false, disk: false, minors: [0] });
    expect(v.free).toBe('ok');
    expect(v.minors).toEqual([]);
    const stall = r.stalls[0]!;
    expect(stall.brokenBy?.timer).toBe('tap-ctl select() 5 s');
    const links = stall.chain.map((l) => [l.waitsFor, l.heldBy]);
    expect(links).toContainEqual(['DETACH reply from tapdisk 101', 'dom-1/tapdisk2[101]']);
    expect(links).toContainEqual(['tapdev0 to have no openers', BLKBACK]);
    const replies = r.trace.filter((e) => e.comp === 'tapdisk' && e.kind.startsWith('reply'));
    expect(replies.at(-1)).toMatchObject({ kind: 'reply-failed', fields: { type: 'detach response' } });
  });

  test('2010-08 + xen-4.1: closing the tapdev lets tapdisk finish munmap, reply and exit', async () => {
    const path = makeImage(1 << 20);
    const v = await inHost({ semantics: '2010-08' }, async (h) => {
      const { minor, td, bdev, blkback } = await attachedDisk(h, path);
      await tapCtl(h.k, td.pid, requestMessage('CLOSE', minor));
      const closer = h.env.spawn('xenwatch', async () => {
        await h.env.sleep(1000);
        await h.k.blocks.close(bdev, blkback);
      });
      const t0 = h.env.now();
      const detach = await tapCtl(h.k, td.pid, requestMessage('DETACH', minor));
      const at = h.env.now() - t0;
      await h.k.processes.waitExit(td);
      void closer;
      return { detach: rspError(detach), at, free: await freeTap(h.k, minor) };
    });
    expect(v).toEqual({ detach: 0, at: 1000, free: 'ok' });
  });

  test('2010-06: DETACH does not block; the lingering tapdev fails I/O with EIO until its last close', async () => {
    const path = makeImage(1 << 20);
    const v = await inHost({ semantics: '2010-06' }, async (h) => {
      const { minor, td, bdev, blkback } = await attachedDisk(h, path);
      await tapCtl(h.k, td.pid, requestMessage('CLOSE', minor));
      const t0 = h.env.now();
      const detach = rspError(await tapCtl(h.k, td.pid, requestMessage('DETACH', minor)));
      const at = h.env.now() - t0;
      await h.k.processes.waitExit(td);
      const lingering = h.k.blocks.byName('tda') !== undefined;
      const io = endOf(h, bdev, 'read', 0);
      const free = await freeTap(h.k, minor);
      await h.k.blocks.close(bdev, blkback);
      await h.env.sleep(1);
      return {
        detach,
        at,
        lingering,
        io,
        free,
        gone: h.k.blocks.byName('tda') === undefined,
        minors: h.drv.minors(),
      };
    });
    expect(v.detach).toBe(0);
    expect(v.at).toBeLessThan(10);
    expect(v.lingering).toBe(true);
    expect(v.io.error).toBe(-5);
    expect(v.free).toBe('EBUSY');
    expect([v.gone, v.minors]).toEqual([true, []]);
  });

  test('2010-08 + xapi: REMOVE_DEVICE retried while EBUSY, I/O still answered, detach done at last close', async () => {
    const path = makeImage(1 << 20);
    const r = await runHost({ semantics: '2010-08', tapdisk: { variant: 'xapi' } }, async (h) => {
      const { minor, td, bdev, blkback } = await attachedDisk(h, path);
      await tapCtl(h.k, td.pid, requestMessage('CLOSE', minor));
      let io: { error?: number; at?: number } = {};
      h.env.spawn('blkback', async () => {
        await h.env.sleep(100);
        io = endOf(h, bdev, 'read', 0);
        await h.env.sleep(100);
        await h.k.blocks.close(bdev, blkback);
      });
      const t0 = h.env.now();
      const detach = rspError(await tapCtl(h.k, td.pid, requestMessage('DETACH', minor)));
      const at = h.env.now() - t0;
      await h.k.processes.waitExit(td);
      return {
        detach,
        at,
        io: { error: io.error, after: (io.at ?? Number.NaN) - t0 },
        free: await freeTap(h.k, minor),
      };
    });
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.detach).toBe(0);
    expect(v.at).toBe(200);
    // Answered by tapdisk (no image after CLOSE) while it looped on REMOVE_DEVICE.
    expect(v.io).toEqual({ error: -5, after: 100 });
    expect(v.free).toBe('ok');
    const kinds = r.trace.filter((e) => e.comp === 'tapdisk').map((e) => e.kind);
    expect(kinds).toContain('remove-device-busy');
    expect(kinds).toContain('request-error');
    expect(kinds).not.toContain('detach-abandoned');
  });

  test('reply-before-teardown: the reply comes at once, tapdisk still blocks, FREE_TAP gets EBUSY', async () => {
    const path = makeImage(1 << 20);
    const v = await inHost({ semantics: '2010-08', tapdisk: { replyBeforeTeardown: true } }, async (h) => {
      const { minor, td, bdev, blkback } = await attachedDisk(h, path);
      await tapCtl(h.k, td.pid, requestMessage('CLOSE', minor));
      const t0 = h.env.now();
      const detach = rspError(await tapCtl(h.k, td.pid, requestMessage('DETACH', minor)));
      const at = h.env.now() - t0;
      const free = await freeTap(h.k, minor);
      const state = h.k.processes.ps().find((p) => p.pid === td.pid)?.state;
      await h.k.blocks.close(bdev, blkback);
      await h.k.processes.waitExit(td);
      return { detach, at, free, state, freeLater: await freeTap(h.k, minor) };
    });
    expect(v).toEqual({ detach: 0, at: 0, free: 'EBUSY', state: 'D', freeLater: 'ok' });
  });
});

describe('control protocol', () => {
  test('CLOSE with requests pending gets EAGAIN; LIST reports minor, state and path', async () => {
    const path = makeImage(1 << 20);
    const v = await inHost({ semantics: '2010-08', tapdisk: { latencyMs: 1000 } }, async (h) => {
      const { minor, td, bdev } = await attachedDisk(h, path);
      const io = endOf(h, bdev, 'read', 3);
      await h.env.sleep(10);
      const close = rspError(await tapCtl(h.k, td.pid, requestMessage('CLOSE', minor)));
      const list = await tapCtl(h.k, td.pid, requestMessage('LIST', 0xffff));
      await h.env.sleep(2000);
      const closeLater = rspError(await tapCtl(h.k, td.pid, requestMessage('CLOSE', minor)));
      const listClosed = await tapCtl(h.k, td.pid, requestMessage('LIST', 0xffff));
      const pid = await tapCtl(h.k, td.pid, requestMessage('PID', 0));
      return { close, list, io, closeLater, listClosed, pid, tdPid: td.pid };
    });
    expect(v.close).toBe(11);
    expect(v.list).toEqual(listReplyMessages(0xffff, [{ minor: 0, state: 0, path: `aio:${path}` }]));
    expect(v.io.error).toBe(0);
    expect(v.closeLater).toBe(0);
    expect(v.listClosed).toEqual(listReplyMessages(0xffff, [{ minor: 0, state: 2, path: '' }]));
    expect(v.pid).toEqual([{ type: 4, cookie: 0, body: { kind: 'pid', pid: v.tdPid } }]);
  });

  // Xen 4.1's tapdisk detaches an open image anyway (test/integration/tap-stack.test.ts); xapi refuses.
  test('xapi tapdisk: DETACH of an open image is EBUSY; it exits after its last VBD is detached and unlinks its socket', async () => {
    const path = makeImage(1 << 20);
    const v = await inHost({ semantics: '2010-08', tapdisk: { variant: 'xapi' } }, async (h) => {
      const minor = await allocTap(h.k);
      const td = spawnTapdisk(h.k);
      await h.env.sleep(1);
      const sock = `/var/run/blktap-control/ctl${td.pid}`;
      const before = h.k.ns.exists(sock);
      await tapCtl(h.k, td.pid, requestMessage('ATTACH', minor));
      await tapCtl(h.k, td.pid, openMessage(minor, `aio:${path}`));
      const detachOpen = rspError(await tapCtl(h.k, td.pid, requestMessage('DETACH', minor)));
      await tapCtl(h.k, td.pid, requestMessage('CLOSE', minor));
      const detach = rspError(await tapCtl(h.k, td.pid, requestMessage('DETACH', minor)));
      const status = await h.k.processes.waitExit(td);
      const after = await tapCtl(h.k, td.pid, requestMessage('PID', 0));
      return {
        before,
        detachOpen,
        detach,
        status,
        exists: h.k.ns.exists(sock),
        after,
        free: await freeTap(h.k, minor),
      };
    });
    expect(v).toEqual({
      before: true,
      detachOpen: 16,
      detach: 0,
      status: { code: 0, wstatus: 0 },
      exists: false,
      after: 'ENOENT',
      free: 'ok',
    });
  });
});
