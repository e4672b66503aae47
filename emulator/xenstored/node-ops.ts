/**
 * The node operations of tools/xenstored/core.c (read, write, mkdir, rm, get/set perms, directory)
 * applied to one store: the live one, or a transaction's private fork. Every failure throws an XsError
 * before the store is touched, so a failed request changes nothing.
 */

import { XsError } from './errors.js';
import { baseName, childPath, parentPath } from './paths.js';
import {
  type PermSubject,
  permForConn,
  XS_PERM_OWNER,
  XS_PERM_READ,
  XS_PERM_WRITE,
  type XsPerm,
} from './perms.js';
import type { XsQuotas } from './quotas.js';
import { accountedSize, type NodeStore, type XsNode } from './store.js';
import { ABSENT_GENERATION, type XsTransaction } from './transaction.js';

/**
 * A change that may fire watches. The permissions (and generations) the watchers are checked against
 * are taken when the change is made: nodes change in place, so later changes must not show through.
 */
export interface PendingEvent {
  name: string;
  /** Only watches set exactly on `name` (descendants removed with a subtree). */
  exact: boolean;
  perms: readonly XsPerm[];
  generation: number;
  /** The parent's, when the node has one. */
  parentPerms: readonly XsPerm[] | undefined;
  parentGeneration: number;
  /** SET_PERMS: the permissions before the change, so a watcher losing access still hears of it. */
  oldPerms?: readonly XsPerm[];
}

export function pendingEvent(
  name: string,
  exact: boolean,
  node: XsNode,
  parent: XsNode | undefined,
  oldPerms?: readonly XsPerm[],
): PendingEvent {
  return {
    name,
    exact,
    perms: node.perms,
    generation: node.generation,
    parentPerms: parent?.perms,
    parentGeneration: parent ? parent.generation : 0,
    oldPerms,
  };
}

/** What node operations need from the daemon. */
export interface NodeOpsEnv {
  quotas: XsQuotas;
  nextGeneration(): number;
  /** XSA-322: entry i of `perms` names a domain younger than the node (or gone). */
  permIgnored(perms: readonly XsPerm[], generation: number, index: number): boolean;
}

const EMPTY = new Uint8Array(0);

/** One request's view: who asks, on which store, inside which transaction. */
export class NodeAccess {
  readonly events: PendingEvent[] = [];

  constructor(
    private readonly env: NodeOpsEnv,
    readonly subject: PermSubject,
    readonly store: NodeStore,
    readonly tx: XsTransaction | undefined,
  ) {}

  private get unprivileged(): boolean {
    return !this.subject.privileged;
  }

  /** read_node(): in a transaction every node looked at is recorded for the commit-time check. */
  read(path: string): XsNode | undefined {
    const node = this.store.get(path);
    const tx = this.tx;
    if (tx && !tx.accessed.has(path)) {
      if (this.unprivileged && tx.accessed.size + 1 > this.env.quotas.transactionNodes) {
        tx.failed = true;
        throw new XsError(
          'ENOSPC',
          `transaction ${tx.id} accessed more than ${this.env.quotas.transactionNodes} nodes`,
        );
      }
      tx.accessed.set(path, node ? node.generation : ABSENT_GENERATION);
    }
    return node;
  }

  perm(node: XsNode): number {
    const perms = node.perms;
    // Only entries after the owner's can be ignored (XSA-322), and none matter to a privileged caller.
    if (this.subject.privileged || perms.length === 1) return permForConn(this.subject, perms);
    return permForConn(this.subject, perms, (i) => this.env.permIgnored(perms, node.generation, i));
  }

  /**
   * get_node() with errno_from_parents(): a missing or forbidden node answers ENOENT only if the caller
   * has the requested access on the nearest existing ancestor, EACCES otherwise.
   */
  node(name: string, mask: number): XsNode {
    const found = this.lookup(name, mask);
    if (typeof found === 'string') throw new XsError(found, name);
    return found;
  }

  /** Like node() but ENOENT is returned as undefined (WRITE/MKDIR/RM go on to create or ignore). */
  nodeOrMissing(name: string, mask: number): XsNode | undefined {
    const found = this.lookup(name, mask);
    if (found === 'ENOENT') return undefined;
    if (found === 'EACCES') throw new XsError(found, name);
    return found;
  }

  /** node() without the throw: absence is normal flow for WRITE, MKDIR and RM. */
  private lookup(name: string, mask: number): XsNode | 'ENOENT' | 'EACCES' {
    const node = this.read(name);
    let errno: 'ENOENT' | 'EACCES';
    if (node) {
      if ((this.perm(node) & mask) === mask) return node;
      errno = 'EACCES';
    } else {
      errno = 'ENOENT';
    }
    let ancestor: XsNode | undefined;
    let p = name;
    do {
      p = parentPath(p);
      ancestor = this.read(p);
    } while (!ancestor && p !== '/');
    const parentPerm = ancestor ? this.perm(ancestor) : 0;
    return parentPerm & mask ? errno : 'EACCES';
  }

  private checkSize(valueLength: number, permCount: number, childBytes: number, name: string): void {
    const size = accountedSize(valueLength, permCount, childBytes);
    if (this.unprivileged && size > this.env.quotas.nodeSize) {
      // write_node() failing inside a transaction dooms it (fail_transaction).
      if (this.tx) this.tx.failed = true;
      throw new XsError('ENOSPC', `node ${name} would be ${size} bytes, above ${this.env.quotas.nodeSize}`);
    }
  }

