import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  concatBytes,
  decodeHeader,
  encodeHeader,
  encodeMessage,
  encodeWatchEvent,
  errorNameOf,
  isXsErrorName,
  latin1Bytes,
  latin1Range,
  latin1RangeByCharCodes,
  latin1String,
  nulStrings,
  splitNulStrings,
  splitReplyStrings,
  utf8Bytes,
  utf8String,
  writePayload,
  XENSTORE_PAYLOAD_MAX,
  XS_ERRNO,
  XS_ERROR_NAMES,
  XS_HEADER_SIZE,
  XsFrameParser,
  type XsMessage,
  XsProtocolError,
  XsType,
  xsTypeName,
} from '../../drivers/xenbus/xs-wire.js';

const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

describe('xs_wire.h constants', () => {
  it.each([
    ['CONTROL', 0],
    ['DIRECTORY', 1],
    ['WRITE', 11],
    ['WATCH_EVENT', 15],
    ['ERROR', 16],
    ['SET_TARGET', 19],
    ['RESET_WATCHES', 21],
    ['DIRECTORY_PART', 22],
    ['SET_QUOTA', 26],
    ['TYPE_COUNT', 27],
    ['INVALID', 0xffff],
  ] as const)('XS_%s is %i', (name, value) => {
    expect(XsType[name]).toBe(value);
  });

  it.each([
    [2, 'READ'],
    [15, 'WATCH_EVENT'],
    [20, 'type 20'],
    [27, 'type 27'],
    [0xffff, 'INVALID'],
    [99, 'type 99'],
  ])('xsTypeName(%i) is %s', (type, name) => {
    expect(xsTypeName(type)).toBe(name);
  });

  it('the error table is xsd_errors[] in order, with public/errno.h numbers', () => {
    expect(XS_ERROR_NAMES[0]).toBe('EINVAL');
    expect(XS_ERROR_NAMES.indexOf('EAGAIN')).toBe(12);
    expect(XS_ERROR_NAMES.at(-1)).toBe('EPERM');
    expect(Object.keys(XS_ERRNO).sort()).toEqual([...XS_ERROR_NAMES].sort());
    expect([XS_ERRNO.EPERM, XS_ERRNO.ENOENT, XS_ERRNO.EINVAL, XS_ERRNO.E2BIG, XS_ERRNO.EISCONN]).toEqual([
      1, 2, 22, 7, 106,
    ]);
    expect(isXsErrorName('EAGAIN')).toBe(true);
    expect(isXsErrorName('EWHAT')).toBe(false);
  });
});

describe('header and message', () => {
  it('the header is four little-endian u32', () => {
    const m = encodeMessage({ type: 2, reqId: 0x01020304, txId: 5, payload: nulStrings('/a') });
    expect([...m.subarray(0, XS_HEADER_SIZE)]).toEqual([2, 0, 0, 0, 4, 3, 2, 1, 5, 0, 0, 0, 3, 0, 0, 0]);
    expect(decodeHeader(m)).toEqual({ type: 2, reqId: 0x01020304, txId: 5, len: 3 });
    expect([...m.subarray(XS_HEADER_SIZE)]).toEqual([0x2f, 0x61, 0]);
  });

  it('encodeHeader writes at an offset and decodeHeader reads from one', () => {
    const buf = new Uint8Array(20);
    encodeHeader({ type: XsType.WATCH_EVENT, reqId: 0xffffffff, txId: 0, len: 9 }, buf, 4);
    expect(decodeHeader(buf, 4)).toEqual({ type: 15, reqId: 0xffffffff, txId: 0, len: 9 });
  });

  it('encodeHeader refuses room for fewer than 16 bytes and leaves the buffer as it was', () => {
    const buf = new Uint8Array(20).fill(7);
    expect(() => encodeHeader({ type: 1, reqId: 2, txId: 3, len: 4 }, buf, 5)).toThrow(
      /needs 16 bytes, got 15/,
    );
    expect([...buf]).toEqual(new Array(20).fill(7));
  });

  it('decodeHeader refuses fewer than 16 bytes and says how many it got', () => {
    expect(() => decodeHeader(new Uint8Array(10))).toThrow(/needs 16 bytes, got 10/);
  });

  it('encodeMessage refuses a payload over 4096 bytes and names the type', () => {
    expect(() =>
      encodeMessage({
        type: XsType.WRITE,
        reqId: 1,
        txId: 0,
        payload: new Uint8Array(XENSTORE_PAYLOAD_MAX + 1),
      }),
    ).toThrow(/WRITE: payload of 4097 bytes exceeds XENSTORE_PAYLOAD_MAX/);
    expect(
      encodeMessage({ type: XsType.WRITE, reqId: 1, txId: 0, payload: new Uint8Array(XENSTORE_PAYLOAD_MAX) }),
    ).toHaveLength(XS_HEADER_SIZE + XENSTORE_PAYLOAD_MAX);
  });
});

