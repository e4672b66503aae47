/**
 * tapdisk control messages, as Xen's in-tree `tools/blktap2/include/tapdisk-message.h` defines them:
 * the type enum, the fixed-size `struct tapdisk_message` and its union, and a byte-exact codec.
 *
 * Layout (x86_64, the only dom0 ABI we model; 280 bytes):
 *
 *   @0   u16 type
 *   @2   u16 cookie            (the VBD minor; 0xffff for LIST)
 *   @4   4 bytes padding       (the union holds a uint64_t, so it is 8-aligned)
 *   @8   union u, 272 bytes:
 *        tapdisk_pid   s32 @8
 *        image         u64 sectors @8, u32 sector_size @16, u32 info @20
 *        params        u8 flags @8, u8 storage @9, u32 devnum @12, u32 domid @16, u16 path_len @20,
 *                      char path[256] @22
 *        string        char text[256] @8
 *        response      s32 error @8, char message[256] @12
 *        minors        s32 count @8, s32 list[63] @12
 *        list          s32 count @8, s32 minor @12, s32 state @16, char path[256] @20
 *
 * The xapi-project/blktap header diverged later (STATS inserted before FORCE_SHUTDOWN, 32-bit flags,
 * a `secondary` path); both ends of our socket use this codec, so we model the Xen one only.
 */

export const TAPDISK_MESSAGE_MAX_PATH_LENGTH = 256;
export const TAPDISK_MESSAGE_STRING_LENGTH = 256;
/** (256 / sizeof(int)) - 1 */
export const TAPDISK_MESSAGE_MAX_MINORS = 63;
export const TAPDISK_MESSAGE_SIZE = 280;
/** Offset of the union. */
const U = 8;
/** tap-ctl's LIST request uses cookie -1, i.e. 0xffff in the u16. */
export const TAPDISK_COOKIE_NONE = 0xffff;

/** enum tapdisk_message_id (Xen in-tree; ERROR = 1, then consecutive). */
export const TapdiskMessageType = {
  ERROR: 1,
  RUNTIME_ERROR: 2,
  PID: 3,
  PID_RSP: 4,
  ATTACH: 5,
  ATTACH_RSP: 6,
  OPEN: 7,
  OPEN_RSP: 8,
  PAUSE: 9,
  PAUSE_RSP: 10,
  RESUME: 11,
  RESUME_RSP: 12,
  CLOSE: 13,
  CLOSE_RSP: 14,
  DETACH: 15,
  DETACH_RSP: 16,
  LIST_MINORS: 17,
  LIST_MINORS_RSP: 18,
  LIST: 19,
  LIST_RSP: 20,
  FORCE_SHUTDOWN: 21,
  EXIT: 22,
} as const;

export type TapdiskMessageTypeName = keyof typeof TapdiskMessageType;
export type TapdiskMessageTypeId = (typeof TapdiskMessageType)[TapdiskMessageTypeName];

const TYPE_NAMES = new Map<number, TapdiskMessageTypeName>(
  Object.entries(TapdiskMessageType).map(([k, v]) => [v, k as TapdiskMessageTypeName]),
);

/** tapdisk_message_name(): the words tapdisk and tap-ctl log. RUNTIME_ERROR has no case there. */
export function tapdiskMessageName(type: number): string {
  switch (type) {
    case TapdiskMessageType.ERROR:
      return 'error';
    case TapdiskMessageType.PID:
      return 'pid';
    case TapdiskMessageType.PID_RSP:
      return 'pid response';
    case TapdiskMessageType.OPEN:
      return 'open';
    case TapdiskMessageType.OPEN_RSP:
      return 'open response';
    case TapdiskMessageType.PAUSE:
      return 'pause';
    case TapdiskMessageType.PAUSE_RSP:
      return 'pause response';
    case TapdiskMessageType.RESUME:
      return 'resume';
    case TapdiskMessageType.RESUME_RSP:
      return 'resume response';
    case TapdiskMessageType.CLOSE:
      return 'close';
    case TapdiskMessageType.FORCE_SHUTDOWN:
      return 'force shutdown';
    case TapdiskMessageType.CLOSE_RSP:
      return 'close response';
    case TapdiskMessageType.ATTACH:
      return 'attach';
    case TapdiskMessageType.ATTACH_RSP:
      return 'attach response';
    case TapdiskMessageType.DETACH:
      return 'detach';
    case TapdiskMessageType.DETACH_RSP:
      return 'detach response';
    case TapdiskMessageType.LIST_MINORS:
      return 'list minors';
    case TapdiskMessageType.LIST_MINORS_RSP:
      return 'list minors response';
    case TapdiskMessageType.LIST:
      return 'list';
    case TapdiskMessageType.LIST_RSP:
      return 'list response';
    case TapdiskMessageType.EXIT:
      return 'exit';
    default:
      return 'unknown';
  }
}

