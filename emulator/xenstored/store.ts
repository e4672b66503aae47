/**
 * The node store. Transactions need snapshot isolation (a transaction reads the tree as it was at
 * TRANSACTION_START), so the tree is shared between the live store and the transactions' forks and
 * copied on write: each store has an ownership token, a node carrying the store's token belongs to
 * that store alone and is changed in place, any other node is shared and is copied (with the path down
 * to it) before its first change. fork() gives both sides fresh tokens, so everything existing at that
 * moment becomes shared. With no transaction open the live store changes its nodes in place.
 *
 * Each node carries its value, its permission list and the generation count of its last modification
 * (as C xenstored's node_hdr.generation), which is what transaction conflict checks compare.
 *
 * The special nodes "@introduceDomain" and "@releaseDomain" live beside the tree, as in C xenstored,
 * so that their permissions can be changed with SET_PERMS.
 */

import { cachedComponents, childPath } from './paths.js';
import type { XsPerm } from './perms.js';

/** A node as seen outside the store: read only, valid until the next change of that store. */
export interface XsNode {
  readonly value: Uint8Array;
  readonly perms: readonly XsPerm[];
  /** Children in creation order (C xenstored appends new names to the child list). */
  readonly children: ReadonlyMap<string, XsNode>;
  readonly generation: number;
  /** Bytes of the child list as C stores it: each name plus its NUL. */
  readonly childBytes: number;
}

class StoreNode implements XsNode {
  constructor(
    public value: Uint8Array,
    public perms: readonly XsPerm[],
    public children: Map<string, StoreNode>,
    public generation: number,
    public childBytes: number,
    /** The token of the store that may change this node in place. */
    public owner: number,
  ) {}
}

/** node_hdr (16) + 8 per perm + data + child names: what C xenstored charges against the node-size quota. */
export function accountedSize(valueLength: number, permCount: number, childBytes: number): number {
  return 16 + 8 * permCount + valueLength + childBytes;
}

export const SPECIAL_PATHS = ['@introduceDomain', '@releaseDomain'] as const;

let lastToken = 0;

export class NodeStore {
  private token = ++lastToken;
  /** False while the specials map or the owner counts are shared with a fork (copied on change). */
  private specialsOwned = true;
  private countsOwned = true;

  private constructor(
    private rootNode: StoreNode,
    private specialNodes: Map<string, StoreNode>,
    /** Nodes owned per domid (perms[0].id), C xenstored's ACC_NODES. */
    private owned: Map<number, number>,
  ) {}

  static initial(generation: () => number): NodeStore {
    const perms: XsPerm[] = [{ id: 0, perm: 'n' }];
    const leaf = (): StoreNode => new StoreNode(new Uint8Array(0), perms, new Map(), generation(), 0, 0);
    // setup_structure(): "/", "/tool", "/tool/xenstored" and the two special nodes, all owned by dom0.
    const xenstored = leaf();
    const tool = leaf();
    const root = leaf();
    const specials = new Map<string, StoreNode>(SPECIAL_PATHS.map((p) => [p, leaf()]));
    const store = new NodeStore(root, specials, new Map([[0, 5]]));
    for (const n of [xenstored, tool, root, ...specials.values()]) n.owner = store.token;
    addChild(tool, 'xenstored', xenstored);
    addChild(root, 'tool', tool);
    return store;
  }

  get root(): XsNode {
    return this.rootNode;
  }

  get specials(): ReadonlyMap<string, XsNode> {
    return this.specialNodes;
  }

  /** A snapshot that shares every node with this store; either side copies a node before changing it. */
  fork(): NodeStore {
    const f = new NodeStore(this.rootNode, this.specialNodes, this.owned);
    f.specialsOwned = false;
    f.countsOwned = false;
    this.token = ++lastToken;
    this.specialsOwned = false;
    this.countsOwned = false;
    return f;
  }

  /** Take over a fork's contents (its nodes stay changeable in place: the fork is not used again). */
  adopt(other: NodeStore): void {
    this.rootNode = other.rootNode;
    this.specialNodes = other.specialNodes;
    this.owned = other.owned;
    this.token = other.token;
    this.specialsOwned = other.specialsOwned;
    this.countsOwned = other.countsOwned;
    other.token = ++lastToken;
    other.specialsOwned = false;
    other.countsOwned = false;
  }

  get(path: string): XsNode | undefined {
    return this.find(path);
  }

