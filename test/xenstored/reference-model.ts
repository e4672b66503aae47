/**
 * A deliberately simple reference model of the xenstore tree for property tests: a flat map from path
 * to node, written from docs/misc/xenstore.txt and protocol.md section 6.4, sharing no code with the
 * daemon. Replies are the value read, "OK", or an errno name.
 */
export interface ModelNode {
  value: string;
  perms: string[]; // "n0", "r5", ...
}

export type ModelTree = Map<string, ModelNode>;

const parentOf = (p: string) => (p.lastIndexOf('/') <= 0 ? '/' : p.slice(0, p.lastIndexOf('/')));

export function initialModel(): ModelTree {
  const t: ModelTree = new Map();
  for (const p of ['/', '/tool', '/tool/xenstored']) t.set(p, { value: '', perms: ['n0'] });
  return t;
}

function access(
  t: ModelTree,
  path: string,
  domid: number,
): { read: boolean; write: boolean; owner: boolean } {
  const n = t.get(path)!;
  if (domid === 0 || Number(n.perms[0].slice(1)) === domid) return { read: true, write: true, owner: true };
  const entry = n.perms.slice(1).find((p) => Number(p.slice(1)) === domid) ?? n.perms[0];
  const l = entry[0];
  return { read: l === 'r' || l === 'b', write: l === 'w' || l === 'b', owner: false };
}

/** ENOENT only if the nearest existing ancestor grants the wanted access, else EACCES. */
function missingError(t: ModelTree, path: string, domid: number, want: 'read' | 'write'): string {
  let p = path;
  do p = parentOf(p);
  while (!t.has(p));
  return access(t, p, domid)[want] ? 'ENOENT' : 'EACCES';
}

function check(t: ModelTree, path: string, domid: number, want: 'read' | 'write'): string | undefined {
  if (!t.has(path)) return missingError(t, path, domid, want);
  // An existing node the caller may not use is EACCES whatever the parents say.
  return access(t, path, domid)[want] ? undefined : 'EACCES';
}

export function modelRead(t: ModelTree, path: string, domid: number): string {
  return check(t, path, domid, 'read') ?? t.get(path)!.value;
}

export function modelDirectory(t: ModelTree, path: string, domid: number): string {
  const err = check(t, path, domid, 'read');
  if (err) return err;
  // Children in creation order: the map keeps insertion order.
  const prefix = path === '/' ? '/' : `${path}/`;
  return [...t.keys()]
    .filter((k) => k !== path && k.startsWith(prefix) && !k.slice(prefix.length).includes('/'))
    .map((k) => k.slice(prefix.length))
    .join(',');
}

export function modelWrite(t: ModelTree, path: string, value: string | undefined, domid: number): string {
  const err = check(t, path, domid, 'write');
  if (err === undefined) {
    if (value !== undefined) t.get(path)!.value = value;
    return 'OK';
  }
  if (err !== 'ENOENT') return err;
  const missing: string[] = [];
  for (let p = path; !t.has(p); p = parentOf(p)) missing.unshift(p);
  for (const p of missing) {
    const parentPerms = t.get(parentOf(p))!.perms;
    const perms = domid === 0 ? [...parentPerms] : [`${parentPerms[0][0]}${domid}`, ...parentPerms.slice(1)];
    t.set(p, { value: p === path ? (value ?? '') : '', perms });
  }
  return 'OK';
}

export function modelRm(t: ModelTree, path: string, domid: number): string {
  const err = check(t, path, domid, 'write');
  if (err === 'ENOENT') return t.has(parentOf(path)) ? 'OK' : 'ENOENT';
  if (err) return err;
  for (const k of [...t.keys()]) if (k === path || k.startsWith(`${path}/`)) t.delete(k);
  return 'OK';
}

export function modelSetPerms(t: ModelTree, path: string, perms: string[], domid: number): string {
  if (!t.has(path)) return missingError(t, path, domid, 'write');
  const a = access(t, path, domid);
  if (!(a.write && a.owner)) return 'EACCES';
  if (domid !== 0 && perms[0].slice(1) !== t.get(path)!.perms[0].slice(1)) return 'EPERM';
  t.get(path)!.perms = [...perms];
  return 'OK';
}

export function cloneModel(t: ModelTree): ModelTree {
  return new Map([...t].map(([k, v]) => [k, { value: v.value, perms: [...v.perms] }]));
}

export function dumpModel(t: ModelTree): string[] {
  return [...t].map(([k, v]) => `${k}=${v.value} ${v.perms.join(',')}`).sort();
}