/** TAPDISK_MESSAGE_FLAG_* (params.flags, a uint8_t in Xen's header). */
export const TapdiskMessageFlag = {
  SHARED: 0x01,
  RDONLY: 0x02,
  ADD_CACHE: 0x04,
  VHD_INDEX: 0x08,
  LOG_DIRTY: 0x10,
} as const;

/** TAPDISK_STORAGE_TYPE_* (blktaplib.h); tap-ctl open sends DEFAULT. */
export const TapdiskStorageType = {
  NFS: 1,
  EXT: 2,
  LVM: 3,
  DEFAULT: 2,
} as const;

/**
 * VBD state flags, `td_vbd_t.state` (Xen's `tools/blktap2/drivers/tapdisk-vbd.h`). LIST reports them.
 * xapi's later header drops RETRY_NEEDED: LOG_DROPPED is 0x100 there and 0x200 is RESUME_FAILED.
 */
export const TdVbdState = {
  DEAD: 0x0001,
  CLOSED: 0x0002,
  QUIESCE_REQUESTED: 0x0004,
  QUIESCED: 0x0008,
  PAUSE_REQUESTED: 0x0010,
  PAUSED: 0x0020,
  SHUTDOWN_REQUESTED: 0x0040,
  LOCKING: 0x0080,
  RETRY_NEEDED: 0x0100,
  LOG_DROPPED: 0x0200,
} as const;

// --- Bodies -------------------------------------------------------------------------------------------

export interface NoBody {
  kind: 'none';
}
export interface PidBody {
  kind: 'pid';
  pid: number;
}
export interface ImageBody {
  kind: 'image';
  sectors: bigint;
  sectorSize: number;
  info: number;
}
export interface ParamsBody {
  kind: 'params';
  flags: number;
  storage: number;
  devnum: number;
  domid: number;
  /** tap-ctl never sets it; kept so a decoded message re-encodes to the same bytes. */
  pathLen: number;
  path: string;
}
export interface StringBody {
  kind: 'string';
  text: string;
}
export interface ResponseBody {
  kind: 'response';
  /** A positive errno (tapdisk stores -err), 0 for success. */
  error: number;
  message: string;
}
export interface MinorsBody {
  kind: 'minors';
  minors: number[];
}
export interface ListBody {
  kind: 'list';
  /** VBDs still to come including this one; 0 terminates the reply. */
  count: number;
  minor: number;
  state: number;
  /** `type:path` of the first image, or '' when the VBD has no image open. */
  path: string;
}

export type TapdiskMessageBody =
  | NoBody
  | PidBody
  | ImageBody
  | ParamsBody
  | StringBody
  | ResponseBody
  | MinorsBody
  | ListBody;

export interface TapdiskMessage {
  type: TapdiskMessageTypeId;
  /** u16; the VBD minor for per-VBD requests. */
  cookie: number;
  body: TapdiskMessageBody;
}

/** Which union member each message type carries, as tap-ctl and tapdisk-control.c fill them. */
export const BODY_OF_TYPE: Readonly<Record<TapdiskMessageTypeName, TapdiskMessageBody['kind']>> = {
  ERROR: 'response',
  RUNTIME_ERROR: 'response',
  PID: 'none',
  PID_RSP: 'pid',
  ATTACH: 'none',
  ATTACH_RSP: 'response',
  OPEN: 'params',
  OPEN_RSP: 'image',
  PAUSE: 'none',
  PAUSE_RSP: 'response',
  RESUME: 'params',
  RESUME_RSP: 'response',
  CLOSE: 'none',
  CLOSE_RSP: 'response',
  DETACH: 'none',
  DETACH_RSP: 'response',
  LIST_MINORS: 'none',
  LIST_MINORS_RSP: 'minors',
  LIST: 'none',
  LIST_RSP: 'list',
  FORCE_SHUTDOWN: 'none',
  EXIT: 'none',
};

