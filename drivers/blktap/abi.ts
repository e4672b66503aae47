/**
 * The blktap2 kernel ABI: device paths, ioctl numbers, sysfs names, `dev_inuse` bits and the blktap
 * ring (request/response layout between the tapdev and tapdisk).
 *
 * Sources: Xen `tools/blktap2/include/blktap2.h` (the in-tree user-space header, 2009-2019), the
 * blktap-dkms kernel header `include/linux/blktap.h` (2011, ydirson/blktap-module) and the kernel's
 * private `drivers/xen/blktap/blktap.h`. Layouts are for x86_64 (LP64), the only dom0 ABI we model.
 */

// --- Paths (blktap2.h) -------------------------------------------------------------------------------

export const BLKTAP2_SYSFS_DIR = '/sys/class/blktap2';
/** sysfs class name: `/sys/class/blktap2/blktapN`. */
export const BLKTAP2_SYSFS_CLASS = 'blktap2';
export const BLKTAP2_CONTROL_NAME = 'blktap-control';
/** Directory of tapdisk control sockets, `ctl<pid>`. */
export const BLKTAP2_CONTROL_DIR = '/var/run/blktap-control';
export const BLKTAP2_CONTROL_SOCKET = 'ctl';
export const BLKTAP2_DIRECTORY = '/dev/xen/blktap-2';
export const BLKTAP2_CONTROL_DEVICE = `${BLKTAP2_DIRECTORY}/control`;
/** Prefix of the ring character devices: `/dev/xen/blktap-2/blktapN`. */
export const BLKTAP2_RING_DEVICE = `${BLKTAP2_DIRECTORY}/blktap`;
/** Prefix of the block devices: `/dev/xen/blktap-2/tapdevN`. */
export const BLKTAP2_IO_DEVICE = `${BLKTAP2_DIRECTORY}/tapdev`;

/** Attributes of `/sys/class/blktap2/blktapN` in the 2010-2013 driver. */
export const BLKTAP_SYSFS_ATTRIBUTES = ['name', 'remove', 'debug', 'task', 'pool'] as const;

export function ringDevicePath(minor: number): string {
  return `${BLKTAP2_RING_DEVICE}${checkMinor(minor)}`;
}

export function ioDevicePath(minor: number): string {
  return `${BLKTAP2_IO_DEVICE}${checkMinor(minor)}`;
}

export function sysfsDevicePath(minor: number): string {
  return `${BLKTAP2_SYSFS_DIR}/blktap${checkMinor(minor)}`;
}

export function controlSocketPath(tapdiskId: number): string {
  if (!Number.isInteger(tapdiskId) || tapdiskId < 0) {
    throw new RangeError(`tapdisk id: ${tapdiskId} is not a non-negative integer`);
  }
  return `${BLKTAP2_CONTROL_DIR}/${BLKTAP2_CONTROL_SOCKET}${tapdiskId}`;
}

function checkMinor(minor: number): number {
  if (!Number.isInteger(minor) || minor < 0 || minor >= MAX_BLKTAP_DEVICE_LATE) {
    throw new RangeError(`minor: ${minor} is not an integer in [0, ${MAX_BLKTAP_DEVICE_LATE})`);
  }
  return minor;
}

// --- Limits -------------------------------------------------------------------------------------------

/** Size of `blktaps[]` after the 2010 change (before it: 256). */
export const MAX_BLKTAP_DEVICE = 1024;
/** The pre-2010 cap. */
export const MAX_BLKTAP_DEVICE_OLD = 256;
/** Later XenServer kernels. */
export const MAX_BLKTAP_DEVICE_LATE = 16384;

// --- ioctls -------------------------------------------------------------------------------------------

/**
 * Ioctl numbers. These are plain small integers in blktap, not _IOC-encoded.
 * Control device: ALLOC_TAP, FREE_TAP. Ring device: the rest.
 */
export const BlktapIoctl = {
  /** Ring: tapdisk has posted responses (KICK_FE in Xen's header, RESPOND in the kernel's). */
  KICK_FE: 1,
  RESPOND: 1,
  ALLOC_TAP: 200,
  FREE_TAP: 201,
  /** Xen's header; in the 2011 kernel header this number is CREATE_DEVICE_COMPAT (takes blktap2_params). */
  CREATE_DEVICE: 202,
  CREATE_DEVICE_COMPAT: 202,
  /** Old pause/resume protocol (2.6.18-era driver and Xen's header). */
  SET_PARAMS: 203,
  PAUSE: 204,
  REOPEN: 205,
  RESUME: 206,
  /** Newer kernel only: destroy the gendisk now, EBUSY while the tapdev is open. */
  REMOVE_DEVICE: 207,
  /** Newer kernel only: CREATE_DEVICE taking struct blktap_device_info. */
  CREATE_DEVICE_V2: 208,
} as const;

