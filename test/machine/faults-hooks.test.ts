/**
 * The fault hooks' pure parts: the hypervisor's event-channel loss table (shared words any worker
 * reads) and the image faults tapdisk consults per request.
 */
import { describe, expect, test } from 'vitest';
import { ImageFaults } from '../../emulator/tapdisk/image-faults.js';
import { EvtchnLossTable } from '../../hypervisor/evtchn-loss.js';

describe('EvtchnLossTable', () => {
  test('a port-specific arming drops exactly count sends to that port only', () => {
    const t = new EvtchnLossTable();
    t.arm(1, 5, 2);
    expect([t.consume(1, 4), t.consume(2, 5), t.consume(1, 5), t.consume(1, 5), t.consume(1, 5)]).toEqual([
      false,
      false,
      true,
      true,
      false,
    ]);
    expect(t.pending(1)).toBe(0);
  });

  test('any-port arming takes the next sends to any port; arming again adds; attached views share it', () => {
    const t = new EvtchnLossTable();
    const other = new EvtchnLossTable(t.buffer);
    t.arm(0, undefined, 1);
    t.arm(0, undefined, 1);
    expect(other.pending(0, 9)).toBe(2);
    expect([other.consume(0, 9), t.consume(0, 3), t.consume(0, 3)]).toEqual([true, true, false]);
  });

  test.each([
    [-1, undefined, 1, 'evtchn loss: domid -1 is not a domain id'],
    [1, 0, 1, 'evtchn loss: port 0 is not an event-channel port (>= 1)'],
    [1, 2, 0, 'evtchn loss: count 0 is not >= 1'],
  ])('arm(%j, %j, %j) is refused', (domid, port, count, message) => {
    const t = new EvtchnLossTable();
    expect(() => t.arm(domid, port, count)).toThrow(message);
    expect(t.pending(Math.max(0, domid))).toBe(0);
  });

  test('a full table says so', () => {
    const t = new EvtchnLossTable();
    for (let p = 1; p <= 16; p++) t.arm(3, p, 1);
    expect(() => t.arm(3, 17, 1)).toThrow('evtchn loss: more than 16 armed faults');
  });
});

describe('ImageFaults', () => {
  test('failure after N requests, per image path (normalised), delay independent', () => {
    const f = new ImageFaults();
    f.setFailure('/w/disk.img', 'ENOSPC', 2);
    f.setDelay('/w/./disk.img', 30);
    expect([f.admit('/w/disk.img'), f.admit('/w/x/../disk.img'), f.admit('/w/disk.img')]).toEqual([
      undefined,
      undefined,
      'ENOSPC',
    ]);
    expect(f.admit('/w/other.img')).toBeUndefined();
    expect(f.delayFor('/w/disk.img')).toBe(30);
    f.clear('/w/disk.img');
    expect([f.admit('/w/disk.img'), f.delayFor('/w/disk.img')]).toEqual([undefined, 0]);
  });

  test.each([
    [() => new ImageFaults().setFailure('/a', 'EWHAT', 0), 'image fault /a: unknown errno "EWHAT"'],
    [() => new ImageFaults().setFailure('/a', 'EIO', -1), 'image fault /a: after -1 is not a count >= 0'],
    [() => new ImageFaults().setDelay('/a', Number.NaN), 'image fault /a: delay NaN is not a duration >= 0'],
  ])('bad input %#', (fn, message) => {
    expect(fn).toThrow(message);
  });
});
