import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeHeader,
  encodeMessage,
  nulStrings,
  splitNulStrings,
  XENSTORE_PAYLOAD_MAX,
  XS_ERROR_NAMES,
  XsFrameParser,
  XsType,
} from '../../emulator/xenstored/xs-wire.js';

describe('xs_wire codec', () => {
  it('type numbers and error table follow xs_wire.h', () => {
    expect([
      XsType.CONTROL,
      XsType.WRITE,
      XsType.ERROR,
      XsType.RESET_WATCHES,
      XsType.DIRECTORY_PART,
      XsType.TYPE_COUNT,
    ]).toEqual([0, 11, 16, 21, 22, 27]);
    expect(XS_ERROR_NAMES[0]).toBe('EINVAL');
    expect(XS_ERROR_NAMES.indexOf('EAGAIN')).toBe(12);
    expect(XS_ERROR_NAMES.at(-1)).toBe('EPERM');
  });

  it('header is four little-endian u32', () => {
    const m = encodeMessage({ type: 2, reqId: 0x01020304, txId: 5, payload: nulStrings('/a') });
    expect([...m.subarray(0, 16)]).toEqual([2, 0, 0, 0, 4, 3, 2, 1, 5, 0, 0, 0, 3, 0, 0, 0]);
    expect(decodeHeader(m)).toEqual({ type: 2, reqId: 0x01020304, txId: 5, len: 3 });
    expect(() =>
      encodeMessage({ type: 2, reqId: 0, txId: 0, payload: new Uint8Array(XENSTORE_PAYLOAD_MAX + 1) }),
    ).toThrow(/4097/);
  });

  it('splitNulStrings counts only NUL-terminated strings', () => {
    expect(splitNulStrings(new TextEncoder().encode('a\0bc\0tail'))).toEqual({
      strings: ['a', 'bc'],
      end: 5,
    });
  });

  it('the frame parser yields the same messages for any chunking (fast-check)', () => {
    const msg = fc.record({
      type: fc.integer({ min: 0, max: 30 }),
      reqId: fc.nat(),
      txId: fc.nat(),
      payload: fc.uint8Array({ maxLength: 300 }),
    });
    fc.assert(
      fc.property(
        fc.array(msg, { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1 }),
        (msgs, cuts) => {
          const stream = Buffer.concat(msgs.map((m) => encodeMessage(m)));
          const p = new XsFrameParser();
          const got = [];
          let off = 0;
          for (let i = 0; off < stream.length; i++) {
            const n = cuts[i % cuts.length];
            got.push(...p.push(new Uint8Array(stream.subarray(off, off + n))));
            off += n;
          }
          expect(
            got.map((r) => (r.kind === 'message' ? { ...r.message, payload: [...r.message.payload] } : r)),
          ).toEqual(msgs.map((m) => ({ ...m, payload: [...m.payload] })));
          expect(p.pendingBytes).toBe(0);
        },
      ),
    );
  });

  it('an oversize header is reported and the parser refuses more input', () => {
    const p = new XsFrameParser();
    const h = new Uint8Array(16);
    new DataView(h.buffer).setUint32(12, 4097, true);
    expect(p.push(h)).toEqual([{ kind: 'oversize', header: { type: 0, reqId: 0, txId: 0, len: 4097 } }]);
    expect(() => p.push(new Uint8Array(1))).toThrow(/out of sync/);
  });
});
