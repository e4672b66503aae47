/**
 * What a read-only grant mapping hands the mapper: the granter's real frame, readable, with no way
 * to write through this API. (A Uint8Array cannot be made read-only, and copying on every read
 * would hide the granter's later writes, which a real read-only mapping shows.) `.buffer` escape
 * hatches are deliberately absent: the underlying view is a private field.
 */
import { PAGE_SIZE } from './layout.js';

export class ReadOnlyPage {
  readonly #view: Uint8Array;
  readonly #dv: DataView;
  readonly length = PAGE_SIZE;

  constructor(view: Uint8Array) {
    if (view.length !== PAGE_SIZE) throw new RangeError(`ReadOnlyPage: view length ${view.length} != 4096`);
    this.#view = view;
    this.#dv = new DataView(view.buffer, view.byteOffset, view.byteLength);
  }

  /** One byte (like `view[i]`). */
  at(offset: number): number {
    this.check(offset, 1);
    return this.#view[offset];
  }

  readU16(offset: number): number {
    this.check(offset, 2);
    return this.#dv.getUint16(offset, true);
  }

  readU32(offset: number): number {
    this.check(offset, 4);
    return this.#dv.getUint32(offset, true);
  }

  readU64(offset: number): bigint {
    this.check(offset, 8);
    return this.#dv.getBigUint64(offset, true);
  }

  /** A private copy of [offset, offset+length). */
  slice(offset = 0, length = PAGE_SIZE - offset): Uint8Array {
    this.check(offset, length);
    return this.#view.slice(offset, offset + length);
  }

  /** Copy [offset, offset+length) into `dest` at `destOffset` (a DMA read out of the page). */
  copyTo(dest: Uint8Array, destOffset: number, offset: number, length: number): void {
    this.check(offset, length);
    dest.set(this.#view.subarray(offset, offset + length), destOffset);
  }

  private check(offset: number, length: number): void {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0) {
      throw new RangeError(`ReadOnlyPage: bad offset ${offset} / length ${length}`);
    }
    if (offset + length > PAGE_SIZE) {
      throw new RangeError(`ReadOnlyPage: [${offset}, ${offset + length}) exceeds the 4096-byte page`);
    }
  }
}
