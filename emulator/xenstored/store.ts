/**
 * The node store: an immutable tree with path copying, so that a transaction's snapshot is one root
 * pointer and a failed operation leaves nothing behind. Each node carries its value, its permission list
 * and the generation count of its last modification (as C xenstored's node_hdr.generation), which is
 * what transaction conflict checks compare.
 *
 * The special nodes "@introduceDomain" and "@releaseDomain" live beside the tree, as in C xenstored,
 * so that their permissions can be changed with SET_PERMS.
 */

import { childPath, pathComponents } from './paths.js';
import type { XsPerm } from './perms.js';

export interface XsNode {
  readonly value: Uint8Array;
  readonly perms: readonly XsPerm[];
  /** Children in creation order (C xenstored appends new names to the child list). */
  readonly children: ReadonlyMap<string, XsNode>;
  readonly generation: number;
}

/** Size C xenstored charges against the node-size quota: node_hdr (16) + 8 per perm + data + child names. */
export function nodeAccountedSize(n: {
  value: Uint8Array;
  perms: readonly XsPerm[];
  children: ReadonlyMap<string, unknown>;
}): number {
  let childlen = 0;
  for (const name of n.children.keys()) childlen += name.length + 1;
  return 16 + 8 * n.perms.length + n.value.length + childlen;
}

export function childListBytes(n: XsNode): number {
  let len = 0;
  for (const name of n.children.keys()) len += name.length + 1;
  return len;
}

export const SPECIAL_PATHS = ['@introduceDomain', '@releaseDomain'] as const;

export class NodeStore {
  constructor(
    public root: XsNode,
    public specials: ReadonlyMap<string, XsNode>,
    /** Nodes owned per domid (perms[0].id), C xenstored's ACC_NODES. */
    public owned: Map<number, number>,
  ) {}

  static initial(generation: () => number): NodeStore {
    const perms: XsPerm[] = [{ id: 0, perm: 'n' }];
    const leaf = (): XsNode => ({
      value: new Uint8Array(0),
      perms,
      children: new Map(),
      generation: generation(),
    });
    // setup_structure(): "/", "/tool", "/tool/xenstored" and the two special nodes, all owned by dom0.
    const xenstored = leaf();
    const tool: XsNode = { ...leaf(), children: new Map([['xenstored', xenstored]]) };
    const root: XsNode = { ...leaf(), children: new Map([['tool', tool]]) };
    const specials = new Map<string, XsNode>(SPECIAL_PATHS.map((p) => [p, leaf()]));
    return new NodeStore(root, specials, new Map([[0, 5]]));
  }

  fork(): NodeStore {
    return new NodeStore(this.root, this.specials, new Map(this.owned));
  }

  adopt(other: NodeStore): void {
    this.root = other.root;
    this.specials = other.specials;
    this.owned = other.owned;
  }

  get(path: string): XsNode | undefined {
    if (path.startsWith('@')) return this.specials.get(path);
    // Walk the components in place (no split: every request looks up several paths).
    let n: XsNode | undefined = this.root;
    if (path === '/') return n;
    for (let start = 1; ; ) {
      const slash = path.indexOf('/', start);
      n = n.children.get(slash < 0 ? path.slice(start) : path.slice(start, slash));
      if (!n || slash < 0) return n;
      start = slash + 1;
    }
  }

  ownedBy(domid: number): number {
    return this.owned.get(domid) ?? 0;
  }

  private count(domid: number, delta: number): void {
    const v = (this.owned.get(domid) ?? 0) + delta;
    if (v === 0) this.owned.delete(domid);
    else this.owned.set(domid, v);
  }

  /** Replace an existing node's value, perms or generation; its children stay as they are. */
  update(
    path: string,
    change: { value?: Uint8Array; perms?: readonly XsPerm[]; generation: number },
  ): XsNode {
    const old = this.get(path);
    if (!old) throw new Error(`store: update of missing node ${path}`);
    const node: XsNode = {
      value: change.value ?? old.value,
      perms: change.perms ?? old.perms,
      children: old.children,
      generation: change.generation,
    };
    this.count(old.perms[0].id, -1);
    this.count(node.perms[0].id, 1);
    if (path.startsWith('@')) {
      const s = new Map(this.specials);
      s.set(path, node);
      this.specials = s;
    } else {
      this.root = replaceAt(this.root, pathComponents(path), 0, () => node);
    }
    return node;
  }

  /** Add a leaf under an existing parent; the parent's child list changes, so it gets `parentGeneration`. */
  create(path: string, node: XsNode, parentGeneration: number): void {
    const comps = pathComponents(path);
    const name = comps.pop()!;
    this.root = replaceAt(this.root, comps, 0, (parent) => {
      const children = new Map(parent.children);
      children.set(name, node);
      return { value: parent.value, perms: parent.perms, children, generation: parentGeneration };
    });
    this.count(node.perms[0].id, 1);
  }

  /** Remove a node with its subtree; the parent's child list changes, so it gets `parentGeneration`. */
  remove(path: string, parentGeneration: number): void {
    const old = this.get(path);
    if (!old) throw new Error(`store: remove of missing node ${path}`);
    walkSubtree(old, path, (n) => this.count(n.perms[0].id, -1));
    const comps = pathComponents(path);
    const name = comps.pop()!;
    this.root = replaceAt(this.root, comps, 0, (parent) => {
      const children = new Map(parent.children);
      children.delete(name);
      return { value: parent.value, perms: parent.perms, children, generation: parentGeneration };
    });
  }
}

/** Rebuild the spine from `n` down to comps[i..]; `change` makes the new node at the end of the path. */
function replaceAt(n: XsNode, comps: string[], i: number, change: (old: XsNode) => XsNode): XsNode {
  if (i === comps.length) return change(n);
  const child = n.children.get(comps[i]);
  if (!child) throw new Error(`store: node /${comps.slice(0, i + 1).join('/')} missing`);
  const children = new Map(n.children);
  children.set(comps[i], replaceAt(child, comps, i + 1, change));
  return { value: n.value, perms: n.perms, children, generation: n.generation };
}

/** Pre-order walk (parents before children, children in creation order). */
export function walkSubtree(n: XsNode, path: string, visit: (n: XsNode, path: string) => void): void {
  visit(n, path);
  for (const [name, child] of n.children) walkSubtree(child, childPath(path, name), visit);
}

/** Post-order walk: children (in order) before their parent, as C xenstored's rm visits them. */
export function walkSubtreePost(n: XsNode, path: string, visit: (n: XsNode, path: string) => void): void {
  for (const [name, child] of n.children) walkSubtreePost(child, childPath(path, name), visit);
  visit(n, path);
}
