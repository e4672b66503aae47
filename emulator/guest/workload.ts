/**
 * Guest I/O: reads, writes, flushes and discards at byte offsets through the guest block layer, with
 * data from a pattern (pattern.ts: a pure function of the absolute disk offset), and
 * fio-like jobs (sequential or random, block size, queue depth, a count or a duration, verification)
 * with counts, bytes, errors and latency in the engine's time.
 *
 * I/O buffers are guest frames (from the guest's page allocator), so blkfront grants the very memory
 * the data lives in and the backend reads or writes it there.
 */
import type { GuestMemory } from '../../drivers/busdma/guest-memory.js';
import {
  type Bio,
  type BioOp,
  type BlockDevice,
  type BlockLayer,
  bioSectors,
  pageVecs,
} from '../kernel/block-device.js';
import { errnoName, isKernelError } from '../kernel/errno.js';
import type { Env, Holder, WaitQueue } from '../runtime/engine.js';
import type { DiskHandle } from './block-layer.js';
import { fillPattern, firstMismatch, type Pattern } from './pattern.js';

export const SECTOR = 512;

export interface IoOutcome {
  op: BioOp;
  offset: number;
  length: number;
  /** 0, or the errno name ("EIO"). */
  error: string | undefined;
  latencyMs: number;
  /** For verified reads: the first absolute offset whose byte differs from the pattern, or -1. */
  mismatchAt?: number;
}

export interface FioJob {
  /** read, write, randread, randwrite. */
  rw: 'read' | 'write' | 'randread' | 'randwrite';
  /** Block size in bytes (multiple of 512). */
  bs: number;
  /** Outstanding I/Os at once (worker tasks). */
  iodepth: number;
  /** Stop after this many I/Os... */
  count?: number;
  /** ...or after this long (engine time). */
  durationMs?: number;
  /** Region of the disk: [offset, offset + size). Default: the whole disk. */
  offset?: number;
  size?: number;
  /** Data written / expected when reading. */
  pattern: Pattern;
  /** Reads: compare with the pattern. Writes: read every written block back afterwards and compare. */
  verify?: boolean;
}

export interface LatencyStats {
  min: number;
  max: number;
  mean: number;
  p50: number;
  p99: number;
}

export interface JobResult {
  ios: number;
  reads: number;
  writes: number;
  bytesRead: number;
  bytesWritten: number;
  errors: number;
  verifyErrors: number;
  /** First few failures, for reports. */
  failures: string[];
  latency: LatencyStats;
  elapsedMs: number;
}

function checkRange(h: DiskHandle, offset: number, length: number, what: string): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % SECTOR !== 0) {
    throw new RangeError(`${what}: offset ${offset} must be a non-negative multiple of ${SECTOR}`);
  }
  if (!Number.isSafeInteger(length) || length < 0 || length % SECTOR !== 0) {
    throw new RangeError(`${what}: length ${length} must be a non-negative multiple of ${SECTOR}`);
  }
  const end = h.bdev.capacitySectors * SECTOR;
  if (offset + length > end) {
    throw new RangeError(`${what}: ${offset}+${length} runs past the end of ${h.bdev.name} (${end} bytes)`);
  }
}

export function latencyStats(samples: readonly number[]): LatencyStats {
  if (samples.length === 0) return { min: 0, max: 0, mean: 0, p50: 0, p99: 0 };
  const s = [...samples].sort((a, b) => a - b);
  const pick = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return {
    min: s[0],
    max: s[s.length - 1],
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    p50: pick(0.5),
    p99: pick(0.99),
  };
}

/** A bio whose end records the status and wakes its one waiter (no closure built per I/O). */
class WaitedBio implements Bio {
  result: number | undefined;

  constructor(
    readonly op: BioOp,
    readonly sector: number,
    readonly vecs: readonly Uint8Array[],
    readonly sectors: number | undefined,
    readonly done: WaitQueue,
  ) {}

  end(error: number): void {
    this.result = error;
    this.done.wakeAll();
  }
}

export class Workload {
  constructor(
    private readonly env: Env,
    private readonly memory: GuestMemory,
    private readonly blocks: BlockLayer,
  ) {}

  /** Who completes a disk's I/O, for the wait-for graph; one function per disk, not one per I/O. */
  private readonly ioHolders = new Map<BlockDevice, () => readonly Holder[]>();

