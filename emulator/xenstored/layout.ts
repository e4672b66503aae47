/**
 * The standard xenstore layout a toolstack builds (tools/libs/light/libxl_create.c libxl__domain_make,
 * docs/misc/xenstore-paths.pandoc) and the vbd device-id encoding (docs/man/xen-vbd-interface.7.pandoc).
 */
import type { XsClient } from './client.js';
import { domainPath } from './paths.js';
import type { XsPerm } from './perms.js';

export interface DomainLayoutOptions {
  domid: number;
  name: string;
  /** /vm/<uuid>; a deterministic one is derived from the domid when omitted. */
  uuid?: string;
}

export function defaultUuid(domid: number): string {
  return `00000000-0000-0000-0000-${domid.toString(16).padStart(12, '0')}`;
}

/** libxl's "roperm": dom0 owns, the guest may read. */
export function guestReadOnlyPerms(domid: number): XsPerm[] {
  return [
    { id: 0, perm: 'n' },
    { id: domid, perm: 'r' },
  ];
}

/** libxl's "rwperm": the guest owns (and so may write); nobody else reads. */
export function guestOwnedPerms(domid: number): XsPerm[] {
  return [{ id: domid, perm: 'n' }];
}

/**
 * What libxl__domain_make and libxl__build_post write for a new guest, in one transaction (retried on
 * EAGAIN): /local/domain/N (read-only to the guest) with vm, name, domid, control/ (read-only) and
 * control/shutdown, device/, data/, drivers/, feature/, attr/, error/ (guest-owned), /vm/<uuid>, /libxl/N.
 * `client` must be privileged.
 */
export function createDomainLayout(client: XsClient, o: DomainLayoutOptions): void {
  const dom = domainPath(o.domid);
  const uuid = o.uuid ?? defaultUuid(o.domid);
  const vm = `/vm/${uuid}`;
  const ro = guestReadOnlyPerms(o.domid);
  const rw = guestOwnedPerms(o.domid);
  client.transaction((tx) => {
    // libxl__xs_mknod(): mkdir then set the permissions.
    const mknod = (path: string, perms: XsPerm[]) => {
      client.mkdir(path, tx);
      client.setPerms(path, perms, tx);
    };
    // A stale tree from an earlier domain with this id goes first (libxl ignores xs_rm's result).
    client.tryRm(dom, tx);
    mknod(dom, ro);
    client.tryRm(vm, tx);
    mknod(vm, ro);
    client.write(`${dom}/vm`, vm, tx);
    mknod(`${dom}/device`, rw);
    mknod(`${dom}/control`, ro);
    mknod(`${dom}/control/shutdown`, rw);
    mknod(`${dom}/data`, rw);
    mknod(`${dom}/drivers`, rw);
    mknod(`${dom}/feature`, rw);
    mknod(`${dom}/attr`, rw);
    mknod(`${dom}/error`, rw);
    client.write(`${vm}/uuid`, uuid, tx);
    client.write(`${vm}/name`, o.name, tx);
    client.write(`${dom}/name`, o.name, tx);
    client.write(`${dom}/domid`, String(o.domid), tx);
    mknod(`/libxl/${o.domid}`, [{ id: 0, perm: 'n' }]);
  });
}

/** dom0's own entries and its backend/ directory (owned by dom0, private). */
export function createDom0Layout(client: XsClient, name = 'Domain-0'): void {
  client.transaction((tx) => {
    client.write('/local/domain/0/name', name, tx);
    client.write('/local/domain/0/domid', '0', tx);
    client.mkdir('/local/domain/0/backend', tx);
    client.setPerms('/local/domain/0/backend', [{ id: 0, perm: 'n' }], tx);
  });
}

/** What libxl removes when a domain is destroyed: its home, /vm/<uuid> and /libxl/N. */
export function destroyDomainLayout(client: XsClient, domid: number): void {
  client.transaction((tx) => {
    const vm = client.tryRead(`${domainPath(domid)}/vm`, tx);
    client.tryRm(domainPath(domid), tx);
    if (vm?.startsWith('/vm/')) client.tryRm(vm, tx);
    client.tryRm(`/libxl/${domid}`, tx);
  });
}

export function vbdFrontendPath(frontDomid: number, devid: number): string {
  return `${domainPath(frontDomid)}/device/vbd/${devid}`;
}

/** kind: "vbd" (blkback), "vbd3" (tapback), "qdisk" (QEMU), "tap" (legacy blktap). */
export function vbdBackendPath(backDomid: number, frontDomid: number, devid: number, kind = 'vbd'): string {
  return `${domainPath(backDomid)}/backend/${kind}/${frontDomid}/${devid}`;
}

