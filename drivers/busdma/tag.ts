/**
 * A Xen bus_dma tag (struct bus_dma_tag_xen, Part A2): the other end's domid, the segment limits, and
 * where grant references come from (a driver's reserved pool, else the global free list). Each
 * segment must fit one grant, i.e. one 4 KiB page, so tag create rejects maxSegSize > PAGE_SIZE with
 * EINVAL, as busdma_xen.c does.
 * Simplification: no parent machine tag, no bounce pages (guest frames are always "DMA-able").
 */
import type { Env } from '../../emulator/runtime/engine.js';
import type { GrantTable } from '../grant-table.js';
import { XEN_PAGE_SIZE } from '../ring.js';
import { BUS_DMA_XEN_DOMID_SHIFT, BusDmaError, EBUSY, EINVAL } from './constants.js';
import type { GuestMemory } from './guest-memory.js';
import { DmaMap } from './map.js';
import type { GrantPool } from './pool.js';

export interface DmaTagOptions {
  /** For traces and wait descriptions: "xvda io". */
  name: string;
  /** The domain that will map the grants (the backend). Alternatively packed into `flags` << 16. */
  domid?: number;
  /** Most segments one load may produce (the tag's nsegments). */
  maxSegments: number;
  /** Largest segment in bytes: 1..4096. */
  maxSegSize?: number;
  /** Segment start alignment in bytes (blkfront: 512, one sector). */
  alignment?: number;
  /** bus_dma flags; the upper 16 bits may carry the domid (BUS_DMA_XEN_DOMID_SHIFT). */
  flags?: number;
  /** A reserved pool the maps claim from first. */
  pool?: GrantPool;
  /**
   * How unload revokes a grant (teardown.md §4 C11): 'try-end' (default, XSA-396) ends access with the
   * atomic try-operation and keeps a still-mapped frame out of reuse; 'query-then-end' is the code
   * before XSA-396: ask whether the grant is mapped, then end it without holding the frame.
   */
  revoke?: GrantRevokeMode;
}

export type GrantRevokeMode = 'try-end' | 'query-then-end';

export class DmaTag {
  readonly name: string;
  readonly domid: number;
  readonly maxSegments: number;
  readonly maxSegSize: number;
  readonly alignment: number;
  readonly flags: number;
  readonly pool: GrantPool | undefined;
  readonly revoke: GrantRevokeMode;
  private readonly maps = new Set<DmaMap>();
  private destroyed = false;

  private constructor(
    readonly env: Env,
    readonly gnttab: GrantTable,
    readonly memory: GuestMemory,
    o: Required<Omit<DmaTagOptions, 'pool'>> & { pool?: GrantPool },
  ) {
    this.name = o.name;
    this.domid = o.domid;
    this.maxSegments = o.maxSegments;
    this.maxSegSize = o.maxSegSize;
    this.alignment = o.alignment;
    this.flags = o.flags;
    this.pool = o.pool;
    this.revoke = o.revoke;
  }

  /** bus_dma_tag_create. Throws BusDmaError(EINVAL) naming the bad field. */
  static create(env: Env, gnttab: GrantTable, memory: GuestMemory, options: DmaTagOptions): DmaTag {
    const flags = options.flags ?? 0;
    if (!Number.isInteger(flags) || flags < 0 || flags > 0xffffffff) {
      throw new BusDmaError(EINVAL, `busdma tag ${options.name}: flags ${flags} is not a u32`);
    }
    const packed = flags >>> BUS_DMA_XEN_DOMID_SHIFT;
    const domid = options.domid ?? packed;
    if (!Number.isInteger(domid) || domid < 0 || domid > 0x7fef) {
      throw new BusDmaError(EINVAL, `busdma tag ${options.name}: domid ${domid} is not a domain id`);
    }
    const maxSegSize = options.maxSegSize ?? XEN_PAGE_SIZE;
    if (!Number.isInteger(maxSegSize) || maxSegSize < 1 || maxSegSize > XEN_PAGE_SIZE) {
      throw new BusDmaError(
        EINVAL,
        `busdma tag ${options.name}: maxSegSize ${maxSegSize} must be 1..${XEN_PAGE_SIZE} (one grant per segment)`,
      );
    }
    if (!Number.isInteger(options.maxSegments) || options.maxSegments < 1 || options.maxSegments > 0xffff) {
      throw new BusDmaError(
        EINVAL,
        `busdma tag ${options.name}: maxSegments ${options.maxSegments} must be 1..65535`,
      );
    }
    const alignment = options.alignment ?? 1;
    if (
      !Number.isInteger(alignment) ||
      alignment < 1 ||
      alignment > XEN_PAGE_SIZE ||
      alignment & (alignment - 1)
    ) {
      throw new BusDmaError(
        EINVAL,
        `busdma tag ${options.name}: alignment ${alignment} must be a power of two up to ${XEN_PAGE_SIZE}`,
      );
    }
    const revoke = options.revoke ?? 'try-end';
    if (revoke !== 'try-end' && revoke !== 'query-then-end') {
      throw new BusDmaError(
        EINVAL,
        `busdma tag ${options.name}: revoke ${JSON.stringify(revoke)} must be 'try-end' or 'query-then-end'`,
      );
    }
    return new DmaTag(env, gnttab, memory, {
      name: options.name,
      domid,
      maxSegments: options.maxSegments,
      maxSegSize,
      alignment,
      flags: flags & 0xffff,
      pool: options.pool,
      revoke,
    });
  }

  /** bus_dmamap_create. */
  createMap(name?: string): DmaMap {
    if (this.destroyed) throw new BusDmaError(EINVAL, `busdma tag ${this.name}: createMap after destroy`);
    const map = new DmaMap(this, name ?? `${this.name} map ${this.maps.size}`, () => this.maps.delete(map));
    this.maps.add(map);
    return map;
  }

  get mapCount(): number {
    return this.maps.size;
  }

  /** bus_dma_tag_destroy: EBUSY while maps exist. */
  destroy(): void {
    if (this.destroyed) return;
    if (this.maps.size > 0) {
      throw new BusDmaError(EBUSY, `busdma tag ${this.name}: ${this.maps.size} map(s) not destroyed`);
    }
    this.destroyed = true;
  }
}
