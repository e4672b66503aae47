/**
 * blkfront's shadow table (struct blk_shadow[], Linux xen-blkfront.c): one entry per ring slot, the
 * request id is the entry's index, and the free list is threaded through the id field of the saved
 * request (`req.u.rw.id`), ending in 0x0fffffff. get_id_from_freelist / add_id_to_freelist keep
 * Linux's consistency checks, so a backend answering a free or recycled id is caught.
 */
import type { Bio } from '../../emulator/kernel/block-device.js';
import type { GuestBuffer } from '../busdma/guest-memory.js';
import type { DmaMap } from '../busdma/map.js';
import type { PersistentGrant } from './persistent.js';

/** End of the shadow free list. */
export const SHADOW_FREE_END = 0x0fffffff;
/** What get_id_from_freelist leaves in the id field of an entry handed out ("debug" value in Linux). */
export const SHADOW_ID_IN_USE = 0x0fffffee;

/** enum blk_req_status */
export type ShadowStatus = 'free' | 'waiting' | 'processing';

/** The part of a bio one ring request carries (bios larger than a request are split). */
export interface ShadowChunk {
  readonly bio: Bio;
  /** The bio's vecs (or the part of them) this chunk carries; `length` is their total bytes. */
  readonly vecs: readonly Uint8Array[];
  readonly length: number;
  readonly sector: number;
  /** The bio's shared completion: how many chunks are still out, and the first error. */
  readonly parent: { remaining: number; error: number };
}

export interface ShadowEntry {
  status: ShadowStatus;
  /** The id field of the saved request: the entry's own index while in use, the next free one otherwise. */
  reqId: number;
  /** BLKIF_OP_* of the ring request; for INDIRECT, `indirectOp` is what the response must carry. */
  operation: number;
  indirectOp: number;
  nrSegments: number;
  chunk: ShadowChunk | undefined;
  dataMap: DmaMap | undefined;
  indirectMap: DmaMap | undefined;
  indirectPages: GuestBuffer | undefined;
  /** Bounce buffer of this request (not persistent): guest frames the data was copied through. */
  bounce: GuestBuffer | undefined;
  /** Persistent grants used by this request, in segment order. */
  grants: PersistentGrant[];
  startedAt: number;
}

export class ShadowTable {
  readonly entries: ShadowEntry[];
  private freeHead = 0;
  private inUse = 0;

  constructor(readonly size: number) {
    this.entries = [];
    for (let i = 0; i < size; i++) {
      this.entries.push({
        status: 'free',
        reqId: i + 1 < size ? i + 1 : SHADOW_FREE_END,
        operation: 0,
        indirectOp: 0,
        nrSegments: 0,
        chunk: undefined,
        dataMap: undefined,
        indirectMap: undefined,
        indirectPages: undefined,
        bounce: undefined,
        grants: [],
        startedAt: 0,
      });
    }
  }

  get used(): number {
    return this.inUse;
  }

  /** get_id_from_freelist. Throws when the list is empty (the ring-full check must come first). */
  getId(): number {
    const id = this.freeHead;
    if (id >= this.size) throw new Error(`blkfront shadow: free list empty or corrupt (head ${id})`);
    const e = this.entries[id];
    this.freeHead = e.reqId;
    e.reqId = SHADOW_ID_IN_USE;
    this.inUse++;
    return id;
  }

  /**
   * add_id_to_freelist: false (and nothing changed) when the entry's saved id is not its own index or
   * it carries no request — a response for an id that is not outstanding.
   */
  addId(id: number): boolean {
    const e = this.entries[id];
    if (!e || e.reqId !== id || e.chunk === undefined) return false;
    e.reqId = this.freeHead;
    e.chunk = undefined;
    e.status = 'free';
    e.dataMap = undefined;
    e.indirectMap = undefined;
    e.indirectPages = undefined;
    e.bounce = undefined;
    e.grants = [];
    this.freeHead = id;
    this.inUse--;
    return true;
  }

  /** Entries with a request on the ring. */
  outstanding(): number[] {
    const out: number[] = [];
    this.entries.forEach((e, i) => {
      if (e.chunk !== undefined) out.push(i);
    });
    return out;
  }
}