  private find(path: string): StoreNode | undefined {
    if (path.charCodeAt(0) === 64 /* @ */) return this.specialNodes.get(path);
    let n: StoreNode | undefined = this.rootNode;
    for (const name of cachedComponents(path)) {
      n = n.children.get(name);
      if (n === undefined) return undefined;
    }
    return n;
  }

  ownedBy(domid: number): number {
    return this.owned.get(domid) ?? 0;
  }

  private count(domid: number, delta: number): void {
    if (!this.countsOwned) {
      this.owned = new Map(this.owned);
      this.countsOwned = true;
    }
    const v = (this.owned.get(domid) ?? 0) + delta;
    if (v === 0) this.owned.delete(domid);
    else this.owned.set(domid, v);
  }

  /** Take a subtree's nodes off their owners' counts. */
  private uncount(n: XsNode): void {
    this.count(n.perms[0].id, -1);
    for (const child of n.children.values()) this.uncount(child);
  }

  /** This store's own copy of `n` (n itself when already owned). */
  private own(n: StoreNode): StoreNode {
    if (n.owner === this.token) return n;
    return new StoreNode(n.value, n.perms, new Map(n.children), n.generation, n.childBytes, this.token);
  }

  /** The node at `path` made changeable: it and every ancestor owned by this store. */
  private ownPath(path: string): StoreNode {
    let n = this.own(this.rootNode);
    this.rootNode = n;
    const comps = cachedComponents(path);
    for (let i = 0; i < comps.length; i++) {
      const child = n.children.get(comps[i]);
      if (child === undefined) throw new Error(`store: node /${comps.slice(0, i + 1).join('/')} missing`);
      const mine = this.own(child);
      // Replacing an existing key keeps its place in the child order.
      if (mine !== child) n.children.set(comps[i], mine);
      n = mine;
    }
    return n;
  }

  private ownSpecial(path: string): StoreNode {
    const old = this.specialNodes.get(path);
    if (!old) throw new Error(`store: update of missing node ${path}`);
    if (old.owner === this.token) return old;
    if (!this.specialsOwned) {
      this.specialNodes = new Map(this.specialNodes);
      this.specialsOwned = true;
    }
    const mine = this.own(old);
    this.specialNodes.set(path, mine);
    return mine;
  }

  /** Replace an existing node's value, perms or generation; its children stay as they are. */
  update(
    path: string,
    change: { value?: Uint8Array; perms?: readonly XsPerm[]; generation: number },
  ): XsNode {
    const node = path.charCodeAt(0) === 64 ? this.ownSpecial(path) : this.ownPath(path);
    const oldOwner = node.perms[0].id;
    if (change.value !== undefined) node.value = change.value;
    if (change.perms !== undefined) node.perms = change.perms;
    node.generation = change.generation;
    if (node.perms[0].id !== oldOwner) {
      this.count(oldOwner, -1);
      this.count(node.perms[0].id, 1);
    }
    return node;
  }

  /**
   * Add a leaf under an existing parent; the parent's child list changes, so it gets `parentGeneration`.
   * Returns the new node.
   */
  create(
    parent: string,
    name: string,
    leaf: { value: Uint8Array; perms: readonly XsPerm[]; generation: number },
    parentGeneration: number,
  ): XsNode {
    const p = this.ownPath(parent);
    if (p.children.has(name)) throw new Error(`store: node ${childPath(parent, name)} exists already`);
    const node = new StoreNode(leaf.value, leaf.perms, new Map(), leaf.generation, 0, this.token);
    addChild(p, name, node);
    p.generation = parentGeneration;
    this.count(node.perms[0].id, 1);
    return node;
  }

  /** Remove a node with its subtree; the parent's child list changes, so it gets `parentGeneration`. */
  remove(parent: string, name: string, parentGeneration: number): void {
    const path = childPath(parent, name);
    const old = this.find(path);
    if (!old) throw new Error(`store: remove of missing node ${path}`);
    this.uncount(old);
    const p = this.ownPath(parent);
    p.children.delete(name);
    p.childBytes -= name.length + 1;
    p.generation = parentGeneration;
  }
}

function addChild(parent: StoreNode, name: string, child: StoreNode): void {
  parent.children.set(name, child);
  parent.childBytes += name.length + 1;
}

/** Pre-order walk (parents before children, children in creation order). */
export function walkSubtree(n: XsNode, path: string, visit: (n: XsNode, path: string) => void): void {
  visit(n, path);
  for (const [name, child] of n.children) walkSubtree(child, childPath(path, name), visit);
}
