/**
 * The xenstore wire protocol (xen/include/public/io/xs_wire.h): message header, type numbers, error
 * names, size limits, the domain ring page layout, and an incremental frame parser for byte streams.
 *
 * Pure codec: no daemon state. The ring transport and the socket transport both use it.
 */

/** Message types, numbered as in xs_wire.h `enum xsd_sockmsg_type`. */
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
  /* 20 was XS_RESTRICT, removed; it is an invalid type now. */
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
  GET_FEATURE: 23,
  SET_FEATURE: 24,
  GET_QUOTA: 25,
  SET_QUOTA: 26,
  TYPE_COUNT: 27,
  INVALID: 0xffff,
} as const;
export type XsTypeName = keyof typeof XsType;
export type XsTypeNumber = number;

const TYPE_NAMES = new Map<number, string>(Object.entries(XsType).map(([k, v]) => [v, k]));

/** "READ", "WATCH_EVENT", ... or "type 42" for numbers the protocol does not define. */
export function xsTypeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `type ${type}`;
}

/** Error names in xs_wire.h `xsd_errors[]` order; the name (never the number) goes on the wire. */
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
export type XsErrno = (typeof XS_ERROR_NAMES)[number];

export function isXsErrno(name: string): name is XsErrno {
  return (XS_ERROR_NAMES as readonly string[]).includes(name);
}

/** A request failed with a xenstore error; `errno` is what the ERROR reply carries. */
export class XsError extends Error {
  constructor(
    readonly errno: XsErrno,
    detail?: string,
  ) {
    super(detail ? `${errno}: ${detail}` : errno);
    this.name = 'XsError';
  }
}

export const XS_HEADER_SIZE = 16;
/** XENSTORE_PAYLOAD_MAX: limit of a message body in both directions. */
export const XENSTORE_PAYLOAD_MAX = 4096;
export const XENSTORE_ABS_PATH_MAX = 3072;
export const XENSTORE_REL_PATH_MAX = 2048;

/** Domain ring page (xen/include/public/io/xs_wire.h, struct xenstore_domain_interface). */
export const XENSTORE_RING_SIZE = 1024;
export const XsRingLayout = {
  req: 0,
  rsp: 1024,
  reqCons: 2048,
  reqProd: 2052,
  rspCons: 2056,
  rspProd: 2060,
  serverFeatures: 2064,
  connection: 2068,
  error: 2072,
  evtchnPort: 2076,
} as const;
/** server_features bits. */
export const XENSTORE_SERVER_FEATURE_RECONNECTION = 1;
export const XENSTORE_SERVER_FEATURE_ERROR = 2;
export const XENSTORE_SERVER_FEATURE_WATCHDEPTH = 4;
/** `connection` field values. */
export const XENSTORE_CONNECTED = 0;
export const XENSTORE_RECONNECT = 1;
/** `error` field values. */
export const XENSTORE_ERROR_NONE = 0;
export const XENSTORE_ERROR_COMM = 1;
export const XENSTORE_ERROR_RINGIDX = 2;
export const XENSTORE_ERROR_PROTO = 3;

export interface XsHeader {
  type: number;
  reqId: number;
  txId: number;
  len: number;
}

export interface XsMessage {
  type: number;
  reqId: number;
  txId: number;
  payload: Uint8Array;
}

export function encodeHeader(h: XsHeader, out = new Uint8Array(XS_HEADER_SIZE), offset = 0): Uint8Array {
  const dv = new DataView(out.buffer, out.byteOffset + offset, XS_HEADER_SIZE);
  dv.setUint32(0, h.type >>> 0, true);
  dv.setUint32(4, h.reqId >>> 0, true);
  dv.setUint32(8, h.txId >>> 0, true);
  dv.setUint32(12, h.len >>> 0, true);
  return out;
}

