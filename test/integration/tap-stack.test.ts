/**
 * The blktap2 stack for real, in the sim engine: tap-ctl commands run as processes of the dom0 kernel
 * model, the blktap2 driver (drivers/blktap) serves the control, ring and tapdev devices, and the
 * tapdisk2 that tap-ctl spawns (emulator/tapdisk) serves an aio image file. A named holder that keeps
 * tapdevN open stands in for blkback; nothing here knows which outcome a version switch should give.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { SECTOR_SIZE } from '../../emulator/kernel/block-device.js';
import { KernelError } from '../../emulator/kernel/errno.js';
import type { StallReport } from '../../emulator/runtime/engine.js';
import type { Host, HostOptions } from '../toolstack/tap-ctl-harness.js';
import { makeImage, onHost, tapdiskMessages } from '../toolstack/tap-ctl-harness.js';

const BLKBACK = 'blkback vbd-1-51712';

async function io(h: Host, minor: number, op: 'read' | 'write' | 'flush', sector: number, data: Uint8Array) {
  try {
    await h.k.blocks.submitAndWait(h.tapdev(minor), op, sector, data);
    return 0;
  } catch (e) {
    if (e instanceof KernelError) return e.code;
    throw e;
  }
}

describe('create, list, I/O, destroy', () => {
  test('rows on a tty and a pipe, I/O through tapdev0 lands in the aio file, destroy leaves nothing', async () => {
    const path = makeImage(1 << 20);
    const r = await onHost(async (h) => {
      const create = await h.tapCtl(['create', '-a', `aio:${path}`]);
      const tty = await h.tapCtl(['list'], { tty: true });
      const pipe = await h.tapCtl(['list']);
      const major = await h.tapCtl(['major']);
      const disk = h.tapdev(0);
      const blkback = await h.holdTapdev(0, BLKBACK);
      const sector9 = new Uint8Array(SECTOR_SIZE);
      const readErr = await io(h, 0, 'read', 9, sector9);
      // 48 KiB: more than the 11 segments of one blktap ring request, so it crosses two.
      const payload = new Uint8Array(48 * 1024).map((_, i) => (i * 13 + 5) & 0xff);
      const t0 = h.env.now();
      const writeErr = await io(h, 0, 'write', 256, payload);
      const writeTook = h.env.now() - t0;
      const flushErr = await io(h, 0, 'flush', 0, new Uint8Array(0));
      await blkback.release();
      const destroy = await h.tapCtl(['destroy', '-p', '101', '-m', '0']);
      const after = await h.tapCtl(['list'], { tty: true });
      return {
        create,
        tty: tty.out,
        pipe: pipe.out,
        major: major.out,
        deviceMajor: h.drv!.deviceMajor,
        disk: { name: disk.name, sectors: disk.capacitySectors },
        readErr,
        sector9: new DataView(sector9.buffer).getUint32(0, true),
        writeErr,
        writeTook,
        flushErr,
        file: readFileSync(path).subarray(256 * SECTOR_SIZE, 256 * SECTOR_SIZE + payload.length),
        payload,
        destroy,
        after: after.out,
        minors: h.drv!.minors(),
        ps: h.k.processes.ps(),
      };
    });
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.create).toMatchObject({ code: 0, out: ['/dev/xen/blktap-2/tapdev0'] });
    expect(v.tty).toEqual([`     101  0    0        aio ${path}`]);
    expect(v.pipe).toEqual([`pid=101 minor=0 state=0 args=aio:${path}`]);
    expect(v.major).toEqual([String(v.deviceMajor)]);
    expect(v.disk).toEqual({ name: 'tda', sectors: 2048 });
    expect(v.readErr).toBe(0);
    expect(v.sector9).toBe(9);
    expect(v.writeErr).toBe(0);
    // Two ring requests served in one pass of tapdisk's loop: one modelled latency (1 ms).
    expect(v.writeTook).toBe(1);
    expect(v.flushErr).toBe(0);
    expect(Buffer.from(v.file).equals(Buffer.from(v.payload))).toBe(true);
    expect(v.destroy).toMatchObject({ code: 0, out: [] });
    expect(v.after).toEqual([]);
    expect(v.minors).toEqual([]);
    expect(v.ps).toEqual([]);
    expect(r.stalls).toEqual([]);
  });
});

/** create → blkback opens tapdev<minor> → tap-ctl destroy; returns what each step showed. */
async function destroyWhileHeld(h: Host, path: string, minor: number, pid: number) {
  const create = await h.tapCtl(['create', '-a', `aio:${path}`]);
  const blkback = await h.holdTapdev(minor, `blkback vbd-1-${51712 + minor * 16}`);
  const destroy = await h.tapCtl(['destroy', '-p', String(pid), '-m', String(minor)]);
  const tapdisk = h.k.processes.ps().find((p) => p.pid === pid);
  return { create, destroy, tapdisk, blkback };
}

