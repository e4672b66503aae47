/**
 * One domain's file-name space: the directories, device nodes, sysfs attributes and unix-socket names
 * that drivers and processes create. Only what the block path needs is modelled: there are no regular
 * files (images live on the host file system) and no permissions.
 */
import { KernelError } from './errno.js';
import { compileComponentGlob, hasGlobMagic } from './glob.js';

/** NAME_MAX from include/uapi/linux/limits.h. */
export const NAME_MAX = 255;

export interface DirNode {
  readonly kind: 'dir';
  readonly children: Map<string, NamespaceNode>;
}

/** A device special file made by mknod(2) or by udev/devtmpfs after device_create(). */
export interface DeviceNode {
  readonly kind: 'chr' | 'blk';
  readonly major: number;
  readonly minor: number;
}

/** A sysfs attribute: reading calls `show`, writing calls `store` (either may block, as in Linux). */
export interface AttributeNode {
  readonly kind: 'attr';
  readonly show?: () => string | Promise<string>;
  readonly store?: (value: string) => void | Promise<void>;
}

/** The name a unix socket was bound to; `socket` is the bound socket object while it lives. */
export interface SocketNode {
  readonly kind: 'sock';
  socket: unknown;
}

export type NamespaceNode = DirNode | DeviceNode | AttributeNode | SocketNode;

/** Splits an absolute path into components, resolving "." and ".."; throws EINVAL/ENAMETOOLONG. */
export function splitPath(path: string): string[] {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new KernelError('EINVAL', `path "${String(path)}": must be absolute`);
  }
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else if (part.length > NAME_MAX) {
      throw new KernelError('ENAMETOOLONG', `path "${path}": component of ${part.length} characters`);
    } else out.push(part);
  }
  return out;
}

export function joinPath(parts: readonly string[]): string {
  return `/${parts.join('/')}`;
}

export class Namespace {
  private readonly root: DirNode = { kind: 'dir', children: new Map() };

  /** The node at `path`; throws ENOENT or ENOTDIR naming the path. */
  lookup(path: string): NamespaceNode {
    const parts = splitPath(path);
    let node: NamespaceNode = this.root;
    for (let i = 0; i < parts.length; i++) {
      if (node.kind !== 'dir') {
        throw new KernelError('ENOTDIR', `lookup ${path}: ${joinPath(parts.slice(0, i))} is not a directory`);
      }
      const next: NamespaceNode | undefined = node.children.get(parts[i]!);
      if (next === undefined) throw new KernelError('ENOENT', `lookup ${path}`);
      node = next;
    }
    return node;
  }

  exists(path: string): boolean {
    try {
      this.lookup(path);
      return true;
    } catch (e) {
      if (e instanceof KernelError && (e.code === 'ENOENT' || e.code === 'ENOTDIR')) return false;
      throw e;
    }
  }

  /** mkdir(2), or `mkdir -p` with `parents`. */
  mkdir(path: string, options: { parents?: boolean } = {}): void {
    const parts = splitPath(path);
    let dir = this.root;
    for (let i = 0; i < parts.length; i++) {
      const name = parts[i]!;
      const existing = dir.children.get(name);
      const last = i === parts.length - 1;
      if (existing === undefined) {
        if (!last && !options.parents) throw new KernelError('ENOENT', `mkdir ${path}`);
        const created: DirNode = { kind: 'dir', children: new Map() };
        dir.children.set(name, created);
        dir = created;
      } else if (existing.kind !== 'dir') {
        throw new KernelError(last ? 'EEXIST' : 'ENOTDIR', `mkdir ${path}`);
      } else if (last && !options.parents) {
        throw new KernelError('EEXIST', `mkdir ${path}`);
      } else dir = existing;
    }
  }

  /** mknod(2) for a character or block device node; the parent directory must exist. */
  mknod(path: string, kind: 'chr' | 'blk', major: number, minor: number): void {
    checkDevNumber(path, 'major', major);
    checkDevNumber(path, 'minor', minor);
    this.create(path, { kind, major, minor }, 'mknod');
  }

  /** Adds an attribute file (sysfs). */
  createAttribute(path: string, attr: Omit<AttributeNode, 'kind'>): void {
    this.create(path, { kind: 'attr', ...attr }, 'create attribute');
  }

  /** bind(2) of a unix socket: the name must not exist yet (EADDRINUSE otherwise, as Linux). */
  bindSocket(path: string, socket: unknown): SocketNode {
    const node: SocketNode = { kind: 'sock', socket };
    try {
      this.create(path, node, 'bind');
    } catch (e) {
      if (e instanceof KernelError && e.code === 'EEXIST')
        throw new KernelError('EADDRINUSE', `bind ${path}`);
      throw e;
    }
    return node;
  }