export function decodeHeader(bytes: Uint8Array, offset = 0): XsHeader {
  if (bytes.length - offset < XS_HEADER_SIZE) {
    throw new RangeError(`xenstore header needs ${XS_HEADER_SIZE} bytes, got ${bytes.length - offset}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, XS_HEADER_SIZE);
  return {
    type: dv.getUint32(0, true),
    reqId: dv.getUint32(4, true),
    txId: dv.getUint32(8, true),
    len: dv.getUint32(12, true),
  };
}

/** Header plus payload in one buffer. Throws on a payload above XENSTORE_PAYLOAD_MAX. */
export function encodeMessage(m: XsMessage): Uint8Array {
  if (m.payload.length > XENSTORE_PAYLOAD_MAX) {
    throw new RangeError(`xenstore payload of ${m.payload.length} bytes exceeds ${XENSTORE_PAYLOAD_MAX}`);
  }
  const out = new Uint8Array(XS_HEADER_SIZE + m.payload.length);
  encodeHeader({ type: m.type, reqId: m.reqId, txId: m.txId, len: m.payload.length }, out);
  out.set(m.payload, XS_HEADER_SIZE);
  return out;
}

const utf8 = new TextEncoder();
const latin1 = new TextDecoder('latin1');

/** Bytes of a string (xenstore paths and tokens are ASCII; values are arbitrary bytes). */
export function strBytes(s: string): Uint8Array {
  return utf8.encode(s);
}

/** Decode bytes one char per byte, so arbitrary values round-trip through `strBytes` only when ASCII. */
export function bytesStr(b: Uint8Array): string {
  return latin1.decode(b);
}

/** Each string followed by a NUL: the usual request payload ("path|", "path|token|"). */
export function nulStrings(...parts: (string | Uint8Array)[]): Uint8Array {
  const chunks = parts.map((p) => (typeof p === 'string' ? strBytes(p) : p));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length + 1, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length + 1;
  }
  return out;
}

/** Concatenate without separators (WRITE's "path|value": nulStrings(path) then the raw value). */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Split a payload into its NUL-terminated strings, as C xenstored's get_strings() counts them: trailing
 * bytes without a NUL are not a string. Returns the strings and the offset just past the last NUL.
 */
export function splitNulStrings(payload: Uint8Array): { strings: string[]; end: number } {
  const strings: string[] = [];
  let off = 0;
  for (;;) {
    const nul = payload.indexOf(0, off);
    if (nul < 0) break;
    strings.push(bytesStr(payload.subarray(off, nul)));
    off = nul + 1;
  }
  return { strings, end: off };
}

export type FrameResult = { kind: 'message'; message: XsMessage } | { kind: 'oversize'; header: XsHeader };

/**
 * Incremental parser for a stream of xenstore messages: feed any chunking of the bytes, get whole
 * messages back. A header announcing more than XENSTORE_PAYLOAD_MAX is reported as 'oversize'; the
 * stream is then out of sync and the parser refuses further input (C xenstored drops the client).
 */
export class XsFrameParser {
  private header = new Uint8Array(XS_HEADER_SIZE);
  private headerUsed = 0;
  private current: XsHeader | undefined;
  private body: Uint8Array | undefined;
  private bodyUsed = 0;
  private broken = false;

  /** Bytes held for a message not yet complete. */
  get pendingBytes(): number {
    return this.current ? XS_HEADER_SIZE + this.bodyUsed : this.headerUsed;
  }

  get isBroken(): boolean {
    return this.broken;
  }

  push(bytes: Uint8Array): FrameResult[] {
    if (this.broken)
      throw new Error('xenstore frame parser: stream already out of sync after an oversize header');
    const out: FrameResult[] = [];
    let off = 0;
    while (off < bytes.length) {
      if (!this.current) {
        const take = Math.min(XS_HEADER_SIZE - this.headerUsed, bytes.length - off);
        this.header.set(bytes.subarray(off, off + take), this.headerUsed);
        this.headerUsed += take;
        off += take;
        if (this.headerUsed < XS_HEADER_SIZE) break;
        const h = decodeHeader(this.header);
        this.headerUsed = 0;
        if (h.len > XENSTORE_PAYLOAD_MAX) {
          this.broken = true;
          out.push({ kind: 'oversize', header: h });
          return out;
        }
        this.current = h;
        this.body = new Uint8Array(h.len);
        this.bodyUsed = 0;
      }
      const h = this.current;
      const body = this.body!;
      const take = Math.min(h.len - this.bodyUsed, bytes.length - off);
      body.set(bytes.subarray(off, off + take), this.bodyUsed);
      this.bodyUsed += take;
      off += take;
      if (this.bodyUsed < h.len) break;
      out.push({ kind: 'message', message: { type: h.type, reqId: h.reqId, txId: h.txId, payload: body } });
      this.current = undefined;
      this.body = undefined;
      this.bodyUsed = 0;
    }
    return out;
  }
}