function frees(r: { trace: readonly { comp: string; kind: string; fields?: Record<string, unknown> }[] }) {
  return r.trace
    .filter((e) => e.comp === 'tap-ctl' && (e.kind === 'free' || e.kind === 'free-failed'))
    .map(
      (e) => `${e.kind} ${e.fields?.minor}${e.fields?.errno === undefined ? '' : ` errno ${e.fields.errno}`}`,
    );
}

function chainOf(s: StallReport) {
  return s.chain.map((l) => `${l.holder} -> ${l.waitsFor} -> ${l.heldBy ?? '-'}`);
}

describe('the 2012 teardown deadlock: tap-ctl destroy while blkback holds tapdevN open', () => {
  const xen41: HostOptions = { semantics: '2010-08', tapdisk: { variant: 'xen-4.1' } };

  test('2010-08 + xen-4.1: 5 s stall in select, tapdisk in D on "no openers", FREE never sent, minor=0 orphaned until free -m 0', async () => {
    const path = makeImage(1 << 20);
    const r = await onHost(async (h) => {
      const d = await destroyWhileHeld(h, path, 0, 101);
      const tty = await h.tapCtl(['list'], { tty: true });
      const pipe = await h.tapCtl(['list']);
      // libxl removes the backend later: blkback lets go, tapdisk's munmap returns, it answers and exits.
      await d.blkback.release();
      await h.k.processes.waitExit(h.k.processes.get(101)!);
      const orphan = await h.tapCtl(['list']);
      const free = await h.tapCtl(['free', '-m', '0']);
      const after = await h.tapCtl(['list']);
      return {
        ...d,
        tty: tty.out,
        pipe: pipe.out,
        orphan: orphan.out,
        free,
        after: after.out,
        minors: h.drv!.minors(),
      };
    }, xen41);
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.create.code).toBe(0);
    // CLOSE answered at once; DETACH's select gives up 5 s later: -EIO, exit 5, and destroy stops there.
    expect(v.destroy).toMatchObject({ code: 5, start: 0, end: 5000, out: [] });
    expect(v.tapdisk).toMatchObject({ name: 'tapdisk2', state: 'D', wchan: 'tapdev0 to have no openers' });
    // While tapdisk is stuck its PID request times out (2 s): the minor shows without a tapdisk.
    expect(v.tty).toEqual(['       -  0    -          - -']);
    expect(v.pipe).toEqual(['minor=0']);
    expect(v.orphan).toEqual(['minor=0']);
    expect(v.free).toMatchObject({ code: 0, out: [] });
    expect(v.after).toEqual([]);
    expect(v.minors).toEqual([]);
    expect(frees(r)).toEqual(['free 0']); // only the manual `tap-ctl free -m 0`

    const stall = r.stalls[0]!;
    expect(stall.at).toBe(0);
    expect(chainOf(stall)).toEqual([
      'host/tap-ctl[102]#4 -> tap-ctl select() 5 s: DETACH_RSP from tapdisk 101 -> dom-1/tapdisk2[101]',
      'dom-1/tapdisk2[101] -> tapdev0 to have no openers -> blkback vbd-1-51712',
    ]);
    expect(stall.cycle).toBe(false);
    expect(stall.brokenBy).toMatchObject({ timer: 'tap-ctl select() timeout', at: 5000 });
    expect(stall.end).toMatchObject({ by: 'timeout', at: 5000 });
    // tapdisk's late DETACH reply goes to a socket whose reader left.
    const late = r.trace.filter((e) => e.comp === 'tapdisk' && e.kind === 'reply-failed');
    expect(late.map((e) => [e.fields?.type, e.fields?.error])).toEqual([['detach response', 'EPIPE']]);
    expect(tapdiskMessages(r.trace).filter((m) => !/ (pid|list) /.test(m))).toEqual([
      '101 attach 0 @0',
      '101 open 0 @0',
      '101 close 0 @0',
      '101 detach 0 @0',
    ]);
  });

  test('three create/destroy cycles, each holder let go afterwards, leave minors 0, 1 and 2 orphaned', async () => {
    const path = makeImage(1 << 20);
    const r = await onHost(async (h) => {
      const codes: number[] = [];
      for (let i = 0; i < 3; i++) {
        const create = await h.tapCtl(['create', '-a', `aio:${path}`]);
        const minor = Number(create.out[0]!.replace('/dev/xen/blktap-2/tapdev', ''));
        const tapdisk = Math.max(
          ...h.k.processes
            .ps()
            .filter((p) => p.name === 'tapdisk2')
            .map((p) => p.pid),
        );
        const blkback = await h.holdTapdev(minor);
        codes.push((await h.tapCtl(['destroy', '-p', String(tapdisk), '-m', String(minor)])).code);
        await blkback.release();
        await h.k.processes.waitExit(h.k.processes.get(tapdisk)!);
      }
      const tty = await h.tapCtl(['list'], { tty: true });
      const pipe = await h.tapCtl(['list']);
      for (const m of [0, 1, 2]) await h.tapCtl(['free', '-m', String(m)]);
      return { codes, tty: tty.out, pipe: pipe.out, end: h.env.now(), minors: h.drv!.minors() };
    }, xen41);
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.codes).toEqual([5, 5, 5]);
    expect(v.tty).toEqual([
      '       -  0    -          - -',
      '       -  1    -          - -',
      '       -  2    -          - -',
    ]);
    expect(v.pipe).toEqual(['minor=0', 'minor=1', 'minor=2']);
    expect(v.end).toBe(15000);
    expect(v.minors).toEqual([]);
    expect(r.stalls.map((s) => [s.at, s.brokenBy?.at])).toEqual([
      [0, 5000],
      [5000, 10000],
      [10000, 15000],
    ]);
    expect(frees(r)).toEqual(['free 0', 'free 1', 'free 2']);
  });

  test('reply-before-teardown: DETACH answered at once, no 5 s stall; FREE_TAP EBUSY (ring still mapped), the minor leaks', async () => {
    const path = makeImage(1 << 20);
    const r = await onHost(
      async (h) => {
        const d = await destroyWhileHeld(h, path, 0, 101);
        const pipe = await h.tapCtl(['list']);
        await d.blkback.release();
        await h.k.processes.waitExit(h.k.processes.get(101)!);
        const orphan = await h.tapCtl(['list']);
        const free = await h.tapCtl(['free', '-m', '0']);
        return { ...d, pipe: pipe.out, orphan: orphan.out, free, minors: h.drv!.minors() };
      },
      { semantics: '2010-08', tapdisk: { variant: 'xen-4.1', replyBeforeTeardown: true } },
    );
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    // tap_ctl_free returns the raw ioctl result: -1, exit status 1.
    expect(v.destroy).toMatchObject({ code: 1, start: 0, end: 0, out: [] });
    expect(v.tapdisk).toMatchObject({ state: 'D', wchan: 'tapdev0 to have no openers' });
    expect(frees(r)).toEqual(['free-failed 0 errno 16', 'free 0']);
    expect(v.pipe).toEqual(['minor=0']);
    expect(v.orphan).toEqual(['minor=0']);
    expect(v.free.code).toBe(0);
    expect(v.minors).toEqual([]);
    expect(
      r.stalls.filter(
        (s) => s.brokenBy?.timer === 'tap-ctl select() timeout' && s.chain[0]!.waitsFor.includes('DETACH'),
      ),
    ).toEqual([]);
  });

  test('2010-06 blktap: ring release does not wait for the openers, no stall; the busy gendisk defers the free to its last close', async () => {
    const path = makeImage(1 << 20);
    const r = await onHost(
      async (h) => {
        const d = await destroyWhileHeld(h, path, 0, 101);
        const pipe = await h.tapCtl(['list']);
        const stillOpen = h.tapdev(0).bdOpeners;
        await d.blkback.release();
        const after = await h.tapCtl(['list']);
        return {
          ...d,
          pipe: pipe.out,
          stillOpen,
          after: after.out,
          minors: h.drv!.minors(),
          ps: h.k.processes.ps(),
        };
      },
      { semantics: '2010-06', tapdisk: { variant: 'xen-4.1' } },
    );
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(r.stalls).toEqual([]);
    expect(v.tapdisk).toBeUndefined(); // it detached and exited at once
    expect(v.destroy).toMatchObject({ end: 0 });
    expect(v.pipe).toEqual(['minor=0']);
    expect(v.stillOpen).toBe(1);
    expect(v.after).toEqual([]);
    expect(v.minors).toEqual([]);
    expect(v.ps).toEqual([]);
    expect(frees(r)).toEqual(['free-failed 0 errno 16']);
  });
});

