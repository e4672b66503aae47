/**
 * Xenstore path rules (tools/xenstored/core.c canonicalize, valid_chars; docs/misc/xenstore.txt).
 */
import { XsError } from './errors.js';

/** valid_chars(): A-Z a-z 0-9 - / _ @, indexed by char code. */
const VALID_CHAR: readonly boolean[] = (() => {
  const t: boolean[] = new Array(128).fill(false);
  for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-/_@')
    t[c.charCodeAt(0)] = true;
  return t;
})();
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
  // One pass over the chars (this runs for every request): the character set, and "//" on the way.
  let valid = true;
  let doubleSlash = false;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 47 /* / */) {
      if (i > 0 && path.charCodeAt(i - 1) === 47) doubleSlash = true;
    } else if (!VALID_CHAR[c]) {
      valid = false;
      break;
    }
  }
  if (!valid) throw new XsError('EINVAL', `path "${path}" has a character outside A-Z a-z 0-9 - / _ @`);
  const first = path.charCodeAt(0);
  if (first === 64 /* @ */ && !o.allowSpecial) {
    throw new XsError('EINVAL', `special path "${path}" is only valid for watches and permissions`);
  }
  // A relative path joins the home with one "/" (it does not start with one), so "//" and a trailing
  // "/" show in the name exactly when they are in the path, or when the relative path is empty.
  const name = first === 47 || first === 64 ? path : `${domainPath(o.domid)}/${path}`;
  if (name.charCodeAt(name.length - 1) === 47 && name !== '/')
    throw new XsError('EINVAL', `path "${name}" ends in "/"`);
  if (doubleSlash) throw new XsError('EINVAL', `path "${name}" contains "//"`);
  if (o.pathMax !== undefined) {
    const m = LOCAL_PREFIX.exec(name);
    const counted = m && Number(m[1]) <= 65535 ? name.length - m[0].length : name.length;
    if (counted > o.pathMax) {
      throw new XsError(
        'EINVAL',
        `path "${name.slice(0, 40)}..." is ${counted} characters, above ${o.pathMax}`,
      );
    }
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

const COMPONENT_CACHE_LIMIT = 8192;
const componentCache = new Map<string, readonly string[]>();

/**
 * pathComponents() remembered per path (a pure function, so nothing can go stale): a request walks the
 * tree for the same few paths several times, and reusing the component strings saves slicing them and
 * hashing the slices on every walk. The memo is dropped whole when it reaches its size limit.
 */
export function cachedComponents(path: string): readonly string[] {
  let comps = componentCache.get(path);
  if (comps === undefined) {
    if (componentCache.size >= COMPONENT_CACHE_LIMIT) componentCache.clear();
    comps = pathComponents(path);
    componentCache.set(path, comps);
  }
  return comps;
}