describe('payload strings', () => {
  it.each([
    ['one path', nulStrings('/a'), '/a\0'],
    ['path and token', nulStrings('/a', 'tok'), '/a\0tok\0'],
    ['empty string', nulStrings(''), '\0'],
    ['nothing', nulStrings(), ''],
    ['raw bytes part', nulStrings('p', new Uint8Array([0xff])), 'p\0\xff\0'],
    ['WRITE, string value', writePayload('/a/b', 'hi'), '/a/b\0hi'],
    ['WRITE, empty value', writePayload('/a/b', ''), '/a/b\0'],
    ['WRITE, byte value', writePayload('k', new Uint8Array([0, 1])), 'k\0\0\x01'],
    ['concat', concatBytes(bytes('ab'), new Uint8Array(0), bytes('c')), 'abc'],
  ])('%s', (_name, got, expected) => {
    expect([...got]).toEqual([...bytes(expected)]);
  });

  it.each([
    ['', [], 0, []],
    ['a\0', ['a'], 2, ['a']],
    ['a\0bc\0tail', ['a', 'bc'], 5, ['a', 'bc', 'tail']],
    ['a\0\0b\0', ['a', '', 'b'], 5, ['a', '', 'b']],
    ['tail', [], 0, ['tail']],
  ])('%j: the daemon counts %j (end %i), the kernel reads %j', (payload, daemon, end, kernel) => {
    expect(splitNulStrings(bytes(payload))).toEqual({ strings: daemon, end });
    expect(splitReplyStrings(bytes(payload))).toEqual(kernel);
  });

  it('the kernel reads UTF-8, the daemon one char per byte', () => {
    const e = utf8Bytes('é');
    expect([...e]).toEqual([0xc3, 0xa9]);
    expect(utf8String(e)).toBe('é');
    expect(latin1String(e)).toBe('Ã©');
    expect(splitReplyStrings(nulStrings('é'))).toEqual(['é']);
    expect(splitNulStrings(nulStrings('é')).strings).toEqual(['Ã©']);
  });

  it('strings are UTF-8 on the wire whatever path the encoder takes (property)', () => {
    const enc = new TextEncoder();
    const ref = (parts: string[]) => {
      const chunks = parts.map((p) => enc.encode(p));
      return concatBytes(...chunks.flatMap((c) => [c, new Uint8Array(1)]));
    };
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ maxLength: 400 }))),
        (parts) => {
          expect([...nulStrings(...parts)]).toEqual([...ref(parts)]);
          for (const p of parts) expect([...utf8Bytes(p)]).toEqual([...enc.encode(p)]);
          if (parts.length > 0)
            expect([...writePayload(parts[0]!, parts.at(-1)!)]).toEqual([
              ...concatBytes(enc.encode(parts[0]!), new Uint8Array(1), enc.encode(parts.at(-1)!)),
            ]);
        },
      ),
    );
  });

  it('encodeWatchEvent is the WATCH_EVENT message of the byte strings, or nothing above 4096 bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2100 }), fc.uint8Array({ maxLength: 2100 }), (p, t) => {
        const path = latin1String(p);
        const token = latin1String(t);
        const payload = nulStrings(p, t);
        const got = encodeWatchEvent(path, token);
        if (payload.length > XENSTORE_PAYLOAD_MAX) expect(got).toBeUndefined();
        else
          expect([...got!]).toEqual([
            ...encodeMessage({ type: XsType.WATCH_EVENT, reqId: 0, txId: 0, payload }),
          ]);
      }),
    );
    expect(() => encodeWatchEvent('/a', 'tok\u0100')).toThrow(/char 3 of the string is U\+0100/);
  });

  it('latin1String reads any bytes one char per byte, and latin1Bytes gives them back (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), (b) => {
        const s = latin1String(b);
        expect(s.length).toBe(b.length);
        for (let i = 0; i < b.length; i++) expect(s.charCodeAt(i)).toBe(b[i]);
        expect(latin1RangeByCharCodes(b, 0, b.length)).toBe(s);
        const mid = b.length >> 1;
        expect(latin1Range(b, 1, mid)).toBe(s.slice(1, mid));
        expect(latin1RangeByCharCodes(b, 1, mid)).toBe(s.slice(1, mid));
        expect([...latin1Bytes(s)]).toEqual([...b]);
      }),
    );
  });

  it.each([
    ['ENOENT\0', 'ENOENT'],
    ['EAGAIN', 'EAGAIN'],
    ['', ''],
    ['EWHAT\0', 'EWHAT'],
  ])('errorNameOf(%j) is %j', (payload, name) => {
    expect(errorNameOf(bytes(payload))).toBe(name);
  });
});

