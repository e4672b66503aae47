/**
 * The xenstore wire protocol (xen/include/public/io/xs_wire.h): message types, the 16-byte
 * `xsd_sockmsg` header, error names and errno values, payload limits, NUL-string payload helpers, and an
 * incremental frame parser that reassembles messages from a byte stream.
 *
 * The one codec of the tree: the kernel-side xenbus client (drivers/xenbus) and the xenstored daemon
 * (emulator/xenstored, which may import drivers/ but not the other way round) both use it. The layout of
 * the shared ring page is in xs-ring-page.ts.
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
  /** XS_TYPE_COUNT: one past the last type; not a message type itself. */
  TYPE_COUNT: 27,
  /** XS_INVALID: guaranteed to remain an invalid type. */
  INVALID: 0xffff,
} as const;
export type XsTypeName = keyof typeof XsType;

const TYPE_NAMES = new Map<number, string>(
  Object.entries(XsType)
    .filter(([name]) => name !== 'TYPE_COUNT')
    .map(([name, v]) => [v, name]),
);

/** "READ", "WATCH_EVENT", ... or "type 42" for a number xs_wire.h does not define as a type. */
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

/** sizeof(struct xsd_sockmsg): four u32 (type, req_id, tx_id, len). */
export const XS_HEADER_SIZE = 16;
/** XENSTORE_PAYLOAD_MAX: the body limit in both directions; a client exceeding it is disconnected. */
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

/** A whole message; the header's `len` is `payload.length`. */
export interface XsMessage {
  type: number;
  reqId: number;
  txId: number;
  payload: Uint8Array;
}

/** Little-endian, as on x86 (xs_wire.h uses native uint32_t). */
export function encodeHeader(h: XsHeader, out = new Uint8Array(XS_HEADER_SIZE), offset = 0): Uint8Array {
  // Byte stores, not a DataView: one is built per message and showed in the lifecycle profile.
  if (out.length - offset < XS_HEADER_SIZE) {
    throw new RangeError(`xenstore header needs ${XS_HEADER_SIZE} bytes, got ${out.length - offset}`);
  }
  putU32(out, offset, h.type);
  putU32(out, offset + 4, h.reqId);
  putU32(out, offset + 8, h.txId);
  putU32(out, offset + 12, h.len);
  return out;
}

export function decodeHeader(bytes: Uint8Array, offset = 0): XsHeader {
  if (bytes.length - offset < XS_HEADER_SIZE) {
    throw new RangeError(`xenstore header needs ${XS_HEADER_SIZE} bytes, got ${bytes.length - offset}`);
  }
  return {
    type: getU32(bytes, offset),
    reqId: getU32(bytes, offset + 4),
    txId: getU32(bytes, offset + 8),
    len: getU32(bytes, offset + 12),
  };
}

function putU32(out: Uint8Array, at: number, v: number): void {
  out[at] = v & 0xff;
  out[at + 1] = (v >>> 8) & 0xff;
  out[at + 2] = (v >>> 16) & 0xff;
  out[at + 3] = (v >>> 24) & 0xff;
}

function getU32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

/** Header plus payload in one buffer. Refuses a payload over XENSTORE_PAYLOAD_MAX. */
export function encodeMessage(m: XsMessage): Uint8Array {
  const payload = m.payload;
  if (payload.length > XENSTORE_PAYLOAD_MAX) {
    throw new RangeError(
      `xenstore ${xsTypeName(m.type)}: payload of ${payload.length} bytes exceeds XENSTORE_PAYLOAD_MAX (${XENSTORE_PAYLOAD_MAX})`,
    );
  }
  const out = new Uint8Array(XS_HEADER_SIZE + payload.length);
  putU32(out, 0, m.type);
  putU32(out, 4, m.reqId);
  putU32(out, 8, m.txId);
  putU32(out, 12, payload.length);
  out.set(payload, XS_HEADER_SIZE);
  return out;
}

/**
 * A whole WATCH_EVENT message ("path\0token\0") from byte strings (one char per byte), or undefined
 * when its payload would exceed XENSTORE_PAYLOAD_MAX. A char above U+00FF is refused as latin1Bytes does.
 */
export function encodeWatchEvent(path: string, token: string): Uint8Array | undefined {
  const len = path.length + token.length + 2;
  if (len > XENSTORE_PAYLOAD_MAX) return undefined;
  const out = new Uint8Array(XS_HEADER_SIZE + len);
  putU32(out, 0, XsType.WATCH_EVENT);
  putU32(out, 12, len);
  let off = putLatin1(out, XS_HEADER_SIZE, path);
  off = putLatin1(out, off + 1, token);
  return out;
}

