/**
 * Open files (struct file), descriptor tables and memory mappings, with Linux's reference rules:
 * a file has one reference per descriptor that names it (dup/fork share one) plus one per mapping
 * (vma->vm_file); the driver's `release` runs when the LAST reference goes, in the task that dropped it,
 * and may block there. So "close(ringfd); munmap(ring)" runs blktap's release inside munmap.
 */
import type { Holder } from '../runtime/engine.js';
import { KernelError } from './errno.js';
import type { Readiness } from './poll.js';

export const PAGE_SIZE = 4096;
/** RLIMIT_NOFILE default soft limit. */
export const MAX_FDS = 1024;
/** 0, 1 and 2 (stdio) are not modelled; the first descriptor a process gets is 3, as for a daemon. */
export const FIRST_FD = 3;

export interface ReadRequest {
  /** Bytes wanted (block devices); sockets return one whole message. */
  length: number;
  /** Byte offset for pread(); file position when omitted. */
  offset?: number;
}

/** The driver side of a file (file_operations + vm_operations). Missing ops give Linux's errors. */
export interface FileOps {
  /** Short label used in wait descriptions, e.g. "/dev/xen/blktap-2/blktap0". */
  describe?(file: File): string;
  /** Last reference gone. May block (declared waits); the task that dropped the reference blocks. */
  release?(file: File): void | Promise<void>;
  ioctl?(file: File, cmd: number, arg: unknown): number | Promise<number>;
  /** Set `vma.memory`/`vma.private` as the driver's mmap does; throw to refuse. */
  mmap?(file: File, vma: Vma): void | Promise<void>;
  /** vm_operations_struct.close: the mapping is going away (munmap or process exit). */
  vmClose?(vma: Vma): void | Promise<void>;
  poll?(file: File): Readiness;
  /** Who must act for this file to become ready (the peer process of a socket, ...). */
  pollHolders?(file: File): readonly Holder[];
  /** Returns the data, or null at end of file/stream. */
  read?(file: File, request: ReadRequest): Promise<Uint8Array | null>;
  write?(file: File, data: Uint8Array, offset: number | undefined): Promise<number>;
}

export interface FileMode {
  read: boolean;
  write: boolean;
}

/** A device number (dev_t split into its halves). */
export interface Devt {
  readonly major: number;
  readonly minor: number;
}

let nextFileId = 1;

export class File {
  readonly id = nextFileId++;
  /** f_count */
  private count = 1;
  private releasedFlag = false;
  /** Processes (as holders) with descriptors naming this file, and how many each has. */
  private readonly fdOwners = new Map<Holder, number>();
  nonblocking = false;
  /** File position for read/write without an offset. */
  pos = 0;
  /** Driver data (file->private_data). */
  private: unknown;

  constructor(
    readonly path: string,
    readonly ops: FileOps,
    readonly mode: FileMode,
    /** Device number for device files (inode->i_rdev). */
    readonly devt?: Devt,
  ) {}

  get refs(): number {
    return this.count;
  }

  get released(): boolean {
    return this.releasedFlag;
  }

  describe(): string {
    return this.ops.describe?.(this) ?? this.path;
  }

  /** get_file() */
  get(): void {
    if (this.releasedFlag) throw new Error(`file ${this.describe()}: get after release`);
    this.count++;
  }

  /** fput(): drops one reference; on the last, runs the driver's release in the calling task. */
  async put(): Promise<void> {
    if (this.count <= 0) throw new Error(`file ${this.describe()}: reference count underflow`);
    if (--this.count > 0) return;
    this.releasedFlag = true;
    await this.ops.release?.(this);
  }

  /** Processes holding a descriptor for this file (holders of whatever waits for its peer). */
  owners(): Holder[] {
    return [...this.fdOwners.keys()];
  }

  addOwner(owner: Holder): void {
    this.fdOwners.set(owner, (this.fdOwners.get(owner) ?? 0) + 1);
  }

