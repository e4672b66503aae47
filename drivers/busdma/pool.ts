/**
 * A per-driver reserved pool of grant references (the private gref_head netfront and blkfront keep,
 * FreeBSD A8 / Linux gnttab_alloc_grant_references): `size` refs are taken off the global free list
 * once, claimed and released by the driver's maps, and given back as a whole on `destroy`.
 *
 * Waiters (deferred loads) are told when refs come back to the pool; the notification only schedules
 * their retry, it never runs their completion in the releasing caller's stack (A5.5).
 */
import { GNTTAB_LIST_END, GrantRefHead, type GrantTable } from '../grant-table.js';
import { BusDmaError, ENOSPC } from './constants.js';

export class GrantPool {
  private readonly head = new GrantRefHead();
  private countValue = 0;
  private readonly waiters = new Set<() => void>();
  private destroyed = false;

  /** Reserve `size` references now; throws BusDmaError(ENOSPC) when the table cannot supply them. */
  constructor(
    private readonly gnttab: GrantTable,
    readonly size: number,
    readonly name = 'grant pool',
  ) {
    if (!Number.isInteger(size) || size < 0 || size > 0xffff) {
      throw new BusDmaError(ENOSPC, `${name}: size must be 0..65535, got ${size}`);
    }
    if (gnttab.allocGrantReferences(size, this.head) !== 0) {
      throw new BusDmaError(ENOSPC, `${name}: cannot reserve ${size} grant references`);
    }
    this.countValue = size;
  }

  /** References currently in the pool. */
  get count(): number {
    return this.countValue;
  }

  /** Claim `n` references, all or none; undefined when the pool holds fewer. */
  claim(n: number): number[] | undefined {
    this.checkAlive('claim');
    if (n > this.countValue) return undefined;
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const ref = this.gnttab.claimGrantReference(this.head);
      if (ref < 0 || ref === GNTTAB_LIST_END) throw new Error(`${this.name}: chain shorter than its count`);
      out.push(ref);
    }
    this.countValue -= n;
    return out;
  }

  /**
   * Return a reference (its grant already ended). Beyond the pool's size it goes to the global list,
   * so a pool never grows past what it reserved.
   */
  release(ref: number): void {
    if (this.destroyed || this.countValue >= this.size) {
      this.gnttab.freeGrantReference(ref);
      return;
    }
    this.gnttab.releaseGrantReference(this.head, ref);
    this.countValue++;
    for (const w of [...this.waiters]) w();
  }

  /** Be told (synchronously; schedule work, do not do it) whenever a ref comes back. */
  addWaiter(fn: () => void): void {
    this.waiters.add(fn);
  }

  removeWaiter(fn: () => void): void {
    this.waiters.delete(fn);
  }

  /** Give every reference in the pool back to the global list. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.gnttab.freeGrantReferences(this.head);
    this.countValue = 0;
    this.waiters.clear();
  }

  private checkAlive(op: string): void {
    if (this.destroyed) throw new BusDmaError(ENOSPC, `${this.name}: ${op} after destroy`);
  }
}