  /** unlink(2): removes a non-directory name. */
  unlink(path: string): void {
    const { dir, name } = this.parentOf(path, 'unlink');
    const node = dir.children.get(name);
    if (node === undefined) throw new KernelError('ENOENT', `unlink ${path}`);
    if (node.kind === 'dir') throw new KernelError('EISDIR', `unlink ${path}`);
    dir.children.delete(name);
  }

  /** rmdir(2): removes an empty directory. */
  rmdir(path: string): void {
    const { dir, name } = this.parentOf(path, 'rmdir');
    const node = dir.children.get(name);
    if (node === undefined) throw new KernelError('ENOENT', `rmdir ${path}`);
    if (node.kind !== 'dir') throw new KernelError('ENOTDIR', `rmdir ${path}`);
    if (node.children.size > 0) throw new KernelError('ENOTEMPTY', `rmdir ${path}`);
    dir.children.delete(name);
  }

  /** Removes a name and everything below it (sysfs device removal). */
  removeTree(path: string): void {
    const { dir, name } = this.parentOf(path, 'remove');
    if (!dir.children.has(name)) throw new KernelError('ENOENT', `remove ${path}`);
    dir.children.delete(name);
  }

  /** Names in a directory, sorted (readdir order is unspecified in Linux; sorted keeps runs reproducible). */
  list(path: string): string[] {
    const node = this.lookup(path);
    if (node.kind !== 'dir') throw new KernelError('ENOTDIR', `list ${path}`);
    return [...node.children.keys()].sort();
  }

  /**
   * glob(3) over absolute paths: every component may hold `*`, `?` or `[...]`. Returns the sorted
   * matching paths, or an empty list when nothing matches (GLOB_NOMATCH).
   */
  glob(pattern: string): string[] {
    const parts = splitPath(pattern);
    const results: string[] = [];
    const walk = (node: NamespaceNode, index: number, prefix: string[]): void => {
      if (index === parts.length) {
        results.push(joinPath(prefix));
        return;
      }
      if (node.kind !== 'dir') return;
      const part = parts[index]!;
      if (!hasGlobMagic(part)) {
        const child = node.children.get(part.replace(/\\(.)/g, '$1'));
        if (child !== undefined) walk(child, index + 1, [...prefix, part]);
        return;
      }
      const match = compileComponentGlob(part);
      for (const name of [...node.children.keys()].sort()) {
        if (match(name)) walk(node.children.get(name)!, index + 1, [...prefix, name]);
      }
    };
    walk(this.root, 0, []);
    return results.sort();
  }

  /** Reads an attribute (sysfs show). */
  async readAttribute(path: string): Promise<string> {
    const node = this.lookup(path);
    if (node.kind === 'dir') throw new KernelError('EISDIR', `read ${path}`);
    if (node.kind !== 'attr') throw new KernelError('EINVAL', `read ${path}: not an attribute`);
    if (node.show === undefined) throw new KernelError('EACCES', `read ${path}: write-only attribute`);
    return await node.show();
  }

  /** Writes an attribute (sysfs store). */
  async writeAttribute(path: string, value: string): Promise<void> {
    const node = this.lookup(path);
    if (node.kind === 'dir') throw new KernelError('EISDIR', `write ${path}`);
    if (node.kind !== 'attr') throw new KernelError('EINVAL', `write ${path}: not an attribute`);
    if (node.store === undefined) throw new KernelError('EACCES', `write ${path}: read-only attribute`);
    await node.store(value);
  }

  private create(path: string, node: NamespaceNode, op: string): void {
    const { dir, name } = this.parentOf(path, op);
    if (dir.children.has(name)) throw new KernelError('EEXIST', `${op} ${path}`);
    dir.children.set(name, node);
  }

  private parentOf(path: string, op: string): { dir: DirNode; name: string } {
    const parts = splitPath(path);
    if (parts.length === 0) throw new KernelError('EBUSY', `${op} /: the root cannot be changed`);
    const parentPath = joinPath(parts.slice(0, -1));
    let parent: NamespaceNode;
    try {
      parent = this.lookup(parentPath);
    } catch (e) {
      if (e instanceof KernelError) throw new KernelError(e.code, `${op} ${path}: parent ${parentPath}`);
      throw e;
    }
    if (parent.kind !== 'dir') throw new KernelError('ENOTDIR', `${op} ${path}: ${parentPath}`);
    return { dir: parent, name: parts[parts.length - 1]! };
  }
}

function checkDevNumber(path: string, field: string, value: number): void {
  // MINORBITS is 20 and majors fit in 12 bits (include/linux/kdev_t.h).
  const limit = field === 'major' ? 0xfff : 0xfffff;
  if (!Number.isInteger(value) || value < 0 || value > limit) {
    throw new KernelError('EINVAL', `mknod ${path}: ${field} ${value} outside 0..${limit}`);
  }
}
