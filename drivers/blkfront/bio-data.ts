/**
 * The bytes of a bio as blkfront handles them: the vec list read as one stream, cut into the pieces one
 * ring request carries (blk_queue_split may cut inside a bio_vec), copied through bounce or persistent
 * pages with a cursor, or seen as a single view when the vecs lie back to back in one buffer.
 */

/** The part [byteOffset, byteOffset + length) of the stream of `vecs`, as views of the same memory. */
export function sliceVecs(vecs: readonly Uint8Array[], byteOffset: number, length: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = byteOffset;
  let want = length;
  for (let i = 0; i < vecs.length && want > 0; i++) {
    const v = vecs[i]!;
    if (skip >= v.length) {
      skip -= v.length;
      continue;
    }
    const n = Math.min(v.length - skip, want);
    out.push(skip === 0 && n === v.length ? v : v.subarray(skip, skip + n));
    skip = 0;
    want -= n;
  }
  if (want > 0) {
    throw new RangeError(`sliceVecs: ${length} bytes at ${byteOffset} run past the vecs (${want} short)`);
  }
  return out;
}

/** One view over all the vecs when each starts where the previous ended in the same buffer. */
export function contiguousView(vecs: readonly Uint8Array[]): Uint8Array | undefined {
  const first = vecs[0];
  if (first === undefined) return undefined;
  if (vecs.length === 1) return first;
  let end = first.byteOffset + first.length;
  for (let i = 1; i < vecs.length; i++) {
    const v = vecs[i]!;
    if (v.buffer !== first.buffer || v.byteOffset !== end) return undefined;
    end += v.length;
  }
  return new Uint8Array(first.buffer, first.byteOffset, end - first.byteOffset);
}

/** Total bytes of the vecs. */
export function vecsLength(vecs: readonly Uint8Array[]): number {
  let n = 0;
  for (const v of vecs) n += v.length;
  return n;
}

/** Walks the stream of a vec list once, copying out of it (a write's data) or into it (a read's data). */
export class VecCursor {
  private index = 0;
  private offset = 0;

  constructor(private readonly vecs: readonly Uint8Array[]) {}

  /** Fills `dst` with the next dst.length bytes of the stream. */
  copyOut(dst: Uint8Array): void {
    this.walk(dst.length, (v, at, n, done) => dst.set(v.subarray(at, at + n), done));
  }

  /** Stores `src` as the next src.length bytes of the stream. */
  copyIn(src: Uint8Array): void {
    this.walk(src.length, (v, at, n, done) => v.set(src.subarray(done, done + n), at));
  }

  private walk(length: number, step: (v: Uint8Array, at: number, n: number, done: number) => void): void {
    let done = 0;
    while (done < length) {
      const v = this.vecs[this.index];
      if (v === undefined) throw new RangeError(`VecCursor: ${length - done} bytes past the end of the vecs`);
      const n = Math.min(v.length - this.offset, length - done);
      step(v, this.offset, n, done);
      done += n;
      this.offset += n;
      if (this.offset === v.length) {
        this.index++;
        this.offset = 0;
      }
    }
  }
}