export const BLKTAP2_MAX_MESSAGE_LEN = 256;
export const BLKTAP_NAME_MAX = 256;

/** Messages tapdisk reads from the byte after `rsp_event` in the shared ring page. */
export const BlktapRingMessage = {
  PAUSE: 1,
  RESUME: 2,
  CLOSE: 3,
} as const;

// --- dev_inuse bits (kernel-private blktap.h; bit numbers for set_bit/test_bit) ----------------------

/** 2010-2013 driver (`dstodden` / blktap-dkms). */
export const BlktapInuseBit = {
  /** The gendisk exists. */
  DEVICE: 4,
  /** The last opener of the tapdev went away (reported to tapdisk via poll). */
  DEVICE_CLOSED: 5,
  /** sysfs `remove` was written. */
  SHUTDOWN_REQUESTED: 8,
} as const;

/** The 2.6.18-era driver (256 devices, pause/resume protocol). */
export const BlktapInuseBitOld = {
  CONTROL: 1,
  RING_FD: 2,
  RING_VMA: 3,
  DEVICE: 4,
  SYSFS: 5,
  PAUSE_REQUESTED: 6,
  PAUSED: 7,
  SHUTDOWN_REQUESTED: 8,
  PASSTHROUGH: 9,
  DEFERRED: 10,
} as const;

export const BLKTAP_REQUEST_FREE = 0;
export const BLKTAP_REQUEST_PENDING = 1;

// --- ioctl argument structs ---------------------------------------------------------------------------

/** `struct blktap2_params` (CREATE_DEVICE 202): name[256] @0, u64 capacity @256, ulong sector_size @264. */
export const BLKTAP2_PARAMS_SIZE = 272;

export interface Blktap2Params {
  name: string;
  /** Sectors. */
  capacity: bigint;
  sectorSize: number;
}

export function encodeBlktap2Params(p: Blktap2Params): Uint8Array {
  const bytes = new Uint8Array(BLKTAP2_PARAMS_SIZE);
  const name = new TextEncoder().encode(p.name);
  if (name.length >= BLKTAP_NAME_MAX) {
    throw new RangeError(`blktap2_params.name: ${name.length} bytes, at most ${BLKTAP_NAME_MAX - 1} fit`);
  }
  bytes.set(name, 0);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(256, BigInt.asUintN(64, p.capacity), true);
  view.setBigUint64(264, BigInt(p.sectorSize), true);
  return bytes;
}