  /** create_node(): make `name` and any missing parents, perms copied from the parent. */
  create(name: string, value: Uint8Array): XsNode {
    const missing: string[] = [name];
    let parentName = parentPath(name);
    let parent = this.read(parentName);
    while (!parent) {
      if (parentName === '/') throw new XsError('EINVAL', 'store has no root');
      missing.push(parentName);
      parentName = parentPath(parentName);
      parent = this.read(parentName);
    }
    // Top-down perms: each new node copies its parent's list; unprivileged creators own what they make.
    let perms = parent.perms;
    const newPerms: (readonly XsPerm[])[] = [];
    for (let i = missing.length - 1; i >= 0; i--) {
      perms = this.unprivileged ? [{ ...perms[0], id: this.subject.domid }, ...perms.slice(1)] : perms;
      newPerms[i] = perms;
    }
    // Bottom-up checks, in C's order: node quota before each new node, then its size.
    let created = 0;
    for (let i = 0; i < missing.length; i++) {
      if (this.unprivileged && this.store.ownedBy(this.subject.domid) + created >= this.env.quotas.nodes) {
        throw new XsError(
          'ENOSPC',
          `domain ${this.subject.domid} owns ${this.env.quotas.nodes} nodes already`,
        );
      }
      // A missing parent will have exactly one child: the node below it on the way to `name`.
      const childBytes = i > 0 ? baseName(missing[i - 1]).length + 1 : 0;
      this.checkSize(i === 0 ? value.length : 0, newPerms[i].length, childBytes, missing[i]);
      created++;
    }
    const topName = baseName(missing[missing.length - 1]);
    this.checkSize(
      parent.value.length,
      parent.perms.length,
      parent.childBytes + topName.length + 1,
      parentName,
    );
    let node: XsNode | undefined;
    let nodeParent: XsNode = parent;
    for (let i = missing.length - 1; i >= 0; i--) {
      const leaf = {
        value: i === 0 ? value : EMPTY,
        perms: newPerms[i],
        generation: this.env.nextGeneration(),
      };
      const at = i === missing.length - 1 ? parentName : missing[i + 1];
      const made = this.store.create(at, baseName(missing[i]), leaf, this.env.nextGeneration());
      if (i === 0) node = made;
      else nodeParent = made;
    }
    // The direct parent of `name` as it is now (its generation moved when the child was added).
    if (missing.length === 1) nodeParent = this.store.get(parentName)!;
    this.events.push(pendingEvent(name, false, node!, nodeParent));
    return node!;
  }

  write(name: string, value: Uint8Array): void {
    const node = this.nodeOrMissing(name, XS_PERM_WRITE);
    if (!node) {
      this.create(name, value);
      return;
    }
    this.checkSize(value.length, node.perms.length, node.childBytes, name);
    const updated = this.store.update(name, { value, generation: this.env.nextGeneration() });
    this.events.push(pendingEvent(name, false, updated, this.store.get(parentPath(name))));
  }

  mkdir(name: string): void {
    if (!this.nodeOrMissing(name, XS_PERM_WRITE)) this.create(name, EMPTY);
  }

  rm(name: string): void {
    const node = this.nodeOrMissing(name, XS_PERM_WRITE);
    if (!node) {
      // Absent already: fine if the parent exists (do_rm).
      if (this.read(parentPath(name))) return;
      throw new XsError('ENOENT', name);
    }
    if (name === '/') throw new XsError('EINVAL', 'the root node cannot be removed');
    const parent = this.read(parentPath(name));
    if (!parent) throw new XsError('EINVAL', `parent of ${name} missing`);
    // delnode_sub(): children first (in order); the removed root fires for its ancestors too,
    // descendants only for watches set exactly on them.
    const visit = (n: XsNode, path: string, p: XsNode): void => {
      for (const [childName, child] of n.children) visit(child, childPath(path, childName), n);
      this.events.push(pendingEvent(path, path !== name, n, p));
    };
    visit(node, name, parent);
    this.store.remove(parentPath(name), baseName(name), this.env.nextGeneration());
  }

  setPerms(name: string, perms: XsPerm[]): void {
    const node = this.node(name, XS_PERM_WRITE | XS_PERM_OWNER);
    if (this.unprivileged && perms[0].id !== node.perms[0].id) {
      throw new XsError('EPERM', `only a privileged domain may change the owner of ${name}`);
    }
    this.checkSize(node.value.length, perms.length, node.childBytes, name);
    const oldPerms = node.perms;
    const updated = this.store.update(name, { perms, generation: this.env.nextGeneration() });
    const parent = name.startsWith('@') ? this.store.get('/') : this.store.get(parentPath(name));
    this.events.push(pendingEvent(name, false, updated, parent, oldPerms));
  }

  readValue(name: string): Uint8Array {
    return this.node(name, XS_PERM_READ).value;
  }

  getPerms(name: string): readonly XsPerm[] {
    return this.node(name, XS_PERM_READ).perms;
  }

  directory(name: string): XsNode {
    return this.node(name, XS_PERM_READ);
  }
}
