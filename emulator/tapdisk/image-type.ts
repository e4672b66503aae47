/**
 * tapdisk image types: the `disk_info` table, the driver table, and the `type:path` parser
 * (`tapdisk_disktype_parse_params` / `tapdisk_disktype_find` in `tapdisk-disktype.c`), for Xen's
 * in-tree tapdisk2 (`tools/blktap2/drivers`) and xapi-project/blktap.
 *
 * Errors are the negative errnos tapdisk returns; OPEN replies carry them (positive) in
 * `response.error`, and tap-ctl exits with that errno.
 */

export type TapdiskVariant = 'xen' | 'xapi';

/** disk_info flags. */
export const DISK_TYPE_SINGLE_CONTROLLER = 1;
/** xapi only: drivers without image data of their own. */
export const DISK_TYPE_FILTER = 2;
/** `char name[DISK_TYPE_NAME_MAX]` holds the type name and its NUL. */
export const DISK_TYPE_NAME_MAX = 32;

/** Drivers this emulator implements. Every other known type fails OPEN with ENOSYS (see below). */
export const EMULATED_DRIVERS: ReadonlySet<string> = new Set(['aio', 'ram']);

export interface DiskTypeInfo {
  /** Index into tapdisk_disk_types[] (DISK_TYPE_*). */
  readonly id: number;
  /** `disk_info.name`, what lookups compare against (note xapi's swapped remus entry). */
  readonly name: string;
  readonly desc: string;
  readonly flags: number;
  /** The real tapdisk links a driver for it (tapdisk_disk_drivers[id] != NULL). */
  readonly hasDriver: boolean;
}

function info(id: number, name: string, desc: string, flags: number, hasDriver: boolean): DiskTypeInfo {
  return { id, name, desc, flags, hasDriver };
}

/** Xen tools/blktap2/drivers/tapdisk-disktype.c (slot 8 is empty; vhdi is 11 there). */
export const XEN_DISK_TYPES: readonly DiskTypeInfo[] = [
  info(0, 'aio', 'raw image (aio)', 0, true),
  info(1, 'sync', 'raw image (sync)', 0, false),
  info(2, 'vmdk', 'vmware image (vmdk)', 1, false),
  info(3, 'vhdsync', 'virtual server image (vhd) - synchronous', 1, false),
  info(4, 'vhd', 'virtual server image (vhd)', 0, true),
  info(5, 'ram', 'ramdisk image (ram)', 1, true),
  info(6, 'qcow', 'qcow disk (qcow)', 0, true),
  info(7, 'bc', 'block cache image (bc)', 1, true),
  info(9, 'log', 'write logger (log)', 0, true),
  info(10, 'remus', 'remus disk replicator (remus)', 0, true),
  info(11, 'vhdi', 'vhd index image (vhdi)', 1, false),
];

/**
 * xapi-project/blktap drivers/tapdisk-disktype.c (2016+). Its remus entry has name and description
 * swapped, so looking up "remus" finds nothing (ENOENT) - reproduced on purpose.
 */
export const XAPI_DISK_TYPES: readonly DiskTypeInfo[] = [
  info(0, 'aio', 'raw image (aio)', 0, true),
  info(1, 'sync', 'raw image (sync)', 0, false),
  info(2, 'vmdk', 'vmware image (vmdk)', 1, false),
  info(3, 'vhdsync', 'virtual server image (vhd) - synchronous', 1, false),
  info(4, 'vhd', 'virtual server image (vhd)', 0, true),
  info(5, 'ram', 'ramdisk image (ram)', 1, true),
  info(6, 'qcow', 'qcow disk (qcow)', 0, false),
  info(7, 'bc', 'block cache image (bc)', 1, true),
  info(8, 'vhdi', 'vhd index image (vhdi)', 1, true),
  info(9, 'log', 'write logger (log)', DISK_TYPE_FILTER, true),
  info(10, 'remus disk replicator (remus)', 'remus', 0, false),
  info(11, 'lc', 'local parent cache (lc)', DISK_TYPE_FILTER, true),
  info(12, 'lle', 'local leaf cache, ephemeral (lle)', 0, true),
  info(13, 'llp', 'local leaf cache, persistent (llp)', 0, true),
  info(14, 'valve', 'group rate limiting (valve)', DISK_TYPE_FILTER, true),
  info(15, 'nbd', 'export to a NBD server', 0, true),
  info(16, 'ntnx', 'Nutanix ADSF disk (ntnx)', 0, true),
];

export function diskTypes(variant: TapdiskVariant): readonly DiskTypeInfo[] {
  return variant === 'xen' ? XEN_DISK_TYPES : XAPI_DISK_TYPES;
}

