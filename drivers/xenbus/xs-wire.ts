/**
 * The xenstore wire protocol as a kernel sees it (xen/include/public/io/xs_wire.h): message types, the
 * 16-byte `xsd_sockmsg` header, error names, payload limits, and a framer that reassembles messages from
 * a byte stream. Linux keeps its own copy of xs_wire.h; so do the drivers here (they may not import the
 * daemon in emulator/xenstored).
 */

export const XsType = {
  CONTROL: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
  GET_FEATURE: 23,
  SET_FEATURE: 24,
  GET_QUOTA: 25,
  SET_QUOTA: 26,
} as const;
export type XsTypeValue = (typeof XsType)[keyof typeof XsType];

const TYPE_NAMES = new Map<number, string>(Object.entries(XsType).map(([name, v]) => [v, name]));

/** "READ", "WATCH_EVENT", ... or "type 99" for a value xs_wire.h does not define. */
export function xsTypeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `type ${type}`;
}

/** The error names of xs_wire.h's xsd_errors table, in table order. The name is sent, never the number. */
export const XS_ERROR_NAMES = [
  'EINVAL',
  'EACCES',
  'EEXIST',
  'EISDIR',
  'ENOENT',
  'ENOMEM',
  'ENOSPC',
  'EIO',
  'ENOTEMPTY',
  'ENOSYS',
  'EROFS',
  'EBUSY',
  'EAGAIN',
  'EISCONN',
  'E2BIG',
  'EPERM',
] as const;
export type XsErrorName = (typeof XS_ERROR_NAMES)[number];

/** errno values (xen/include/public/errno.h; the same numbers as Linux). */
export const XS_ERRNO: Readonly<Record<XsErrorName, number>> = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  E2BIG: 7,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EISDIR: 21,
  EINVAL: 22,
  ENOSPC: 28,
  EROFS: 30,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  EISCONN: 106,
};

export function isXsErrorName(name: string): name is XsErrorName {
  return (XS_ERROR_NAMES as readonly string[]).includes(name);
}

export const XSD_SOCKMSG_SIZE = 16;
/** XENSTORE_PAYLOAD_MAX: the limit in both directions; a client exceeding it is disconnected. */
export const XENSTORE_PAYLOAD_MAX = 4096;
export const XENSTORE_ABS_PATH_MAX = 3072;
export const XENSTORE_REL_PATH_MAX = 2048;

/** Transaction id 0: outside any transaction (Linux XBT_NIL). */
export const XBT_NIL = 0;

export interface XsHeader {
  type: number;
  reqId: number;
  txId: number;
  len: number;
}

export interface XsMessage extends XsHeader {
  payload: Uint8Array;
}

/** Little-endian, as on x86 (xs_wire.h uses native uint32_t). */
export function decodeHeader(bytes: Uint8Array, offset = 0): XsHeader {
  const v = new DataView(bytes.buffer, bytes.byteOffset + offset, XSD_SOCKMSG_SIZE);
  return {
    type: v.getUint32(0, true),
    reqId: v.getUint32(4, true),
    txId: v.getUint32(8, true),
    len: v.getUint32(12, true),
  };
}

/** One complete message: header then payload. Refuses payloads over XENSTORE_PAYLOAD_MAX. */
export function encodeMessage(type: number, reqId: number, txId: number, payload: Uint8Array): Uint8Array {
  if (payload.length > XENSTORE_PAYLOAD_MAX) {
    throw new RangeError(
      `xenstore ${xsTypeName(type)}: payload of ${payload.length} bytes exceeds XENSTORE_PAYLOAD_MAX (${XENSTORE_PAYLOAD_MAX})`,
    );
  }
  const out = new Uint8Array(XSD_SOCKMSG_SIZE + payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, type >>> 0, true);
  v.setUint32(4, reqId >>> 0, true);
  v.setUint32(8, txId >>> 0, true);
  v.setUint32(12, payload.length, true);
  out.set(payload, XSD_SOCKMSG_SIZE);
  return out;
}

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

/** Payload of NUL-terminated strings ("a|b|" where | is NUL), as READ, WATCH, RM... take. */
export function nulJoin(parts: readonly string[]): Uint8Array {
  return utf8.encode(parts.map((p) => `${p}\0`).join(''));
}

/** WRITE's payload: path NUL then the raw value (no trailing NUL). */
export function writePayload(path: string, value: string | Uint8Array): Uint8Array {
  const p = utf8.encode(`${path}\0`);
  const v = typeof value === 'string' ? utf8.encode(value) : value;
  const out = new Uint8Array(p.length + v.length);
  out.set(p, 0);
  out.set(v, p.length);
  return out;
}

/** Split a payload of NUL-terminated strings; a trailing unterminated fragment is kept too. */
export function nulSplit(payload: Uint8Array): string[] {
  if (payload.length === 0) return [];
  const s = utf8d.decode(payload);
  const parts = s.split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

export function decodeString(payload: Uint8Array): string {
  return utf8d.decode(payload);
}

/** An ERROR reply's payload: "ENOENT\0". */
export function errorNameOf(payload: Uint8Array): string {
  const [name] = nulSplit(payload);
  return name ?? '';
}

/**
 * Reassembles messages from a byte stream that may split them anywhere (the ring hands out whatever is
 * contiguous). `push` returns every message completed by the bytes given.
 */
export class XsFramer {
  private buf = new Uint8Array(XSD_SOCKMSG_SIZE + XENSTORE_PAYLOAD_MAX);
  private have = 0;

  /** Bytes of a partial message held. */
  get pending(): number {
    return this.have;
  }

  push(bytes: Uint8Array): XsMessage[] {
    const out: XsMessage[] = [];
    let i = 0;
    while (i < bytes.length) {
      const need = this.have < XSD_SOCKMSG_SIZE ? XSD_SOCKMSG_SIZE : XSD_SOCKMSG_SIZE + this.headerLen();
      const take = Math.min(need - this.have, bytes.length - i);
      this.buf.set(bytes.subarray(i, i + take), this.have);
      this.have += take;
      i += take;
      if (this.have === XSD_SOCKMSG_SIZE) {
        const len = this.headerLen();
        if (len > XENSTORE_PAYLOAD_MAX) {
          const h = decodeHeader(this.buf);
          this.have = 0;
          throw new XsProtocolError(
            `xenstore ${xsTypeName(h.type)} req_id ${h.reqId}: len ${len} exceeds XENSTORE_PAYLOAD_MAX (${XENSTORE_PAYLOAD_MAX})`,
          );
        }
      }
      if (this.have >= XSD_SOCKMSG_SIZE && this.have === XSD_SOCKMSG_SIZE + this.headerLen()) {
        const h = decodeHeader(this.buf);
        out.push({ ...h, payload: this.buf.slice(XSD_SOCKMSG_SIZE, XSD_SOCKMSG_SIZE + h.len) });
        this.have = 0;
      }
    }
    return out;
  }

  private headerLen(): number {
    return (this.buf[12]! | (this.buf[13]! << 8) | (this.buf[14]! << 16) | (this.buf[15]! << 24)) >>> 0;
  }
}

/** The stream broke the framing rules (oversized message); the connection cannot be trusted further. */
export class XsProtocolError extends Error {
  override readonly name = 'XsProtocolError';
}