  private ioHoldersOf(bdev: BlockDevice): () => readonly Holder[] {
    let f = this.ioHolders.get(bdev);
    if (f === undefined) {
      f = () => bdev.driver.ioHolders?.(bdev) ?? [];
      this.ioHolders.set(bdev, f);
    }
    return f;
  }

  /** One bio through the block layer, with a buffer in guest memory. */
  private async io(
    h: DiskHandle,
    op: BioOp,
    offset: number,
    data: Uint8Array,
    sectors?: number,
  ): Promise<IoOutcome> {
    const t0 = this.env.now();
    const env = this.env;
    const bdev = h.bdev;
    const sector = offset / SECTOR;
    // submit_bio_wait: the bio ends into this I/O's own completion (on-stack in Linux), so an ending
    // bio wakes only its submitter, not every task with I/O in flight on the disk.
    // The buffer's pages become the bio's vecs (bio_add_page per page of the guest buffer).
    const vecs = pageVecs(data);
    const bio = new WaitedBio(op, sector, vecs, sectors, env.waitQueue(`${bdev.name} bio at ${sector}`));
    let error: string | undefined;
    try {
      this.blocks.submit(bdev, bio);
    } catch (e) {
      if (!isKernelError(e)) throw e;
      error = e.code;
    }
    if (error === undefined) {
      if (bio.result === undefined) {
        await env.wait(bio.done, () => bio.result !== undefined, {
          what: `${op} of ${bioSectors(bio)} sectors at ${sector} on ${bdev.name}`,
          holders: this.ioHoldersOf(bdev),
        });
      }
      if (bio.result !== 0) error = errnoName(bio.result!);
    }
    return {
      op,
      offset,
      length: op === 'discard' ? (sectors ?? 0) * SECTOR : data.length,
      error,
      latencyMs: this.env.now() - t0,
    };
  }

  async write(h: DiskHandle, offset: number, length: number, pattern: Pattern): Promise<IoOutcome> {
    checkRange(h, offset, length, `write to ${h.bdev.name}`);
    // The pattern overwrites the whole buffer: no need to zero it first.
    const buf = this.memory.allocBuffer(length, 0, { zero: false });
    try {
      const view = this.memory.view(buf);
      fillPattern(pattern, offset, view);
      return await this.io(h, 'write', offset, view);
    } finally {
      this.memory.freeBuffer(buf);
    }
  }

  /** Read; with `verify`, compare against the pattern. `data` holds a copy of what was read. */
  async read(
    h: DiskHandle,
    offset: number,
    length: number,
    verify?: Pattern,
  ): Promise<IoOutcome & { data: Uint8Array }> {
    let data = new Uint8Array(0);
    const r = await this.readInto(h, offset, length, verify, true, (view) => {
      data = view.slice();
    });
    return { ...r, data };
  }

  /**
   * One read into a guest buffer; `keep` sees the bytes before the buffer is freed. A verifying read
   * must start from a zeroed buffer (`zero`), so a read the backend never did cannot pass on stale
   * bytes; fio's plain reads skip the zeroing, as a page-cache read does.
   */
  private async readInto(
    h: DiskHandle,
    offset: number,
    length: number,
    verify: Pattern | undefined,
    zero: boolean,
    keep?: (view: Uint8Array) => void,
  ): Promise<IoOutcome> {
    checkRange(h, offset, length, `read from ${h.bdev.name}`);
    const buf = this.memory.allocBuffer(length, 0, { zero });
    try {
      const view = this.memory.view(buf);
      const r = await this.io(h, 'read', offset, view);
      keep?.(view);
      if (verify && r.error === undefined) return { ...r, mismatchAt: firstMismatch(verify, offset, view) };
      return r;
    } finally {
      this.memory.freeBuffer(buf);
    }
  }

  async flush(h: DiskHandle): Promise<IoOutcome> {
    return this.io(h, 'flush', 0, new Uint8Array(0));
  }

  async discard(h: DiskHandle, offset: number, length: number): Promise<IoOutcome> {
    checkRange(h, offset, length, `discard on ${h.bdev.name}`);
    return this.io(h, 'discard', offset, new Uint8Array(0), length / SECTOR);
  }