// ---------------------------------------------------------------------------------------------
// vbd device ids (xen-vbd-interface.7)

const XVD_MAJOR = 202;
const SD_MAJOR = 8;
const HD_MAJOR_01 = 3;
const HD_MAJOR_23 = 22;
const EXTENDED = 1 << 28;

export interface VbdName {
  prefix: 'xvd' | 'sd' | 'hd';
  disk: number;
  /** 0 = whole disk. */
  partition: number;
}

/** "a" -> 0, "z" -> 25, "aa" -> 26 (bijective base 26, as Linux names disks). */
function letterIndex(letters: string): number {
  let n = 0;
  for (const c of letters) n = n * 26 + (c.charCodeAt(0) - 96);
  return n - 1;
}

function indexLetters(disk: number): string {
  let s = '';
  for (let n = disk + 1; n > 0; n = Math.floor((n - 1) / 26))
    s = String.fromCharCode(97 + ((n - 1) % 26)) + s;
  return s;
}

export function parseVbdName(name: string): VbdName {
  const m = /^(xvd|sd|hd)([a-z]+)([1-9]\d*)?$/.exec(name);
  const d = /^d(\d+)(?:p(\d+))?$/.exec(name);
  if (d) return { prefix: 'xvd', disk: Number(d[1]), partition: d[2] ? Number(d[2]) : 0 };
  if (!m)
    throw new Error(
      `vbd name "${name}" is not xvd<letters>[N], sd<letters>[N], hd<letters>[N] or d<N>[p<N>]`,
    );
  return { prefix: m[1] as VbdName['prefix'], disk: letterIndex(m[2]), partition: m[3] ? Number(m[3]) : 0 };
}

/** Encode a disk name ("xvda", "xvdq", "sdb3", "hdc", "d0p1") or a decimal id as the vbd device id. */
export function vbdDeviceId(name: string): number {
  if (/^\d+$/.test(name)) {
    const id = Number(name);
    vbdDecode(id);
    return id;
  }
  const { prefix, disk, partition: part } = parseVbdName(name);
  const bad = (why: string) => new Error(`vbd name "${name}": ${why}`);
  switch (prefix) {
    case 'xvd':
      if (disk < 16 && part < 16) return (XVD_MAJOR << 8) | (disk << 4) | part;
      if (disk >= 1 << 20) throw bad(`disk ${disk} is beyond 2^20`);
      if (part > 255) throw bad(`partition ${part} is beyond 255`);
      return EXTENDED + disk * 256 + part;
    case 'sd':
      if (disk > 15 || part > 15) throw bad('sd disks and partitions are limited to 15');
      return (SD_MAJOR << 8) | (disk << 4) | part;
    case 'hd':
      if (disk > 3 || part > 63) throw bad('hd disks are limited to hda..hdd and partitions to 63');
      return disk < 2
        ? (HD_MAJOR_01 << 8) | (disk << 6) | part
        : (HD_MAJOR_23 << 8) | ((disk - 2) << 6) | part;
  }
}

/** Decode a vbd device id into its disk name parts. */
export function vbdDecode(id: number): VbdName {
  if (!Number.isInteger(id) || id < 0) throw new Error(`vbd device id ${id} is not a non-negative integer`);
  if (id >= 2 * EXTENDED) throw new Error(`vbd device id ${id} is in the reserved range >= 2^29`);
  if (id >= EXTENDED) return { prefix: 'xvd', disk: Math.floor((id - EXTENDED) / 256), partition: id & 0xff };
  const major = id >> 8;
  const minor = id & 0xff;
  if (major === XVD_MAJOR) return { prefix: 'xvd', disk: minor >> 4, partition: minor & 15 };
  if (major === SD_MAJOR) return { prefix: 'sd', disk: minor >> 4, partition: minor & 15 };
  if (major === HD_MAJOR_01 && minor < 128) return { prefix: 'hd', disk: minor >> 6, partition: minor & 63 };
  if (major === HD_MAJOR_23 && minor < 128)
    return { prefix: 'hd', disk: 2 + (minor >> 6), partition: minor & 63 };
  throw new Error(`vbd device id ${id}: major ${major} is not xvd (202), sd (8) or hd (3, 22)`);
}

export function vbdDeviceName(id: number): string {
  const v = vbdDecode(id);
  return `${v.prefix}${indexLetters(v.disk)}${v.partition ? v.partition : ''}`;
}