export const ENOENT = 2;
export const EINVAL = 22;
export const ENOSYS = 38;
export const ENAMETOOLONG = 36;

/** strerror() texts (glibc) for the errnos this parser returns; tap-ctl (xapi) prints them. */
export const STRERROR: Readonly<Record<number, string>> = {
  [ENOENT]: 'No such file or directory',
  [EINVAL]: 'Invalid argument',
  [ENOSYS]: 'Function not implemented',
  [ENAMETOOLONG]: 'File name too long',
};

export type ImageTypeResult =
  | { ok: true; type: DiskTypeInfo; path: string }
  | {
      ok: false;
      /** Negative errno, as tapdisk returns it. */
      err: number;
      errnoName: 'EINVAL' | 'ENAMETOOLONG' | 'ENOENT' | 'ENOSYS';
      /** What went wrong, naming the field and value. */
      reason: string;
      /**
       * Set when the real tapdisk would have opened this type but our emulator has no driver for it:
       * we answer with the error real tapdisk gives for a known type without a driver (ENOSYS).
       */
      emulatorLimitation?: true;
      /** xapi sets the path even on failure; Xen only on success. */
      path?: string;
    };

/**
 * tapdisk_disktype_find(): exact comparison against disk_info.name; -ENOSYS when the real tapdisk knows
 * the type but links no driver; -ENOENT otherwise.
 */
export function findDiskType(
  name: string,
  variant: TapdiskVariant,
): { ok: true; type: DiskTypeInfo } | { ok: false; err: number } {
  const found = diskTypes(variant).find((t) => t.name === name);
  if (!found) return { ok: false, err: -ENOENT };
  if (!found.hasDriver) return { ok: false, err: -ENOSYS };
  return { ok: true, type: found };
}

/**
 * Parses `type:path` as tapdisk does: split at the first ':', the path is everything after it
 * (further colons included); a type name longer than 31 bytes is -ENAMETOOLONG; no colon is -EINVAL.
 * Then applies the emulator's own limit: known types without an emulated driver fail with -ENOSYS.
 */
export function parseImageType(params: string, variant: TapdiskVariant = 'xen'): ImageTypeResult {
  const colon = params.indexOf(':');
  if (colon < 0) {
    return {
      ok: false,
      err: -EINVAL,
      errnoName: 'EINVAL',
      reason: `params '${params}': no ':' between type and path`,
    };
  }
  const name = params.slice(0, colon);
  const path = params.slice(colon + 1);
  if (new TextEncoder().encode(name).length > DISK_TYPE_NAME_MAX - 1) {
    return {
      ok: false,
      err: -ENAMETOOLONG,
      errnoName: 'ENAMETOOLONG',
      reason: `type '${name}': longer than ${DISK_TYPE_NAME_MAX - 1} bytes`,
    };
  }
  // strncpy into a zeroed buffer: a NUL inside the name ends it (cannot happen with C strings anyway).
  const found = findDiskType(name, variant);
  const pathOnFailure = variant === 'xapi' ? { path } : {};
  if (!found.ok) {
    if (found.err === -ENOSYS) {
      return {
        ok: false,
        err: -ENOSYS,
        errnoName: 'ENOSYS',
        reason: `type '${name}': known to tapdisk but it has no driver for it`,
        ...pathOnFailure,
      };
    }
    return {
      ok: false,
      err: -ENOENT,
      errnoName: 'ENOENT',
      reason: `type '${name}': unknown disk type`,
      ...pathOnFailure,
    };
  }
  if (!EMULATED_DRIVERS.has(found.type.name)) {
    return {
      ok: false,
      err: -ENOSYS,
      errnoName: 'ENOSYS',
      reason: `type '${name}': tapdisk has a driver for it, but this emulator implements only ${[...EMULATED_DRIVERS].join(', ')}`,
      emulatorLimitation: true,
      ...pathOnFailure,
    };
  }
  return { ok: true, type: found.type, path };
}

/**
 * tapdisk_vbd_parse_stack() (Xen): the OPEN path may stack drivers separated by '|', e.g.
 * `log:/x|aio:/srv/a.img`; empty tokens are skipped (strtok). Returns the stack in the order tapdisk
 * opens it (last token first), or the first error.
 */
export function parseDriverStack(
  params: string,
  variant: TapdiskVariant = 'xen',
): { ok: true; stack: { type: DiskTypeInfo; path: string }[] } | Extract<ImageTypeResult, { ok: false }> {
  const stack: { type: DiskTypeInfo; path: string }[] = [];
  for (const token of params.split('|')) {
    if (token === '') continue;
    const r = parseImageType(token, variant);
    if (!r.ok) return r;
    stack.unshift({ type: r.type, path: r.path });
  }
  return { ok: true, stack };
}
