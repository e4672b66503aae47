/**
 * Xenstore path rules (tools/xenstored/core.c canonicalize, valid_chars; docs/misc/xenstore.txt).
 */
import { XsError } from './errors.js';

const VALID = /^[A-Za-z0-9\-/_@]*$/;
const LOCAL_PREFIX = /^\/local\/domain\/(\d{1,5})\//;

/** The home of a domain: relative paths are resolved under it. */
export function domainPath(domid: number): string {
  return `/local/domain/${domid}`;
}

export interface CanonicalizeOptions {
  domid: number;
  /** Special "@..." watch paths allowed (WATCH, UNWATCH, GET_PERMS, SET_PERMS). */
  allowSpecial: boolean;
  /** Path length quota, or undefined when the caller is exempt (privileged). */
  pathMax: number | undefined;
}

/**
 * Turn a request path into the absolute name of the node, or throw EINVAL as C xenstored does.
 * The length check counts the path without a leading "/local/domain/<id>/" (XSA-323 rule).
 */
export function canonicalize(path: string, o: CanonicalizeOptions): string {
  if (!VALID.test(path))
    throw new XsError('EINVAL', `path "${path}" has a character outside A-Z a-z 0-9 - / _ @`);
  if (path.startsWith('@') && !o.allowSpecial) {
    throw new XsError('EINVAL', `special path "${path}" is only valid for watches and permissions`);
  }
  const name = path.startsWith('/') || path.startsWith('@') ? path : `${domainPath(o.domid)}/${path}`;
  if (name.endsWith('/') && name !== '/') throw new XsError('EINVAL', `path "${name}" ends in "/"`);
  if (name.includes('//')) throw new XsError('EINVAL', `path "${name}" contains "//"`);
  const m = LOCAL_PREFIX.exec(name);
  const counted = m && Number(m[1]) <= 65535 ? name.length - m[0].length : name.length;
  if (o.pathMax !== undefined && counted > o.pathMax) {
    throw new XsError(
      'EINVAL',
      `path "${name.slice(0, 40)}..." is ${counted} characters, above ${o.pathMax}`,
    );
  }
  return name;
}

/** get_parent(): "/" for top-level nodes (and for "/" itself). */
export function parentPath(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash <= 0 ? '/' : path.slice(0, slash);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/** watch.c is_child(): equal, or below; a watch on "/" sees every event (special ones too). */
export function isChildOrSelf(child: string, parent: string): boolean {
  if (parent === '/') return true;
  if (!child.startsWith(parent)) return false;
  return child.length === parent.length || child[parent.length] === '/';
}

/** Components of an absolute path ("/" has none). */
export function pathComponents(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}