export function decodeBlktap2Params(bytes: Uint8Array): Blktap2Params {
  if (bytes.length !== BLKTAP2_PARAMS_SIZE) {
    throw new RangeError(`blktap2_params: ${bytes.length} bytes, expected ${BLKTAP2_PARAMS_SIZE}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nul = bytes.subarray(0, BLKTAP_NAME_MAX).indexOf(0);
  // The kernel strlcpy()s the name, so an unterminated one is cut, not rejected.
  const nameEnd = nul < 0 ? BLKTAP_NAME_MAX - 1 : nul;
  return {
    name: new TextDecoder().decode(bytes.subarray(0, nameEnd)),
    capacity: view.getBigUint64(256, true),
    sectorSize: Number(view.getBigUint64(264, true)),
  };
}

/** `struct blktap_device_info` (CREATE_DEVICE 208, 2011 header): u64 capacity @0, u32 sector_size @8, ulong flags @16. */
export const BLKTAP_DEVICE_INFO_SIZE = 24;
export const BLKTAP_DEVICE_FLAG_RO = 0x1;

/**
 * ALLOC_TAP's argument: Xen's `struct blktap2_handle { unsigned int ring, device, minor; }` (the 2011
 * kernel header calls it `struct blktap_info { ring_major, bdev_major, ring_minor }`): three u32, LE.
 * The caller passes a buffer of this size; the driver copy_to_user()s the handle into it.
 */
export const BLKTAP2_HANDLE_SIZE = 12;
export const BLKTAP_INFO_SIZE = BLKTAP2_HANDLE_SIZE;

export interface BlktapHandle {
  /** blktap_ring_major: the char major of the ring devices `blktapN`. */
  ring: number;
  /** blktap_device_major: the block major of `tapdevN`. */
  device: number;
  minor: number;
}

export function encodeBlktapHandle(h: BlktapHandle, into?: Uint8Array): Uint8Array {
  for (const field of ['ring', 'device', 'minor'] as const) {
    const v = h[field];
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new RangeError(`blktap2_handle.${field}: ${v} is not an unsigned int`);
    }
  }
  const bytes = into ?? new Uint8Array(BLKTAP2_HANDLE_SIZE);
  if (bytes.length !== BLKTAP2_HANDLE_SIZE) {
    throw new RangeError(`blktap2_handle: buffer of ${bytes.length} bytes, expected ${BLKTAP2_HANDLE_SIZE}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setUint32(0, h.ring, true);
  view.setUint32(4, h.device, true);
  view.setUint32(8, h.minor, true);
  return bytes;
}

export function decodeBlktapHandle(bytes: Uint8Array): BlktapHandle {
  if (bytes.length !== BLKTAP2_HANDLE_SIZE) {
    throw new RangeError(`blktap2_handle: ${bytes.length} bytes, expected ${BLKTAP2_HANDLE_SIZE}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { ring: view.getUint32(0, true), device: view.getUint32(4, true), minor: view.getUint32(8, true) };
}

// --- The blktap ring (2011 kernel header) --------------------------------------------------------------
// Xen's in-tree tapdisk2 instead shares a plain blkif ring with the kernel (see drivers/blkif.ts).

export const BLKTAP_OP_READ = 0;
export const BLKTAP_OP_WRITE = 1;
export const BLKTAP_SEGMENT_MAX = 11;
export const BLKTAP_RSP_EOPNOTSUPP = -2;
export const BLKTAP_RSP_ERROR = -1;
export const BLKTAP_RSP_OKAY = 0;

export const BLKTAP_PAGE_SIZE = 4096;
/** sring header: req_prod, req_event, rsp_prod, rsp_event (u32 each) then 48 bytes of padding. */
export const BLKTAP_SRING_HEADER_SIZE = 64;
/** Offset of the one-byte ring message (BLKTAP_RING_MESSAGE: the byte after rsp_event). */
export const BLKTAP_RING_MESSAGE_OFFSET = 16;
/** struct blktap_segment: u32 __pad, u8 first_sect, u8 last_sect, padded to 8. */
export const BLKTAP_SEGMENT_SIZE = 8;
/** struct blktap_ring_request: op u8 @0, nr_segments u8 @1, __pad u16 @2, id u64 @8, sector u64 @16, seg[11] @24. */
export const BLKTAP_REQUEST_SIZE = 24 + BLKTAP_SEGMENT_MAX * BLKTAP_SEGMENT_SIZE;
/** struct blktap_ring_response: id u64 @0, operation u8 @8, status s16 @10, padded to 16. */
export const BLKTAP_RESPONSE_SIZE = 16;
/** The ring entry is the union of both. */
export const BLKTAP_RING_ENTRY_SIZE = Math.max(BLKTAP_REQUEST_SIZE, BLKTAP_RESPONSE_SIZE);
/** __RD32((4096 - 64) / 112) = __RD32(36) = 32. */
export const BLKTAP_RING_SIZE = roundDownPow2(
  Math.floor((BLKTAP_PAGE_SIZE - BLKTAP_SRING_HEADER_SIZE) / BLKTAP_RING_ENTRY_SIZE),
);
/** mmap area of the ring device: 1 ring page + RING_SIZE * SEGMENT_MAX data pages. */
export const BLKTAP_MMAP_PAGES = BLKTAP_RING_SIZE * BLKTAP_SEGMENT_MAX;
export const BLKTAP_RING_PAGES = 1;

function roundDownPow2(n: number): number {
  let p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

/** Offset of ring entry `idx` (already masked or not) in the shared page. */
export function blktapRingEntryOffset(idx: number): number {
  return BLKTAP_SRING_HEADER_SIZE + (idx & (BLKTAP_RING_SIZE - 1)) * BLKTAP_RING_ENTRY_SIZE;
}

/** Page offset, in the ring device's mmap area, of segment `seg` of request slot `usrIdx` (MMAP_VADDR). */
export function blktapDataPageOffset(usrIdx: number, seg: number): number {
  if (!Number.isInteger(usrIdx) || usrIdx < 0 || usrIdx >= BLKTAP_RING_SIZE) {
    throw new RangeError(`usr_idx: ${usrIdx} is not in [0, ${BLKTAP_RING_SIZE})`);
  }
  if (!Number.isInteger(seg) || seg < 0 || seg >= BLKTAP_SEGMENT_MAX) {
    throw new RangeError(`segment: ${seg} is not in [0, ${BLKTAP_SEGMENT_MAX})`);
  }
  return (BLKTAP_RING_PAGES + usrIdx * BLKTAP_SEGMENT_MAX + seg) * BLKTAP_PAGE_SIZE;
}

export interface BlktapSegment {
  firstSect: number;
  lastSect: number;
}

export interface BlktapRingRequest {
  operation: number;
  id: bigint;
  sectorNumber: bigint;
  segments: BlktapSegment[];
}

export interface BlktapRingResponse {
  id: bigint;
  operation: number;
  status: number;
}

/** Writes a request at `offset` of `view` (a ring page). Validates before writing anything. */
export function writeBlktapRequest(view: DataView, offset: number, req: BlktapRingRequest): void {
  if (req.operation !== BLKTAP_OP_READ && req.operation !== BLKTAP_OP_WRITE) {
    throw new RangeError(`blktap request operation: ${req.operation} is neither READ (0) nor WRITE (1)`);
  }
  if (req.segments.length < 1 || req.segments.length > BLKTAP_SEGMENT_MAX) {
    throw new RangeError(
      `blktap request nr_segments: ${req.segments.length} is not in [1, ${BLKTAP_SEGMENT_MAX}]`,
    );
  }
  req.segments.forEach((s, i) => {
    if (
      !Number.isInteger(s.firstSect) ||
      !Number.isInteger(s.lastSect) ||
      s.firstSect < 0 ||
      s.lastSect > 7
    ) {
      throw new RangeError(
        `blktap request seg[${i}]: sectors ${s.firstSect}..${s.lastSect} are not within 0..7`,
      );
    }
    if (s.lastSect < s.firstSect) {
      throw new RangeError(`blktap request seg[${i}]: last_sect ${s.lastSect} < first_sect ${s.firstSect}`);
    }
  });
  view.setUint8(offset, req.operation);
  view.setUint8(offset + 1, req.segments.length);
  view.setUint16(offset + 2, 0, true);
  view.setUint32(offset + 4, 0, true);
  view.setBigUint64(offset + 8, BigInt.asUintN(64, req.id), true);
  view.setBigUint64(offset + 16, BigInt.asUintN(64, req.sectorNumber), true);
  for (let i = 0; i < BLKTAP_SEGMENT_MAX; i++) {
    const at = offset + 24 + i * BLKTAP_SEGMENT_SIZE;
    const s = req.segments[i];
    view.setUint32(at, 0, true);
    view.setUint8(at + 4, s ? s.firstSect : 0);
    view.setUint8(at + 5, s ? s.lastSect : 0);
    view.setUint16(at + 6, 0, true);
  }
}

/**
 * Reads a request (the caller copies it out of shared memory once; this reads from that copy).
 * Rejects what tapdisk would have to reject: bad operation, bad segment count or sector range.
 */
export function readBlktapRequest(view: DataView, offset: number): BlktapRingRequest {
  const operation = view.getUint8(offset);
  const nr = view.getUint8(offset + 1);
  if (operation !== BLKTAP_OP_READ && operation !== BLKTAP_OP_WRITE) {
    throw new RangeError(`blktap request operation: ${operation} is neither READ (0) nor WRITE (1)`);
  }
  if (nr < 1 || nr > BLKTAP_SEGMENT_MAX) {
    throw new RangeError(`blktap request nr_segments: ${nr} is not in [1, ${BLKTAP_SEGMENT_MAX}]`);
  }
  const segments: BlktapSegment[] = [];
  for (let i = 0; i < nr; i++) {
    const at = offset + 24 + i * BLKTAP_SEGMENT_SIZE;
    const firstSect = view.getUint8(at + 4);
    const lastSect = view.getUint8(at + 5);
    if (lastSect > 7 || lastSect < firstSect) {
      throw new RangeError(
        `blktap request seg[${i}]: sectors ${firstSect}..${lastSect} are not a range within 0..7`,
      );
    }
    segments.push({ firstSect, lastSect });
  }
  return {
    operation,
    id: view.getBigUint64(offset + 8, true),
    sectorNumber: view.getBigUint64(offset + 16, true),
    segments,
  };
}

export function writeBlktapResponse(view: DataView, offset: number, rsp: BlktapRingResponse): void {
  if (!Number.isInteger(rsp.status) || rsp.status < -32768 || rsp.status > 32767) {
    throw new RangeError(`blktap response status: ${rsp.status} does not fit an int16`);
  }
  if (!Number.isInteger(rsp.operation) || rsp.operation < 0 || rsp.operation > 255) {
    throw new RangeError(`blktap response operation: ${rsp.operation} does not fit a uint8`);
  }
  view.setBigUint64(offset, BigInt.asUintN(64, rsp.id), true);
  view.setUint8(offset + 8, rsp.operation);
  view.setUint8(offset + 9, 0);
  view.setInt16(offset + 10, rsp.status, true);
  view.setUint32(offset + 12, 0, true);
}

export function readBlktapResponse(view: DataView, offset: number): BlktapRingResponse {
  return {
    id: view.getBigUint64(offset, true),
    operation: view.getUint8(offset + 8),
    status: view.getInt16(offset + 10, true),
  };
}
