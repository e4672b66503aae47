/**
 * A run's image files: where they live (the work dir) and how they are made.
 *
 * Images are real files, read and written through node:fs by tapdisk's drivers, the phy path's image
 * disk and `expect.data`, whichever store holds them:
 * - `disk`   (default) a temp dir on the host's temp filesystem;
 * - `memory` a temp dir on a RAM-backed filesystem (/dev/shm where Linux has it, else the temp dir).
 *            Same file semantics, no disk I/O: what benches and `explore` use.
 * Either is removed once the run's expectations were checked, unless the run was asked to keep it
 * (`keepWorkDir`, `xenpv run --keep-work-dir`).
 *
 * An image is created sparse: the file is sized with ftruncate, so a zero-filled image costs nothing
 * and reads of it return zeros as any hole does; other fills are written out (their bytes are cached
 * for the next run of the same scenario).
 */
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fillPattern, formatPattern, type Pattern } from '../guest/pattern.js';
import type { Scenario } from './model.js';

export type ImageStore = 'disk' | 'memory';

export const IMAGE_STORES: readonly ImageStore[] = ['disk', 'memory'];

/** Linux's RAM-backed filesystem for POSIX shared memory (tmpfs). */
const RAM_FS = '/dev/shm';

let ramRoot: string | undefined;

/** Where `memory` work dirs go: /dev/shm when a directory can be made there, else the temp dir. */
export function memoryRoot(): string {
  if (ramRoot !== undefined) return ramRoot;
  try {
    rmSync(mkdtempSync(join(RAM_FS, 'xenpv-probe-')), { recursive: true, force: true });
    ramRoot = RAM_FS;
  } catch {
    ramRoot = tmpdir();
  }
  return ramRoot;
}

export function checkImageStore(store: unknown): ImageStore {
  if (store === undefined) return 'disk';
  if (typeof store === 'string' && (IMAGE_STORES as readonly string[]).includes(store))
    return store as ImageStore;
  throw new Error(`imageStore must be one of ${IMAGE_STORES.join(', ')}, got ${JSON.stringify(store)}`);
}

/** A fresh work dir for one run of scenario `name` in `store`. */
export function makeWorkDir(name: string, store: ImageStore): string {
  const root = store === 'memory' ? memoryRoot() : tmpdir();
  return mkdtempSync(join(root, `xenpv-${name}-`));
}

/** Removes a work dir made by makeWorkDir (its images with it). */
export function removeWorkDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Bytes of filled images kept for the next run (explore and benches run one scenario many times). */
const FILL_CACHE_BYTES = 64 << 20;
const fillCache = new Map<string, Uint8Array>();
let fillCacheBytes = 0;

/** The pattern's bytes for [0, size), from the cache when the same fill was made before. */
function filledBytes(pattern: Pattern, size: number): Uint8Array {
  const key = `${formatPattern(pattern)}/${size}`;
  const hit = fillCache.get(key);
  if (hit !== undefined) return hit;
  const bytes = fillPattern(pattern, 0, new Uint8Array(size));
  if (size <= FILL_CACHE_BYTES) {
    // Oldest first out (Map keeps insertion order) until the new one fits.
    for (const [k, v] of fillCache) {
      if (fillCacheBytes + size <= FILL_CACHE_BYTES) break;
      fillCache.delete(k);
      fillCacheBytes -= v.length;
    }
    fillCache.set(key, bytes);
    fillCacheBytes += size;
  }
  return bytes;
}

/**
 * Creates each image file in `workDir` (replacing one that exists), sized sparse and filled with its
 * pattern. Formats other than raw: not implemented.
 */
export function createImages(s: Scenario, workDir: string): void {
  for (const img of s.host.images) {
    if (img.format !== 'raw') {
      throw new Error(
        `not implemented: ${img.format} image ${img.name} (waiting for emulator/tapdisk/ image formats)`,
      );
    }
    const path = join(workDir, img.name);
    mkdirSync(dirname(path), { recursive: true });
    const fd = openSync(path, 'w');
    try {
      // A hole reads as zeros: a zero fill is only the size.
      ftruncateSync(fd, img.size);
      if (img.fill.kind !== 'zero') {
        const bytes = filledBytes(img.fill, img.size);
        let done = 0;
        while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, done);
      }
    } finally {
      closeSync(fd);
    }
  }
}
