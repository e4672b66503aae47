/**
 * Node permissions as C xenstored keeps them (tools/xenstored/core.c perm_for_conn, xs_lib.c
 * xenstore_strings_to_perms): a list whose first entry names the owner and the default access for
 * every domain not listed later.
 */
import { XsError } from './errors.js';

/** XS_PERM_* bits (xen/include/xen-tools/xenstore-common.h). */
export const XS_PERM_NONE = 0;
export const XS_PERM_READ = 1;
export const XS_PERM_WRITE = 2;
export const XS_PERM_OWNER = 8;

export type XsPermLetter = 'n' | 'r' | 'w' | 'b';

export interface XsPerm {
  readonly id: number;
  readonly perm: XsPermLetter;
  /** XS_PERM_IGNORE: the entry names a domain that did not exist when it was set; it grants nothing. */
  readonly ignore?: boolean;
}

const LETTER_BITS: Record<XsPermLetter, number> = {
  n: XS_PERM_NONE,
  r: XS_PERM_READ,
  w: XS_PERM_WRITE,
  b: 3,
};

export function permBits(letter: XsPermLetter): number {
  return LETTER_BITS[letter];
}

export function formatPerm(p: XsPerm): string {
  return `${p.perm}${p.id}`;
}

/**
 * Parse one "r5" style entry. Like xenstore_strings_to_perms: the letter must be one of n/r/w/b and a
 * number must follow. Simplified: only decimal domids 0..65535 (strtol would also take hex and signs).
 */
export function parsePerm(s: string): XsPerm {
  const m = /^([nrwb])(\d{1,5})$/.exec(s);
  if (!m) throw new XsError('EINVAL', `permission "${s}" is not n|r|w|b followed by a decimal domid`);
  const id = Number(m[2]);
  if (id > 0xffff) throw new XsError('EINVAL', `permission "${s}": domid ${id} above 65535`);
  return { id, perm: m[1] as XsPermLetter };
}

export function parsePerms(list: readonly string[]): XsPerm[] {
  return list.map(parsePerm);
}

export interface PermSubject {
  readonly domid: number;
  /** dom0 or an explicitly privileged domain: full access everywhere. */
  readonly privileged: boolean;
  /** SET_TARGET: a device-model domain acts with the rights of its target as well. */
  readonly target?: number;
}

/**
 * The access bits a connection has on a node. `ignored(i)` says whether entry i (i >= 1) names a domain
 * that no longer exists or is younger than the node (XSA-322: such entries must not grant anything).
 */
export function permForConn(
  subject: PermSubject,
  perms: readonly XsPerm[],
  ignored: (index: number) => boolean = NONE_IGNORED,
): number {
  if (subject.privileged || isSubject(subject, perms[0].id)) return XS_PERM_ALL;
  for (let i = 1; i < perms.length; i++) {
    if (!perms[i].ignore && isSubject(subject, perms[i].id) && !ignored(i)) return permBits(perms[i].perm);
  }
  return permBits(perms[0].perm);
}

/** Read, write and owner: what the owner or a privileged connection has. */
export const XS_PERM_ALL = XS_PERM_READ | XS_PERM_WRITE | XS_PERM_OWNER;

const NONE_IGNORED = (): boolean => false;

function isSubject(subject: PermSubject, id: number): boolean {
  return id === subject.domid || (subject.target !== undefined && id === subject.target);
}