/** Each char of `s` as one byte at out[at..]; returns the offset past it. */
function putLatin1(out: Uint8Array, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) {
      throw new RangeError(
        `latin1Bytes: char ${i} of the string is U+${c.toString(16).toUpperCase().padStart(4, '0')}, not a byte`,
      );
    }
    out[at + i] = c;
  }
  return at + s.length;
}

// ---- payload strings -----------------------------------------------------------------------------
// xenstore is byte-transparent: C xenstored copies values and watch tokens as raw bytes (paths are
// limited to a character set anyway). The daemon therefore reads and writes strings one char per byte
// (latin1String / latin1Bytes, exact inverses); the kernel client reads values as UTF-8 text (what its
// string API writes) and keeps readBytes() for the raw bytes.

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** A string's UTF-8 bytes: how the client APIs put text on the wire. */
export function utf8Bytes(s: string): Uint8Array {
  // A short ASCII string is copied char by char: its UTF-8 is the same bytes, and TextEncoder's call
  // costs more than the copy.
  if (s.length > 256) return utf8Encoder.encode(s);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return utf8Encoder.encode(s);
    out[i] = c;
  }
  return out;
}

/** Bytes as UTF-8 text (the kernel client's reading of values and reply strings). */
export function utf8String(b: Uint8Array): string {
  return utf8Decoder.decode(b);
}

/**
 * One char per byte, code points 0..255 (ISO-8859-1 proper: WHATWG's "latin1" label is windows-1252,
 * which maps 0x80..0x9f elsewhere and so does not round-trip). The exact inverse of latin1Bytes.
 */
export function latin1String(b: Uint8Array): string {
  return latin1Range(b, 0, b.length);
}

/** latin1String of b[start..end). */
export function latin1Range(b: Uint8Array, start: number, end: number): string {
  if (nodeLatin1Slice !== undefined) return nodeLatin1Slice.call(b, start, end);
  return latin1RangeByCharCodes(b, start, end);
}

/** latin1Range without Node's decoder (exported so tests hold the two to the same strings). */
export function latin1RangeByCharCodes(b: Uint8Array, start: number, end: number): string {
  let s = '';
  // Chunked so a 4 KiB payload never hits the argument-count limit of fromCharCode.
  for (let i = start; i < end; i += 1024) {
    s += String.fromCharCode.apply(null, b.subarray(i, Math.min(i + 1024, end)) as unknown as number[]);
  }
  return s;
}

/**
 * Node's own ISO-8859-1 decoder (what Buffer#toString('latin1') calls), taken on any Uint8Array: one
 * flat string without a view object, measured 1.6x faster than fromCharCode over a subarray for the
 * short paths of requests. Hosts without it use fromCharCode, which gives the same string.
 */
const nodeLatin1Slice = (
  globalThis as { Buffer?: { prototype: { latin1Slice?: (start: number, end: number) => string } } }
).Buffer?.prototype.latin1Slice as ((this: Uint8Array, start: number, end: number) => string) | undefined;

/** Each char as one byte; a char above U+00FF cannot be a byte and is refused with its position. */
export function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  putLatin1(out, 0, s);
  return out;
}

/** Each part followed by a NUL: the usual request payload ("path|", "path|token|" where | is NUL). */
export function nulStrings(...parts: (string | Uint8Array)[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length + 1;
  // Strings are written char by char while they are ASCII (their UTF-8 is then the same bytes); the
  // first other char sends the whole payload through the UTF-8 encoder instead.
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    if (typeof p === 'string') {
      for (let i = 0; i < p.length; i++) {
        const c = p.charCodeAt(i);
        if (c > 0x7f) return nulStringsUtf8(parts);
        out[off++] = c;
      }
    } else {
      out.set(p, off);
      off += p.length;
    }
    off++;
  }
  return out;
}

function nulStringsUtf8(parts: readonly (string | Uint8Array)[]): Uint8Array {
  const chunks = parts.map((p) => (typeof p === 'string' ? utf8Bytes(p) : p));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length + 1, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length + 1;
  }
  return out;
}

