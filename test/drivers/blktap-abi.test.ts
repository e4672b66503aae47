import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BLKTAP_REQUEST_SIZE,
  BLKTAP_RING_ENTRY_SIZE,
  BLKTAP_RING_MESSAGE_OFFSET,
  BLKTAP_RING_SIZE,
  BLKTAP2_PARAMS_SIZE,
  BlktapIoctl,
  blktapDataPageOffset,
  blktapRingEntryOffset,
  controlSocketPath,
  decodeBlktap2Params,
  encodeBlktap2Params,
  ioDevicePath,
  MAX_BLKTAP_DEVICE,
  readBlktapRequest,
  readBlktapResponse,
  ringDevicePath,
  sysfsDevicePath,
  writeBlktapRequest,
  writeBlktapResponse,
} from '../../drivers/blktap/abi.js';

describe('blktap2 paths', () => {
  it.each([
    [0, '/dev/xen/blktap-2/blktap0', '/dev/xen/blktap-2/tapdev0', '/sys/class/blktap2/blktap0'],
    [7, '/dev/xen/blktap-2/blktap7', '/dev/xen/blktap-2/tapdev7', '/sys/class/blktap2/blktap7'],
    [1023, '/dev/xen/blktap-2/blktap1023', '/dev/xen/blktap-2/tapdev1023', '/sys/class/blktap2/blktap1023'],
  ])('minor %i', (minor, ring, io, sysfs) => {
    expect(ringDevicePath(minor)).toBe(ring);
    expect(ioDevicePath(minor)).toBe(io);
    expect(sysfsDevicePath(minor)).toBe(sysfs);
  });

  it('names the control socket by tapdisk id', () => {
    expect(controlSocketPath(201)).toBe('/var/run/blktap-control/ctl201');
  });

  it.each([-1, 1.5, Number.NaN, 16384])('rejects minor %s', (minor) => {
    expect(() => ringDevicePath(minor)).toThrow(/minor/);
  });
});

describe('blktap2 constants', () => {
  it('has the header values', () => {
    expect(BlktapIoctl.ALLOC_TAP).toBe(200);
    expect(BlktapIoctl.FREE_TAP).toBe(201);
    expect(BlktapIoctl.CREATE_DEVICE).toBe(202);
    expect(BlktapIoctl.REMOVE_DEVICE).toBe(207);
    expect(BlktapIoctl.CREATE_DEVICE_V2).toBe(208);
    expect(MAX_BLKTAP_DEVICE).toBe(1024);
  });

  it('lays the ring out like the C macros', () => {
    expect(BLKTAP_REQUEST_SIZE).toBe(112);
    expect(BLKTAP_RING_ENTRY_SIZE).toBe(112);
    expect(BLKTAP_RING_SIZE).toBe(32);
    expect(BLKTAP_RING_MESSAGE_OFFSET).toBe(16);
    expect(blktapRingEntryOffset(0)).toBe(64);
    expect(blktapRingEntryOffset(33)).toBe(64 + 112);
    expect(blktapDataPageOffset(0, 0)).toBe(4096);
    expect(blktapDataPageOffset(1, 2)).toBe((1 + 11 + 2) * 4096);
    expect(() => blktapDataPageOffset(32, 0)).toThrow(/usr_idx/);
  });
});

describe('blktap ring entries', () => {
  it('places request fields at their offsets', () => {
    const view = new DataView(new ArrayBuffer(4096));
    writeBlktapRequest(view, 64, {
      operation: 1,
      id: 0x1122334455667788n,
      sectorNumber: 2048n,
      segments: [{ firstSect: 0, lastSect: 7 }],
    });
    expect(view.getUint8(64)).toBe(1);
    expect(view.getUint8(65)).toBe(1);
    expect(view.getBigUint64(72, true)).toBe(0x1122334455667788n);
    expect(view.getBigUint64(80, true)).toBe(2048n);
    expect(view.getUint8(88 + 4)).toBe(0);
    expect(view.getUint8(88 + 5)).toBe(7);
  });

  it.each([
    [{ operation: 2, nr: 1, first: 0, last: 7 }, /operation: 2/],
    [{ operation: 0, nr: 0, first: 0, last: 7 }, /nr_segments: 0/],
    [{ operation: 0, nr: 12, first: 0, last: 7 }, /nr_segments: 12/],
    [{ operation: 0, nr: 1, first: 5, last: 3 }, /seg\[0\]/],
    [{ operation: 0, nr: 1, first: 0, last: 8 }, /seg\[0\]/],
  ])('rejects a hostile request %o', (c, error) => {
    const view = new DataView(new ArrayBuffer(256));
    view.setUint8(0, c.operation);
    view.setUint8(1, c.nr);
    view.setUint8(28, c.first);
    view.setUint8(29, c.last);
    expect(() => readBlktapRequest(view, 0)).toThrow(error);
  });

  it('round-trips requests', () => {
    const seg = fc
      .integer({ min: 0, max: 7 })
      .chain((a) => fc.integer({ min: a, max: 7 }).map((b) => ({ firstSect: a, lastSect: b })));
    fc.assert(
      fc.property(
        fc.constantFrom(0, 1),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.array(seg, { minLength: 1, maxLength: 11 }),
        (operation, id, sectorNumber, segments) => {
          const view = new DataView(new ArrayBuffer(256));
          const req = { operation, id, sectorNumber, segments };
          writeBlktapRequest(view, 8, req);
          expect(readBlktapRequest(view, 8)).toEqual(req);
        },
      ),
    );
  });

  it('round-trips responses and rejects a status that does not fit', () => {
    const view = new DataView(new ArrayBuffer(32));
    writeBlktapResponse(view, 0, { id: 5n, operation: 0, status: -1 });
    expect(readBlktapResponse(view, 0)).toEqual({ id: 5n, operation: 0, status: -1 });
    expect(view.getInt16(10, true)).toBe(-1);
    expect(() => writeBlktapResponse(view, 0, { id: 5n, operation: 0, status: 40000 })).toThrow(/status/);
  });
});

describe('blktap2_params', () => {
  it('round-trips and sizes like the C struct', () => {
    const bytes = encodeBlktap2Params({ name: 'aio:/srv/a.img', capacity: 2048n, sectorSize: 512 });
    expect(bytes.length).toBe(BLKTAP2_PARAMS_SIZE);
    expect(decodeBlktap2Params(bytes)).toEqual({ name: 'aio:/srv/a.img', capacity: 2048n, sectorSize: 512 });
  });

  it('rejects a name that does not fit and a wrong size', () => {
    expect(() => encodeBlktap2Params({ name: 'x'.repeat(256), capacity: 1n, sectorSize: 512 })).toThrow(
      /name/,
    );
    expect(() => decodeBlktap2Params(new Uint8Array(10))).toThrow(/10 bytes/);
  });
});