describe('XsFrameParser', () => {
  const arbMessage = fc.record({
    type: fc.integer({ min: 0, max: 30 }),
    reqId: fc.nat(),
    txId: fc.nat(),
    payload: fc.uint8Array({ maxLength: 300 }),
  });

  it('yields the same messages for any chunking of the stream (property)', () => {
    fc.assert(
      fc.property(
        fc.array(arbMessage, { maxLength: 8 }),
        // Small cuts split headers; large ones hand whole messages (and several) to the fast path.
        fc.array(fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 300, max: 2000 })), {
          minLength: 1,
        }),
        (msgs, cuts) => {
          const stream = concatBytes(...msgs.map((m) => encodeMessage(m)));
          const p = new XsFrameParser();
          const got: XsMessage[] = [];
          let off = 0;
          for (let i = 0; off < stream.length; i++) {
            const n = cuts[i % cuts.length]!;
            got.push(...p.push(stream.subarray(off, off + n)));
            off += n;
          }
          expect(got.map((m) => ({ ...m, payload: [...m.payload] }))).toEqual(
            msgs.map((m) => ({ ...m, payload: [...m.payload] })),
          );
          expect(p.pendingBytes).toBe(0);
        },
      ),
    );
  });

  it('a message body is a copy: reusing the input buffer does not change it', () => {
    const buf = encodeMessage({ type: XsType.READ, reqId: 1, txId: 0, payload: bytes('/a\0') });
    const [m] = new XsFrameParser().push(buf);
    buf.fill(0x55);
    expect([...m!.payload]).toEqual([...bytes('/a\0')]);
  });

  it('an oversize header after whole messages in the same chunk throws and refuses more input', () => {
    const ok = encodeMessage({ type: XsType.READ, reqId: 1, txId: 0, payload: bytes('/a\0') });
    const bad = encodeHeader({ type: XsType.WRITE, reqId: 9, txId: 0, len: 4097 });
    const p = new XsFrameParser();
    expect(() => p.push(concatBytes(ok, bad))).toThrow(/WRITE req_id 9: len 4097 exceeds/);
    expect(p.isBroken).toBe(true);
    expect(() => p.push(ok)).toThrow(/out of sync/);
  });

  it('splits a stream into messages and holds a partial one', () => {
    const a = encodeMessage({ type: XsType.WRITE, reqId: 7, txId: 3, payload: new Uint8Array([1, 2, 3]) });
    const b = encodeMessage({ type: XsType.WATCH_EVENT, reqId: 0, txId: 0, payload: nulStrings('a', 'b') });
    const all = concatBytes(a, b);
    const p = new XsFrameParser();
    expect(p.push(all.subarray(0, 10))).toEqual([]);
    expect(p.pendingBytes).toBe(10);
    const got = p.push(all.subarray(10, a.length + 5));
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ type: XsType.WRITE, reqId: 7, txId: 3 });
    expect([...got[0]!.payload]).toEqual([1, 2, 3]);
    expect(p.pendingBytes).toBe(5);
    const rest = p.push(all.subarray(a.length + 5));
    expect(rest).toHaveLength(1);
    expect(rest[0]).toMatchObject({ type: XsType.WATCH_EVENT, reqId: 0 });
    expect(splitReplyStrings(rest[0]!.payload)).toEqual(['a', 'b']);
    expect(p.pendingBytes).toBe(0);
  });

  it('an empty payload completes with its header', () => {
    const p = new XsFrameParser();
    const got = p.push(
      encodeMessage({ type: XsType.TRANSACTION_END, reqId: 4, txId: 9, payload: new Uint8Array(0) }),
    );
    expect(got).toEqual([{ type: XsType.TRANSACTION_END, reqId: 4, txId: 9, payload: new Uint8Array(0) }]);
  });

  it('a header announcing more than 4096 bytes throws naming it, and the parser refuses more input', () => {
    const h = encodeMessage({ type: XsType.READ, reqId: 5, txId: 0, payload: new Uint8Array(0) });
    new DataView(h.buffer).setUint32(12, 4097, true);
    const p = new XsFrameParser();
    let err: unknown;
    try {
      p.push(h);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(XsProtocolError);
    expect((err as XsProtocolError).header).toEqual({ type: XsType.READ, reqId: 5, txId: 0, len: 4097 });
    expect((err as Error).message).toMatch(/READ req_id 5: len 4097 exceeds XENSTORE_PAYLOAD_MAX \(4096\)/);
    expect(p.isBroken).toBe(true);
    expect(() => p.push(new Uint8Array(1))).toThrow(/out of sync/);
  });

  it('a header announcing exactly 4096 bytes is accepted', () => {
    const m = encodeMessage({ type: XsType.WRITE, reqId: 1, txId: 0, payload: new Uint8Array(4096).fill(7) });
    const p = new XsFrameParser();
    expect(p.push(m.subarray(0, 100))).toEqual([]);
    const got = p.push(m.subarray(100));
    expect(got).toHaveLength(1);
    expect(got[0]!.payload.length).toBe(4096);
    expect(p.isBroken).toBe(false);
  });
});