/** Concatenate without separators. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** WRITE's payload: path, NUL, then the raw value (no trailing NUL). */
export function writePayload(path: string, value: string | Uint8Array): Uint8Array {
  const head = nulStrings(path);
  const body = typeof value === 'string' ? utf8Bytes(value) : value;
  const out = new Uint8Array(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return out;
}

/**
 * The daemon's reading of a request (C xenstored get_strings()): only NUL-terminated strings count,
 * trailing bytes without a NUL are not a string. Returns the strings (one char per byte) and the offset
 * just past the last NUL.
 */
export function splitNulStrings(payload: Uint8Array): { strings: string[]; end: number } {
  const strings: string[] = [];
  let off = 0;
  for (;;) {
    const nul = payload.indexOf(0, off);
    if (nul < 0) break;
    strings.push(latin1Range(payload, off, nul));
    off = nul + 1;
  }
  return { strings, end: off };
}

/**
 * The kernel's reading of a reply (Linux xenbus_xs.c split()): the reader NUL-terminates the body, so a
 * trailing unterminated fragment is a string too. UTF-8 by default; watch events are read with
 * latin1String so that a token comes back byte for byte.
 */
export function splitReplyStrings(
  payload: Uint8Array,
  decode: (b: Uint8Array) => string = utf8String,
): string[] {
  if (payload.length === 0) return [];
  const parts = decode(payload).split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** An ERROR reply's payload ("ENOENT\0"): the name, or "" when empty. Not checked against the table. */
export function errorNameOf(payload: Uint8Array): string {
  return splitReplyStrings(payload)[0] ?? '';
}

// ---- framing -------------------------------------------------------------------------------------

/** The stream broke the framing rules (an oversize header); the connection cannot be trusted further. */
export class XsProtocolError extends Error {
  override readonly name = 'XsProtocolError';

  constructor(
    /** The header that announced too much. */
    readonly header: XsHeader,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Incremental parser for a stream of xenstore messages: feed any chunking of the bytes (a ring hands out
 * whatever is contiguous), get whole messages back. A header announcing more than XENSTORE_PAYLOAD_MAX
 * throws XsProtocolError naming it; the stream is then out of sync and every later push throws too
 * (C xenstored drops the client; the kernel gives up the connection). Messages completed earlier in the
 * same push are not returned.
 */
export class XsFrameParser {
  private readonly header = new Uint8Array(XS_HEADER_SIZE);
  private headerUsed = 0;
  private current: XsHeader | undefined;
  private body: Uint8Array | undefined;
  private bodyUsed = 0;
  private brokenBy: XsHeader | undefined;

  /** Bytes held for a message not yet complete. */
  get pendingBytes(): number {
    return this.current ? XS_HEADER_SIZE + this.bodyUsed : this.headerUsed;
  }

  /** An oversize header was seen; no more input is accepted. */
  get isBroken(): boolean {
    return this.brokenBy !== undefined;
  }

  push(bytes: Uint8Array): XsMessage[] {
    if (this.brokenBy) {
      throw new XsProtocolError(
        this.brokenBy,
        'xenstore frame parser: stream already out of sync after an oversize header',
      );
    }
    const out: XsMessage[] = [];
    const n = bytes.length;
    let off = 0;
    while (off < n) {
      // Fast path: nothing held back and a whole message in the chunk (the usual case): read the header
      // in place and copy the body out once.
      if (this.current === undefined && this.headerUsed === 0 && n - off >= XS_HEADER_SIZE) {
        const len = getU32(bytes, off + 12);
        if (len > XENSTORE_PAYLOAD_MAX) this.oversize(decodeHeader(bytes, off));
        if (n - off - XS_HEADER_SIZE >= len) {
          const start = off + XS_HEADER_SIZE;
          out.push({
            type: getU32(bytes, off),
            reqId: getU32(bytes, off + 4),
            txId: getU32(bytes, off + 8),
            payload: bytes.slice(start, start + len),
          });
          off = start + len;
          continue;
        }
      }
      off = this.pushPiece(bytes, off, out);
    }
    return out;
  }

  /** Take what belongs to the message in progress from bytes[off..]; returns the new offset. */
  private pushPiece(bytes: Uint8Array, off: number, out: XsMessage[]): number {
    if (!this.current) {
      const take = Math.min(XS_HEADER_SIZE - this.headerUsed, bytes.length - off);
      this.header.set(bytes.subarray(off, off + take), this.headerUsed);
      this.headerUsed += take;
      off += take;
      if (this.headerUsed < XS_HEADER_SIZE) return off;
      const h = decodeHeader(this.header);
      this.headerUsed = 0;
      if (h.len > XENSTORE_PAYLOAD_MAX) this.oversize(h);
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
    if (this.bodyUsed < h.len) return off;
    out.push({ type: h.type, reqId: h.reqId, txId: h.txId, payload: body });
    this.current = undefined;
    this.body = undefined;
    this.bodyUsed = 0;
    return off;
  }

  private oversize(h: XsHeader): never {
    this.brokenBy = h;
    throw new XsProtocolError(
      h,
      `xenstore ${xsTypeName(h.type)} req_id ${h.reqId}: len ${h.len} exceeds XENSTORE_PAYLOAD_MAX (${XENSTORE_PAYLOAD_MAX})`,
    );
  }
}
