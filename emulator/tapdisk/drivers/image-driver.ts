/**
 * What tapdisk needs from an image driver (`struct tap_disk` reduced to the synchronous core): the disk
 * info `td_open` fills, and read/write/flush/close run at completion time; the event loop models the
 * latency. Errors are KernelErrors with the errno tapdisk would report.
 */
export interface TdDiskInfo {
  /** Size in 512-byte sectors. */
  sectors: number;
  sectorSize: number;
  info: number;
}

export interface ImageDriver {
  readonly type: string;
  readonly path: string;
  readonly info: TdDiskInfo;
  /** Service time of one request, in ms. */
  readonly latencyMs: number;
  read(sector: number, into: Uint8Array): void;
  write(sector: number, from: Uint8Array): void;
  /**
   * One request's segments, which follow each other on the disk from `sector` on, in one go: tapdisk's
   * io-optimize merges adjacent iocbs into one preadv/pwritev. The bytes moved are those of the
   * segment-by-segment calls.
   */
  readv(sector: number, into: readonly Uint8Array[]): void;
  writev(sector: number, from: readonly Uint8Array[]): void;
  flush(): void;
  close(): void;
}

/** td_open flags we honour. */
export interface ImageOpenFlags {
  readOnly: boolean;
}
