/**
 * Persistent grants (Linux blkfront, feature-persistent): pages granted writable to the backend once
 * and reused for the life of the connection; data is copied through them (bounce). Free grants are
 * kept on a list and reused LIFO, so the backend's cache of mappings stays hot.
 * Simplification: no periodic reclaim of grants the backend stopped mapping (Linux: every 10 s).
 */
import type { GuestMemory } from '../busdma/guest-memory.js';
import type { GrantRevokeMode } from '../busdma/tag.js';
import type { GrantTable } from '../grant-table.js';

export interface PersistentGrant {
  readonly gref: number;
  readonly mfn: number;
}

export class PersistentGrants {
  private readonly free: PersistentGrant[] = [];
  private total = 0;

  constructor(
    private readonly gnttab: GrantTable,
    private readonly memory: GuestMemory,
    readonly domid: number,
  ) {}

  get count(): number {
    return this.total;
  }

  get freeCount(): number {
    return this.free.length;
  }

  /** get_free_grant / get_grant: the most recently released grant, or a new page granted writable. */
  get(): PersistentGrant | undefined {
    const g = this.free.pop();
    if (g) return g;
    const [mfn] = this.memory.allocRun(1);
    const gref = this.gnttab.grantForeignAccess(this.domid, mfn, false);
    if (gref < 0) {
      this.memory.freeRun([mfn]);
      return undefined;
    }
    this.total++;
    return { gref, mfn };
  }

  /** Back on the free list, at its head (LIFO). */
  put(g: PersistentGrant): void {
    this.free.push(g);
  }

  /**
   * End access on every grant (blkif_free): one the backend still maps goes to the deferred list with
   * its page. Grants in use by outstanding requests are passed in `inUse`. `revoke: 'query-then-end'`
   * frees every page as the code before XSA-396 did (C11).
   */
  releaseAll(inUse: readonly PersistentGrant[] = [], revoke: GrantRevokeMode = 'try-end'): void {
    for (const g of [...this.free, ...inUse]) {
      if (revoke === 'query-then-end') {
        // Before XSA-396: gnttab_end_foreign_access(gref, 0, 0UL) then __free_page(), mapped or not.
        this.gnttab.endForeignAccess(g.gref);
        this.memory.freeRun([g.mfn]);
        continue;
      }
      if (!this.gnttab.tryEndForeignAccess(g.gref)) {
        this.memory.surrender(g.mfn);
        this.gnttab.endForeignAccess(g.gref, g.mfn);
        continue;
      }
      this.memory.freeRun([g.mfn]);
    }
    this.free.length = 0;
    this.total = 0;
  }
}
