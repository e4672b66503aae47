import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BODY_OF_TYPE,
  decodeTapdiskMessage,
  encodeTapdiskMessage,
  listReplyMessages,
  openMessage,
  requestMessage,
  responseMessage,
  TAPDISK_COOKIE_NONE,
  TAPDISK_MESSAGE_SIZE,
  type TapdiskMessage,
  type TapdiskMessageBody,
  TapdiskMessageType,
  type TapdiskMessageTypeName,
  TdVbdState,
  tapdiskMessageName,
  tapdiskValidateRequest,
} from '../../emulator/tapdisk/message.js';

describe('message type enum', () => {
  it.each([
    ['ERROR', 1],
    ['PID', 3],
    ['ATTACH', 5],
    ['ATTACH_RSP', 6],
    ['OPEN', 7],
    ['OPEN_RSP', 8],
    ['PAUSE', 9],
    ['RESUME', 11],
    ['CLOSE', 13],
    ['CLOSE_RSP', 14],
    ['DETACH', 15],
    ['DETACH_RSP', 16],
    ['LIST', 19],
    ['LIST_RSP', 20],
    ['FORCE_SHUTDOWN', 21],
    ['EXIT', 22],
  ] as const)('%s = %i', (name, value) => {
    expect(TapdiskMessageType[name]).toBe(value);
  });

  it.each([
    [3, 'pid'],
    [8, 'open response'],
    [21, 'force shutdown'],
    [18, 'list minors response'],
    [2, 'unknown'],
    [99, 'unknown'],
  ])('name of %i is %s', (id, name) => {
    expect(tapdiskMessageName(id)).toBe(name);
  });

  it('has the VBD state flags of tapdisk-vbd.h', () => {
    expect(TdVbdState).toMatchObject({
      DEAD: 0x1,
      CLOSED: 0x2,
      QUIESCE_REQUESTED: 0x4,
      QUIESCED: 0x8,
      PAUSE_REQUESTED: 0x10,
      PAUSED: 0x20,
      SHUTDOWN_REQUESTED: 0x40,
    });
  });
});

describe('byte layout', () => {
  it('encodes OPEN like tap_ctl_open', () => {
    const bytes = encodeTapdiskMessage(openMessage(7, 'aio:/srv/disk.img'));
    expect(bytes.length).toBe(TAPDISK_MESSAGE_SIZE);
    const view = new DataView(bytes.buffer);
    expect(view.getUint16(0, true)).toBe(7);
    expect(view.getUint16(2, true)).toBe(7);
    expect(bytes[8]).toBe(0); // flags
    expect(bytes[9]).toBe(2); // storage = TAPDISK_STORAGE_TYPE_DEFAULT (EXT)
    expect(view.getUint32(12, true)).toBe(7); // devnum
    expect(new TextDecoder().decode(bytes.subarray(22, 22 + 17))).toBe('aio:/srv/disk.img');
    expect(bytes[22 + 17]).toBe(0);
  });

  it('encodes LIST_RSP fields at 8/12/16/20', () => {
    const [first] = listReplyMessages(TAPDISK_COOKIE_NONE, [{ minor: 3, state: 0x22, path: 'vhd:/a' }]);
    const bytes = encodeTapdiskMessage(first);
    const view = new DataView(bytes.buffer);
    expect(view.getUint16(2, true)).toBe(0xffff);
    expect(view.getInt32(8, true)).toBe(1);
    expect(view.getInt32(12, true)).toBe(3);
    expect(view.getInt32(16, true)).toBe(0x22);
    expect(bytes[20]).toBe('v'.charCodeAt(0));
  });

  it('encodes the response error at 8 and its message at 12', () => {
    const bytes = encodeTapdiskMessage(responseMessage('ERROR', 4, 2, 'no such type'));
    const view = new DataView(bytes.buffer);
    expect(view.getInt32(8, true)).toBe(2);
    expect(bytes[12]).toBe('n'.charCodeAt(0));
  });

  it('encodes PID_RSP pid at 8 and OPEN_RSP sectors/sector_size/info at 8/16/20', () => {
    const pid = encodeTapdiskMessage({ type: 4, cookie: 0, body: { kind: 'pid', pid: 201 } });
    expect(new DataView(pid.buffer).getInt32(8, true)).toBe(201);
    const img = encodeTapdiskMessage({
      type: 8,
      cookie: 1,
      body: { kind: 'image', sectors: 1n << 40n, sectorSize: 512, info: 0 },
    });
    const v = new DataView(img.buffer);
    expect(v.getBigUint64(8, true)).toBe(1n << 40n);
    expect(v.getUint32(16, true)).toBe(512);
  });
});

describe('list reply stream', () => {
  it('counts down and terminates with count 0, minor -1', () => {
    const msgs = listReplyMessages(0xffff, [
      { minor: 0, state: 0, path: 'aio:/a' },
      { minor: 5, state: 2, path: '' },
    ]);
    expect(msgs.map((m) => m.body)).toEqual([
      { kind: 'list', count: 2, minor: 0, state: 0, path: 'aio:/a' },
      { kind: 'list', count: 1, minor: 5, state: 2, path: '' },
      { kind: 'list', count: 0, minor: -1, state: 2, path: '' },
    ]);
  });
});