export class TapdiskMessageError extends Error {
  constructor(
    readonly field: string,
    readonly value: unknown,
    detail: string,
  ) {
    super(`tapdisk message ${field}: ${detail}`);
    this.name = 'TapdiskMessageError';
  }
}

export function typeName(type: number): TapdiskMessageTypeName {
  const name = TYPE_NAMES.get(type);
  if (!name) {
    throw new TapdiskMessageError('type', type, `${type} is not a tapdisk message type (1..22)`);
  }
  return name;
}

// --- Encoding -----------------------------------------------------------------------------------------

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

function checkInt(field: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TapdiskMessageError(field, value, `${value} is not an integer in [${min}, ${max}]`);
  }
}

const S32 = [-0x80000000, 0x7fffffff] as const;
const U32 = [0, 0xffffffff] as const;

function putString(bytes: Uint8Array, at: number, size: number, field: string, value: string): void {
  const encoded = utf8.encode(value);
  if (encoded.includes(0)) {
    throw new TapdiskMessageError(field, value, 'contains a NUL byte');
  }
  if (encoded.length >= size) {
    throw new TapdiskMessageError(
      field,
      value,
      `${encoded.length} bytes do not fit ${size} with the terminating NUL`,
    );
  }
  bytes.set(encoded, at);
}

/** Encodes into a fresh 280-byte buffer; validates everything before writing. */
export function encodeTapdiskMessage(msg: TapdiskMessage): Uint8Array {
  const name = typeName(msg.type);
  checkInt('cookie', msg.cookie, 0, 0xffff);
  const expected = BODY_OF_TYPE[name];
  if (msg.body.kind !== expected) {
    throw new TapdiskMessageError(
      'body',
      msg.body.kind,
      `${name} carries a '${expected}' body, not '${msg.body.kind}'`,
    );
  }
  const bytes = new Uint8Array(TAPDISK_MESSAGE_SIZE);
  const view = new DataView(bytes.buffer);
  const b = msg.body;
  view.setUint16(0, msg.type, true);
  view.setUint16(2, msg.cookie, true);
  switch (b.kind) {
    case 'none':
      break;
    case 'pid':
      checkInt('u.tapdisk_pid', b.pid, ...S32);
      view.setInt32(U, b.pid, true);
      break;
    case 'image':
      if (b.sectors < 0n || b.sectors >= 1n << 64n) {
        throw new TapdiskMessageError('u.image.sectors', b.sectors, `${b.sectors} does not fit a uint64`);
      }
      checkInt('u.image.sector_size', b.sectorSize, ...U32);
      checkInt('u.image.info', b.info, ...U32);
      view.setBigUint64(U, b.sectors, true);
      view.setUint32(U + 8, b.sectorSize, true);
      view.setUint32(U + 12, b.info, true);
      break;
    case 'params':
      checkInt('u.params.flags', b.flags, 0, 0xff);
      checkInt('u.params.storage', b.storage, 0, 0xff);
      checkInt('u.params.devnum', b.devnum, ...U32);
      checkInt('u.params.domid', b.domid, ...U32);
      checkInt('u.params.path_len', b.pathLen, 0, 0xffff);
      putString(bytes, U + 14, TAPDISK_MESSAGE_MAX_PATH_LENGTH, 'u.params.path', b.path);
      view.setUint8(U, b.flags);
      view.setUint8(U + 1, b.storage);
      view.setUint32(U + 4, b.devnum, true);
      view.setUint32(U + 8, b.domid, true);
      view.setUint16(U + 12, b.pathLen, true);
      break;
    case 'string':
      putString(bytes, U, TAPDISK_MESSAGE_STRING_LENGTH, 'u.string.text', b.text);
      break;
    case 'response':
      checkInt('u.response.error', b.error, ...S32);
      putString(bytes, U + 4, TAPDISK_MESSAGE_STRING_LENGTH, 'u.response.message', b.message);
      view.setInt32(U, b.error, true);
      break;
    case 'minors':
      if (b.minors.length > TAPDISK_MESSAGE_MAX_MINORS) {
        throw new TapdiskMessageError(
          'u.minors.count',
          b.minors.length,
          `${b.minors.length} minors, at most ${TAPDISK_MESSAGE_MAX_MINORS} fit`,
        );
      }
      b.minors.forEach((m, i) => {
        checkInt(`u.minors.list[${i}]`, m, ...S32);
      });
      view.setInt32(U, b.minors.length, true);
      b.minors.forEach((m, i) => {
        view.setInt32(U + 4 + 4 * i, m, true);
      });
      break;
    case 'list':
      checkInt('u.list.count', b.count, 0, S32[1]);
      checkInt('u.list.minor', b.minor, ...S32);
      checkInt('u.list.state', b.state, ...S32);
      putString(bytes, U + 12, TAPDISK_MESSAGE_MAX_PATH_LENGTH, 'u.list.path', b.path);
      view.setInt32(U, b.count, true);
      view.setInt32(U + 4, b.minor, true);
      view.setInt32(U + 8, b.state, true);
      break;
  }
  return bytes;
}