  removeOwner(owner: Holder): void {
    const n = this.fdOwners.get(owner) ?? 0;
    if (n <= 1) this.fdOwners.delete(owner);
    else this.fdOwners.set(owner, n - 1);
  }
}

/** One mapping (vm_area_struct). Holds a reference to its file until unmapped. */
export interface Vma {
  readonly start: number;
  readonly length: number;
  /** Offset into the file in pages (vm_pgoff). */
  readonly pgoff: number;
  readonly file: File;
  readonly owner: Holder;
  /** The memory the driver mapped (a view of a shared ring page, a data area...). */
  memory?: Uint8Array;
  /** Driver data (vma->vm_private_data). */
  private?: unknown;
}

/** A process's descriptor table; the lowest free number is handed out, as Linux does. */
export class FdTable {
  private readonly fds = new Map<number, File>();

  constructor(private readonly owner: Holder) {}

  install(file: File): number {
    for (let fd = FIRST_FD; fd < MAX_FDS; fd++) {
      if (!this.fds.has(fd)) {
        this.fds.set(fd, file);
        file.addOwner(this.owner);
        return fd;
      }
    }
    throw new KernelError('EMFILE', `open ${file.describe()}: all ${MAX_FDS} descriptors in use`);
  }

  get(fd: number, op: string): File {
    const file = Number.isInteger(fd) ? this.fds.get(fd) : undefined;
    if (file === undefined) throw new KernelError('EBADF', `${op} fd ${fd}`);
    return file;
  }

  /** Removes the descriptor; the caller drops the file reference (fput). */
  remove(fd: number, op: string): File {
    const file = this.get(fd, op);
    this.fds.delete(fd);
    file.removeOwner(this.owner);
    return file;
  }

  /** Descriptors in ascending order. */
  list(): Array<[number, File]> {
    return [...this.fds.entries()].sort((a, b) => a[0] - b[0]);
  }

  get size(): number {
    return this.fds.size;
  }
}

/** The address space: where mappings go and which exist. */
export class AddressSpace {
  private readonly vmas = new Map<number, Vma>();
  /** mmap_base on x86_64 without ASLR; mappings are placed upwards from here. */
  private next = 0x7f0000000000;

  constructor(private readonly owner: Holder) {}

  /** Reserves an address range for a new mapping of `file` (the driver's mmap fills in memory). */
  create(file: File, length: number, pgoff: number): Vma {
    if (!Number.isInteger(length) || length <= 0) {
      throw new KernelError('EINVAL', `mmap ${file.describe()}: length ${length}`);
    }
    if (!Number.isInteger(pgoff) || pgoff < 0) {
      throw new KernelError('EINVAL', `mmap ${file.describe()}: page offset ${pgoff}`);
    }
    const pages = Math.ceil(length / PAGE_SIZE);
    const vma: Vma = { start: this.next, length: pages * PAGE_SIZE, pgoff, file, owner: this.owner };
    return vma;
  }

  insert(vma: Vma): void {
    this.vmas.set(vma.start, vma);
    this.next = vma.start + vma.length + PAGE_SIZE;
  }

  /** Simplification: munmap must name a whole mapping (no splitting of VMAs). */
  take(start: number, length: number): Vma {
    const vma = this.vmas.get(start);
    if (vma === undefined)
      throw new KernelError('EINVAL', `munmap 0x${start.toString(16)}: no mapping starts there`);
    if (Math.ceil(length / PAGE_SIZE) * PAGE_SIZE !== vma.length) {
      throw new KernelError(
        'EINVAL',
        `munmap 0x${start.toString(16)}: length ${length} is not the mapping's ${vma.length} (partial unmap not modelled)`,
      );
    }
    this.vmas.delete(start);
    return vma;
  }

  /** Mappings in address order. */
  list(): Vma[] {
    return [...this.vmas.values()].sort((a, b) => a.start - b.start);
  }

  removeAll(): Vma[] {
    const all = this.list();
    this.vmas.clear();
    return all;
  }
}