describe('malformed input', () => {
  const good = () => encodeTapdiskMessage(openMessage(1, 'aio:/x'));

  it.each([
    ['too short', () => good().subarray(0, 279), /size: 279 bytes, expected 280/],
    ['too long', () => new Uint8Array(281), /size: 281 bytes/],
    [
      'type 0',
      () => {
        const b = good();
        b[0] = 0;
        return b;
      },
      /type: 0 is not a tapdisk message type/,
    ],
    [
      'type 23',
      () => {
        const b = good();
        b[0] = 23;
        return b;
      },
      /type: 23/,
    ],
    [
      'unterminated params path',
      () => {
        const b = good();
        b.fill(0x41, 22, 278);
        return b;
      },
      /u\.params\.path: unterminated/,
    ],
    [
      'unterminated list path',
      () => {
        const b = encodeTapdiskMessage(listReplyMessages(1, [])[0]);
        b.fill(0x41, 20, 276);
        return b;
      },
      /u\.list\.path: unterminated/,
    ],
    [
      'minors count out of range',
      () => {
        const b = encodeTapdiskMessage({ type: 18, cookie: 0, body: { kind: 'minors', minors: [] } });
        new DataView(b.buffer).setInt32(8, 64, true);
        return b;
      },
      /u\.minors\.count: 64/,
    ],
  ])('rejects %s', (_label, make, error) => {
    expect(() => decodeTapdiskMessage(make())).toThrow(error);
  });

  it.each([
    ['cookie', { ...openMessage(1, 'a:b'), cookie: 70000 }, /cookie: 70000/],
    [
      'body mismatch',
      { type: 5, cookie: 1, body: { kind: 'list', count: 0, minor: 0, state: 0, path: '' } },
      /ATTACH carries a 'none' body/,
    ],
    ['long path', openMessage(1, `aio:${'x'.repeat(252)}`), /u\.params\.path: 256 bytes do not fit 256/],
    ['NUL in path', openMessage(1, 'aio:/a\0b'), /NUL/],
    ['flags over u8', openMessage(1, 'aio:/a', 0x100), /u\.params\.flags: 256/],
  ] as const)('refuses to encode %s', (_label, msg, error) => {
    expect(() => encodeTapdiskMessage(msg as TapdiskMessage)).toThrow(error);
  });

  it('mirrors tapdisk_control_validate_request', () => {
    expect(tapdiskValidateRequest(good())).toBe(0);
    const b = encodeTapdiskMessage(requestMessage('ATTACH', 3));
    b.fill(0x41, 22, 278);
    expect(tapdiskValidateRequest(b)).toBe(22);
    expect(tapdiskValidateRequest(new Uint8Array(3))).toBe(22);
  });
});

const text = (max: number) =>
  fc.string({ maxLength: max }).filter((s) => !s.includes('\0') && new TextEncoder().encode(s).length < max);
const s32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });

function bodyFor(kind: TapdiskMessageBody['kind']): fc.Arbitrary<TapdiskMessageBody> {
  switch (kind) {
    case 'none':
      return fc.constant({ kind });
    case 'pid':
      return s32.map((pid) => ({ kind, pid }));
    case 'image':
      return fc
        .tuple(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), u32, u32)
        .map(([sectors, sectorSize, info]) => ({ kind, sectors, sectorSize, info }));
    case 'params':
      return fc
        .tuple(
          fc.integer({ min: 0, max: 255 }),
          fc.integer({ min: 0, max: 255 }),
          u32,
          u32,
          fc.integer({ min: 0, max: 0xffff }),
          text(256),
        )
        .map(([flags, storage, devnum, domid, pathLen, path]) => ({
          kind,
          flags,
          storage,
          devnum,
          domid,
          pathLen,
          path,
        }));
    case 'string':
      return text(256).map((t) => ({ kind, text: t }));
    case 'response':
      return fc.tuple(s32, text(256)).map(([error, message]) => ({ kind, error, message }));
    case 'minors':
      return fc.array(s32, { maxLength: 63 }).map((minors) => ({ kind, minors }));
    case 'list':
      return fc
        .tuple(fc.integer({ min: 0, max: 0x7fffffff }), s32, s32, text(256))
        .map(([count, minor, state, path]) => ({ kind, count, minor, state, path }));
  }
}

describe('codec properties', () => {
  it('decode(encode(m)) = m for every type', () => {
    const msg = fc
      .constantFrom(...(Object.keys(TapdiskMessageType) as TapdiskMessageTypeName[]))
      .chain((name) =>
        fc
          .tuple(fc.integer({ min: 0, max: 0xffff }), bodyFor(BODY_OF_TYPE[name]))
          .map(([cookie, body]): TapdiskMessage => ({ type: TapdiskMessageType[name], cookie, body })),
      );
    fc.assert(
      fc.property(msg, (m) => {
        expect(decodeTapdiskMessage(encodeTapdiskMessage(m))).toEqual(m);
      }),
    );
  });

  it('decoding arbitrary bytes either throws a TapdiskMessageError or re-encodes to the same union member', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 280, maxLength: 280 }), (bytes) => {
        let m: TapdiskMessage;
        try {
          m = decodeTapdiskMessage(bytes);
        } catch (e) {
          expect((e as Error).name).toBe('TapdiskMessageError');
          return;
        }
        const again = decodeTapdiskMessage(encodeTapdiskMessage(m));
        expect(again).toEqual(m);
      }),
    );
  });
});