  /** A fio-like job: `iodepth` tasks issue I/Os until the count or the duration is reached. */
  async runJob(h: DiskHandle, job: FioJob): Promise<JobResult> {
    const env = this.env;
    const diskBytes = h.bdev.capacitySectors * SECTOR;
    const regionStart = job.offset ?? 0;
    const regionSize = job.size ?? diskBytes - regionStart;
    if (!Number.isSafeInteger(job.bs) || job.bs < SECTOR || job.bs % SECTOR !== 0) {
      throw new RangeError(`fio job: bs ${job.bs} must be a positive multiple of ${SECTOR}`);
    }
    if (!Number.isInteger(job.iodepth) || job.iodepth < 1 || job.iodepth > 1024) {
      throw new RangeError(`fio job: iodepth ${job.iodepth} must be 1..1024`);
    }
    if (job.count === undefined && job.durationMs === undefined) {
      throw new RangeError('fio job: give count or durationMs');
    }
    checkRange(h, regionStart, regionSize, `fio job on ${h.bdev.name}`);
    const blocks = Math.floor(regionSize / job.bs);
    if (blocks < 1)
      throw new RangeError(`fio job: region of ${regionSize} bytes holds no ${job.bs}-byte block`);
    const random = job.rw === 'randread' || job.rw === 'randwrite';
    const writing = job.rw === 'write' || job.rw === 'randwrite';
    const t0 = env.now();
    const deadline = job.durationMs === undefined ? Number.POSITIVE_INFINITY : t0 + job.durationMs;
    const limit = job.count ?? Number.POSITIVE_INFINITY;
    const res: JobResult = {
      ios: 0,
      reads: 0,
      writes: 0,
      bytesRead: 0,
      bytesWritten: 0,
      errors: 0,
      verifyErrors: 0,
      failures: [],
      latency: latencyStats([]),
      elapsedMs: 0,
    };
    const lat: number[] = [];
    const written = new Set<number>();
    let issued = 0;
    let seq = 0;
    let running = job.iodepth;
    const done = env.waitQueue(`fio ${job.rw} on ${h.bdev.name}`);
    const note = (msg: string) => {
      if (res.failures.length < 8) res.failures.push(msg);
    };
    const worker = async () => {
      try {
        while (issued < limit && env.now() < deadline) {
          issued++;
          const block = random ? Math.floor(env.random() * blocks) : seq++ % blocks;
          const offset = regionStart + block * job.bs;
          if (writing) {
            const r = await this.write(h, offset, job.bs, job.pattern);
            res.writes++;
            lat.push(r.latencyMs);
            if (r.error) {
              res.errors++;
              note(`write ${offset}+${job.bs}: ${r.error}`);
            } else {
              res.bytesWritten += job.bs;
              written.add(offset);
            }
          } else {
            const verify = job.verify ? job.pattern : undefined;
            const r = await this.readInto(h, offset, job.bs, verify, verify !== undefined);
            res.reads++;
            lat.push(r.latencyMs);
            if (r.error) {
              res.errors++;
              note(`read ${offset}+${job.bs}: ${r.error}`);
            } else {
              res.bytesRead += job.bs;
              if (r.mismatchAt !== undefined && r.mismatchAt >= 0) {
                res.verifyErrors++;
                note(`read ${offset}+${job.bs}: first bad byte at ${r.mismatchAt}`);
              }
            }
          }
          res.ios++;
        }
      } finally {
        running--;
        done.wakeAll();
      }
    };
    for (let i = 0; i < job.iodepth; i++) env.spawn(`fio-${job.rw}-${i}`, worker, { component: 'workload' });
    await env.wait(done, () => running === 0, { what: `fio ${job.rw} workers on ${h.bdev.name}` });
    if (writing && job.verify) {
      for (const offset of [...written].sort((a, b) => a - b)) {
        const r = await this.readInto(h, offset, job.bs, job.pattern, true);
        if (r.error) {
          res.errors++;
          note(`verify read ${offset}+${job.bs}: ${r.error}`);
        } else if (r.mismatchAt !== undefined && r.mismatchAt >= 0) {
          res.verifyErrors++;
          note(`verify ${offset}+${job.bs}: first bad byte at ${r.mismatchAt}`);
        }
      }
    }
    res.latency = latencyStats(lat);
    res.elapsedMs = env.now() - t0;
    return res;
  }
}