describe('tapdisk replies as the C callers of libblktapctl see them (sign conventions)', () => {
  // tapdisk stores a positive errno in u.response.error; attach/close/pause/unpause/detach return it
  // as is, open negates an ERROR reply's, and an unexpected reply type is EINVAL. Exit = |ret| & 0xff.
  test.each([
    { tapdisk: 'xen-4.1', argv: ['attach', '-p', '101', '-m', '0'], code: 17, why: 'ATTACH_RSP EEXIST' },
    {
      tapdisk: 'xen-4.1',
      argv: ['open', '-p', '101', '-m', '0', '-a', 'aio:/x'],
      code: 114,
      why: 'ERROR EALREADY, -114',
    },
    { tapdisk: 'xen-4.1', argv: ['pause', '-p', '101', '-m', '5'], code: 22, why: 'PAUSE_RSP EINVAL' },
    {
      tapdisk: 'xen-4.1',
      argv: ['unpause', '-p', '101', '-m', '0'],
      code: 22,
      why: 'RESUME_RSP EINVAL: not paused',
    },
    { tapdisk: 'xen-4.1', argv: ['close', '-p', '101', '-m', '7'], code: 22, why: 'CLOSE_RSP EINVAL' },
    {
      tapdisk: 'xen-4.1',
      argv: ['close', '-f', '-p', '101', '-m', '0'],
      code: 22,
      why: 'no FORCE_SHUTDOWN case: ERROR, unexpected',
    },
    { tapdisk: 'xapi', argv: ['close', '-f', '-p', '101', '-m', '0'], code: 0, why: 'FORCE_SHUTDOWN closes' },
    {
      tapdisk: 'xen-4.1',
      argv: ['detach', '-p', '101', '-m', '0'],
      code: 0,
      why: 'detaches an open image anyway',
    },
    {
      tapdisk: 'xapi',
      argv: ['detach', '-p', '101', '-m', '0'],
      code: 16,
      why: 'DETACH_RSP EBUSY while open',
    },
  ] as const)('$tapdisk tapdisk, tap-ctl $argv: $code ($why)', async ({ tapdisk, argv, code }) => {
    const path = makeImage(1 << 20);
    const r = await onHost(
      async (h) => {
        await h.tapCtl(['create', '-a', `aio:${path}`]);
        return h.tapCtl(argv);
      },
      { tapdisk: { variant: tapdisk } },
    );
    expect(r.outcome).toBe('completed');
    expect(r.value).toMatchObject({ code, out: [] });
  });
});
