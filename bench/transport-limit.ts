/**
 * (a) The transport limit: the fastest a one-page blkif-sized ring can move entries between two worker
 * threads with Xen-style notification hold-off (req_event/rsp_event) and a 4 KiB copy per entry. Every
 * other figure is reported as a ratio to this one. Both ends use drivers/ring.ts, the ring code the
 * drivers use, so the limit reflects the same index arithmetic and barriers.
 */
import { Worker } from 'node:worker_threads';
import { BLKIF_ABI_X86_64 } from '../drivers/blkif.js';
import { SharedRing, XEN_PAGE_SIZE } from '../drivers/ring.js';

export interface TransportLayout {
  /** One ring page, then `slots` data pages, then Int32 words: front kick, back kick, ready count. */
  buffer: SharedArrayBuffer;
  slots: number;
  entries: number;
}

export function createTransport(entries: number): TransportLayout {
  const probe = new SharedRing(new ArrayBuffer(XEN_PAGE_SIZE), 0, 1, BLKIF_ABI_X86_64.entrySize);
  const slots = probe.size;
  const buffer = new SharedArrayBuffer(XEN_PAGE_SIZE * (1 + slots) + 12);
  new SharedRing(buffer, 0, 1, BLKIF_ABI_X86_64.entrySize).init();
  return { buffer, slots, entries };
}

/**
 * The limit is the best of a few runs: one run on a shared 2-core machine can lose half its speed to
 * whatever else is scheduled, and every other figure's ratio is taken against this one.
 */
export async function measureTransportLimit(runs = 3, entries = 1_000_000): Promise<number> {
  let best = 0;
  for (let i = 0; i < runs; i++) best = Math.max(best, await measureTransportOnce(entries));
  return best;
}

/** Runs the two ends in two workers once; resolves with entries per second. */
async function measureTransportOnce(entries: number): Promise<number> {
  const layout = createTransport(entries);
  const url = new URL('./transport-worker.js', import.meta.url);
  let elapsedMs = Number.NaN;
  const ends = ['back', 'front'].map(
    (role) =>
      new Promise<void>((resolve, reject) => {
        const w = new Worker(url, { workerData: { ...layout, role } });
        w.on('message', (m: { elapsedMs: number }) => (elapsedMs = m.elapsedMs));
        w.once('error', reject);
        w.once('exit', (code) =>
          code === 0 ? resolve() : reject(new Error(`${role} worker exited ${code}`)),
        );
      }),
  );
  await Promise.all(ends);
  return (entries * 1000) / elapsedMs;
}