// --- Decoding -----------------------------------------------------------------------------------------

function getString(bytes: Uint8Array, at: number, size: number, field: string): string {
  const window = bytes.subarray(at, at + size);
  const nul = window.indexOf(0);
  if (nul < 0) {
    throw new TapdiskMessageError(field, undefined, `unterminated: no NUL within ${size} bytes`);
  }
  try {
    return utf8Decoder.decode(window.subarray(0, nul));
  } catch {
    throw new TapdiskMessageError(field, undefined, 'is not valid UTF-8');
  }
}

/** Decodes exactly one message. Bytes outside the type's union member are ignored, as in C. */
export function decodeTapdiskMessage(bytes: Uint8Array): TapdiskMessage {
  if (bytes.length !== TAPDISK_MESSAGE_SIZE) {
    throw new TapdiskMessageError(
      'size',
      bytes.length,
      `${bytes.length} bytes, expected ${TAPDISK_MESSAGE_SIZE}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = view.getUint16(0, true);
  const name = typeName(type);
  const cookie = view.getUint16(2, true);
  let body: TapdiskMessageBody;
  switch (BODY_OF_TYPE[name]) {
    case 'none':
      body = { kind: 'none' };
      break;
    case 'pid':
      body = { kind: 'pid', pid: view.getInt32(U, true) };
      break;
    case 'image':
      body = {
        kind: 'image',
        sectors: view.getBigUint64(U, true),
        sectorSize: view.getUint32(U + 8, true),
        info: view.getUint32(U + 12, true),
      };
      break;
    case 'params':
      body = {
        kind: 'params',
        flags: view.getUint8(U),
        storage: view.getUint8(U + 1),
        devnum: view.getUint32(U + 4, true),
        domid: view.getUint32(U + 8, true),
        pathLen: view.getUint16(U + 12, true),
        path: getString(bytes, U + 14, TAPDISK_MESSAGE_MAX_PATH_LENGTH, 'u.params.path'),
      };
      break;
    case 'string':
      body = { kind: 'string', text: getString(bytes, U, TAPDISK_MESSAGE_STRING_LENGTH, 'u.string.text') };
      break;
    case 'response':
      body = {
        kind: 'response',
        error: view.getInt32(U, true),
        message: getString(bytes, U + 4, TAPDISK_MESSAGE_STRING_LENGTH, 'u.response.message'),
      };
      break;
    case 'minors': {
      const count = view.getInt32(U, true);
      if (count < 0 || count > TAPDISK_MESSAGE_MAX_MINORS) {
        throw new TapdiskMessageError(
          'u.minors.count',
          count,
          `${count} is not in [0, ${TAPDISK_MESSAGE_MAX_MINORS}]`,
        );
      }
      const minors: number[] = [];
      for (let i = 0; i < count; i++) minors.push(view.getInt32(U + 4 + 4 * i, true));
      body = { kind: 'minors', minors };
      break;
    }
    case 'list': {
      const count = view.getInt32(U, true);
      if (count < 0) {
        throw new TapdiskMessageError('u.list.count', count, `${count} is negative`);
      }
      body = {
        kind: 'list',
        count,
        minor: view.getInt32(U + 4, true),
        state: view.getInt32(U + 8, true),
        path: getString(bytes, U + 12, TAPDISK_MESSAGE_MAX_PATH_LENGTH, 'u.list.path'),
      };
      break;
    }
  }
  return { type: type as TapdiskMessageTypeId, cookie, body };
}

/**
 * tapdisk_control_validate_request(): tapdisk checks `u.params.path` of *every* request (whatever its
 * type) and answers ERROR/EINVAL when it is not NUL-terminated. Returns 0 or the positive errno.
 */
export function tapdiskValidateRequest(bytes: Uint8Array): number {
  if (bytes.length !== TAPDISK_MESSAGE_SIZE) return EINVAL;
  return bytes.subarray(U + 14, U + 14 + TAPDISK_MESSAGE_MAX_PATH_LENGTH).includes(0) ? 0 : EINVAL;
}

const EINVAL = 22;

// --- Convenience constructors (as tap-ctl fills requests) -----------------------------------------------

export function requestMessage(
  type: 'PID' | 'ATTACH' | 'PAUSE' | 'CLOSE' | 'FORCE_SHUTDOWN' | 'DETACH' | 'LIST' | 'LIST_MINORS' | 'EXIT',
  cookie: number,
): TapdiskMessage {
  return { type: TapdiskMessageType[type], cookie, body: { kind: 'none' } };
}

/** tap_ctl_open(): cookie = devnum = minor, storage DEFAULT, flags 0 in Xen's tap-ctl. */
export function openMessage(minor: number, params: string, flags = 0): TapdiskMessage {
  return {
    type: TapdiskMessageType.OPEN,
    cookie: minor,
    body: {
      kind: 'params',
      flags,
      storage: TapdiskStorageType.DEFAULT,
      devnum: minor,
      domid: 0,
      pathLen: 0,
      path: params,
    },
  };
}

/** tap_ctl_unpause(): RESUME with an optional new `type:path` ('' keeps the old one). */
export function resumeMessage(minor: number, params = ''): TapdiskMessage {
  return {
    type: TapdiskMessageType.RESUME,
    cookie: minor,
    body: { kind: 'params', flags: 0, storage: 0, devnum: 0, domid: 0, pathLen: 0, path: params },
  };
}

/** A `*_RSP` (or ERROR) carrying `response.error`: tapdisk stores the positive errno. */
export function responseMessage(
  type: 'ERROR' | 'ATTACH_RSP' | 'PAUSE_RSP' | 'RESUME_RSP' | 'CLOSE_RSP' | 'DETACH_RSP',
  cookie: number,
  error: number,
  message = '',
): TapdiskMessage {
  return { type: TapdiskMessageType[type], cookie, body: { kind: 'response', error, message } };
}

/**
 * The LIST reply stream, as tapdisk_control_list() writes it: one LIST_RSP per VBD with
 * count = remaining (n, n-1, ..., 1), then a terminator with count 0, minor -1 and an empty path
 * (its state is left over from the last VBD, as the C code does not clear it).
 */
export function listReplyMessages(
  cookie: number,
  vbds: readonly { minor: number; state: number; path: string }[],
): TapdiskMessage[] {
  const out: TapdiskMessage[] = [];
  let count = vbds.length;
  let state = 0;
  for (const v of vbds) {
    out.push({
      type: TapdiskMessageType.LIST_RSP,
      cookie,
      body: { kind: 'list', count: count--, minor: v.minor, state: v.state, path: v.path },
    });
    state = v.state;
  }
  out.push({
    type: TapdiskMessageType.LIST_RSP,
    cookie,
    body: { kind: 'list', count: 0, minor: -1, state, path: '' },
  });
  return out;
}
