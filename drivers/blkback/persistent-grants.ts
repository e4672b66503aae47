/**
 * The per-ring persistent-grant cache (Linux blkback.c: get/add/put_persistent_gnt,
 * purge_persistent_gnt, free_persistent_gnts): grants the frontend keeps granted are mapped once and
 * reused. Bounded at `max` (1056) per ring; the purge drops 5 % of the unused ones when full, plus any
 * idle for 60 s, and never a grant a request is using.
 */
import { LRU_PERCENT_CLEAN, PERSISTENT_GRANT_UNUSED_MS } from './common.js';

export interface PersistentGrant {
  readonly gref: number;
  readonly handle: number;
  /** The writable mapping (persistent grants are always mapped read-write). */
  readonly page: Uint8Array;
  /** A request is using it now (Linux: the `active` bit). */
  active: boolean;
  lastUsed: number;
}

export type PersistentLookup =
  | { kind: 'hit'; grant: PersistentGrant }
  | { kind: 'miss' }
  /** "requesting a grant already in use": map it afresh, non-persistently. */
  | { kind: 'busy' };

export class PersistentGrants {
  private readonly grants = new Map<number, PersistentGrant>();
  /** Set once the cache filled up (vbd.overflow_max_grants): the purge then frees room. */
  overflow = false;

  constructor(readonly max: number) {}

  get count(): number {
    return this.grants.size;
  }

  /** Grants marked active. */
  get inUse(): number {
    let n = 0;
    for (const g of this.grants.values()) if (g.active) n++;
    return n;
  }

  lookup(gref: number, now: number): PersistentLookup {
    const g = this.grants.get(gref);
    if (g === undefined) return { kind: 'miss' };
    if (g.active) return { kind: 'busy' };
    g.active = true;
    g.lastUsed = now;
    return { kind: 'hit', grant: g };
  }

  /** add_persistent_gnt: false when full (the caller then keeps its mapping for this request only). */
  add(gref: number, handle: number, page: Uint8Array, now: number): PersistentGrant | undefined {
    if (this.grants.size >= this.max || this.grants.has(gref)) {
      if (this.grants.size >= this.max) this.overflow = true;
      return undefined;
    }
    const g: PersistentGrant = { gref, handle, page, active: true, lastUsed: now };
    this.grants.set(gref, g);
    return g;
  }

  release(g: PersistentGrant, now: number): void {
    g.active = false;
    g.lastUsed = now;
  }

  /**
   * purge_persistent_gnt: returns the grants to unmap (removed from the cache). When full and overflowing,
   * 5 % of max plus the excess go, least recently used first; grants idle for 60 s always go.
   */
  purge(now: number): PersistentGrant[] {
    let clean = 0;
    if (this.grants.size > this.max || (this.grants.size === this.max && this.overflow)) {
      clean = Math.floor(this.max / 100) * LRU_PERCENT_CLEAN;
      clean = Math.min(this.grants.size, this.grants.size - this.max + clean);
    }
    const idle = [...this.grants.values()].filter((g) => !g.active).sort((a, b) => a.lastUsed - b.lastUsed);
    const out: PersistentGrant[] = [];
    for (const g of idle) {
      if (clean > 0 || now - g.lastUsed >= PERSISTENT_GRANT_UNUSED_MS) {
        out.push(g);
        this.grants.delete(g.gref);
        if (clean > 0) clean--;
      }
    }
    if (this.grants.size < this.max) this.overflow = false;
    return out;
  }

  /** free_persistent_gnts: everything (the caller unmaps); throws if one is still active (Linux BUG_ON). */
  drain(): PersistentGrant[] {
    const all = [...this.grants.values()];
    const busy = all.filter((g) => g.active);
    if (busy.length > 0) {
      throw new Error(
        `persistent grants ${busy.map((g) => g.gref).join(', ')} still in use at disconnect (Linux BUG_ON)`,
      );
    }
    this.grants.clear();
    this.overflow = false;
    return all;
  }
}
