// What blkback tells the trace about each request and its ring: the sector count of a request from its
// first event on, and ring snapshots that follow the requests through consumption and response.
import { describe, expect, it } from 'vitest';
import type { Controller, TraceEvent } from '../../emulator/runtime/engine.js';
import { ringSampleOf, ringwatchLines } from '../../emulator/trace/ringwatch.js';
import { BE, hostValue } from './harness.js';

const full = { first: 0, last: 7 };

async function connected(ctl: Controller) {
  await ctl.call(0, 'start');
  await ctl.call(0, 'addVbd', 1, 51712);
  await ctl.call(0, 'hotplug', 1, 51712, 0);
  await ctl.call(1, 'connect', {});
}

const blkReqs = (trace: TraceEvent[]) =>
  trace
    .filter((e) => e.comp === 'blkback' && e.kind === 'blk-req')
    .map((e) => `${e.fields!.phase} id=${e.fields!.id} ${e.fields!.op} nr_sectors=${e.fields!.nr_sectors}`);

describe('blkback trace events', () => {
  it('blk-req start carries the sectors asked for, direct or indirect; a request refused before they are known says 0', async () => {
    const r = await hostValue(async (ctl) => {
      await connected(ctl);
      await ctl.call(1, 'io', [
        { op: 1, id: '1', sector: 0, segs: [full, { first: 0, last: 3 }] },
        { op: 0, id: '2', sector: 16, indirect: true, segs: [full, full, { first: 2, last: 5 }] },
        { op: 0, id: '3', segs: [{ first: 0, last: 8 }] },
        { op: 0, id: '4', indirect: true, segs: [full, { first: 0, last: 9 }] },
        // Valid segments but an ungranted data page: counted at start, nothing transferred at end.
        { op: 0, id: '5', indirect: true, segs: [{ gref: 4000, first: 0, last: 7 }] },
      ]);
      return null;
    });
    const lines = blkReqs(r.trace);
    for (const [id, op, start, end] of [
      ['1', 'write', 12, 12],
      ['2', 'read', 20, 20],
      ['3', 'read', 0, 0],
      ['4', 'read', 0, 0],
      ['5', 'read', 8, 0],
    ] as const) {
      expect(lines, id).toContain(`start id=${id} ${op} nr_sectors=${start}`);
      expect(
        lines.find((l) => l.startsWith(`end id=${id} `)),
        id,
      ).toBe(`end id=${id} ${op} nr_sectors=${end}`);
    }
    // Every request has exactly one start, and it comes before its end.
    for (const id of ['1', '2', '3', '4', '5']) {
      const starts = lines.flatMap((l, i) => (l.startsWith(`start id=${id} `) ? [i] : []));
      const ends = lines.flatMap((l, i) => (l.startsWith(`end id=${id} `) ? [i] : []));
      expect({ id, starts: starts.length, ends: ends.length }).toEqual({ id, starts: 1, ends: 1 });
      expect(starts[0]!).toBeLessThan(ends[0]!);
    }
  });

  it('ring snapshots follow consumption and responses; the last, at disconnect, shows a drained ring IDLE', async () => {
    const r = await hostValue(async (ctl) => {
      await connected(ctl);
      await ctl.call(0, 'setLatency', 0, 5);
      const io = await ctl.call(1, 'io', [
        { op: 1, segs: [full], fill: 3 },
        { op: 0, sector: 8, segs: [full] },
      ]);
      const afterIo = await ctl.call(0, 'now');
      await ctl.call(0, 'settle', 1); // the disconnect at a later instant than the last response
      await ctl.call(1, 'setState', 51712, 5);
      await ctl.call(1, 'setState', 51712, 6);
      await ctl.call(0, 'waitValue', `${BE(1)}/state`, '6');
      return { io, afterIo };
    });
    const { io, afterIo } = r.value as { io: { ok: boolean }; afterIo: number };
    expect(io.ok).toBe(true);
    const samples = r.trace.flatMap((e) => {
      const s = ringSampleOf(e);
      return s === undefined ? [] : [s];
    });
    // Consumed: a snapshot with both requests taken and none answered yet.
    expect(samples.some((s) => s.reqProd === 2 && s.reqCons === 2 && s.rspProd === 0)).toBe(true);
    // Each response pushed shows up in a snapshot of its own.
    expect(samples.filter((s) => s.rspProd === 1 && s.rspProdPvt === 1)).not.toHaveLength(0);
    const lastOfIo = samples.filter((s) => s.t <= afterIo).at(-1)!;
    expect(lastOfIo).toMatchObject({ reqProd: 2, reqCons: 2, rspProd: 2, rspProdPvt: 2 });
    // The disconnect's snapshot sees rsp_event re-armed past both responses by the frontend.
    const last = samples.at(-1)!;
    expect(last.t).toBeGreaterThan(afterIo);
    expect(last).toMatchObject({ reqProd: 2, reqCons: 2, rspProd: 2, rspProdPvt: 2, rspEvent: 3 });
    const lines = ringwatchLines(r.trace);
    expect(lines.slice(-2)).toEqual([
      '  req prod 2 cons 2 event 3  IDLE (next push notifies)',
      '  rsp prod 2 pvt 2 event 3  IDLE (next push notifies)',
    ]);
    expect(lines.filter((l) => l.includes('STUCK'))).toEqual([]);
  });
});
