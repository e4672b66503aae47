/**
 * Faults a scenario injects into the storage under tapdisk's image drivers, keyed by image file: a
 * per-request delay (a slow disk under the file) and a failure that starts after the next N requests
 * (a disk that goes bad). tapdisk consults it once per request taken off the ring (the delay) and once
 * per request performed (the failure), whichever driver (aio, ram) serves the file, and whether the
 * fault was armed before or after the image was opened.
 * Simplification: no such hook exists in tapdisk; it stands for dm-delay / dm-flakey under the file.
 */
import { resolve } from 'node:path';
import { ERRNO, type ErrnoName } from '../kernel/errno.js';

interface ImageFaultState {
  delayMs: number;
  failure: { error: ErrnoName; okLeft: number } | undefined;
}

export class ImageFaults {
  private readonly byPath = new Map<string, ImageFaultState>();
  /** resolve() of each path asked about: tapdisk asks twice per request with the same few paths. */
  private readonly keys = new Map<string, string>();

  private key(path: string): string {
    let key = this.keys.get(path);
    if (key === undefined) {
      key = resolve(path);
      // Bounded: a long-lived host sees one path per image it ever opened.
      if (this.keys.size >= 1024) this.keys.clear();
      this.keys.set(path, key);
    }
    return key;
  }

  private state(path: string): ImageFaultState {
    const key = this.key(path);
    let s = this.byPath.get(key);
    if (s === undefined) {
      s = { delayMs: 0, failure: undefined };
      this.byPath.set(key, s);
    }
    return s;
  }

  /** Every request on `path` takes `delayMs` longer from now on (0 clears it). */
  setDelay(path: string, delayMs: number): void {
    if (!Number.isFinite(delayMs) || delayMs < 0) {
      throw new RangeError(`image fault ${path}: delay ${delayMs} is not a duration >= 0`);
    }
    this.state(path).delayMs = delayMs;
  }

  /** The next `after` requests on `path` succeed, every later one fails with `error`. */
  setFailure(path: string, error: string, after: number): void {
    if (!Object.hasOwn(ERRNO, error)) throw new RangeError(`image fault ${path}: unknown errno "${error}"`);
    if (!Number.isSafeInteger(after) || after < 0) {
      throw new RangeError(`image fault ${path}: after ${after} is not a count >= 0`);
    }
    this.state(path).failure = { error: error as ErrnoName, okLeft: after };
  }

  /** Clears every fault on `path`. */
  clear(path: string): void {
    this.byPath.delete(this.key(path));
  }

  /** The extra service time of one request on `path`. */
  delayFor(path: string): number {
    if (this.byPath.size === 0) return 0;
    return this.byPath.get(this.key(path))?.delayMs ?? 0;
  }

  /** Counts one request performed on `path`; returns the errno it must fail with, if any. */
  admit(path: string): ErrnoName | undefined {
    if (this.byPath.size === 0) return undefined;
    const f = this.byPath.get(this.key(path))?.failure;
    if (f === undefined) return undefined;
    if (f.okLeft > 0) {
      f.okLeft--;
      return undefined;
    }
    return f.error;
  }
}
