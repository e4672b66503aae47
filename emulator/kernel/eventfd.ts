/**
 * eventfd(2): a 64-bit counter behind a descriptor. write() adds to it, read() returns it (8 bytes,
 * little-endian) and resets it to 0, select() sees it readable while it is non-zero. Kernel code that
 * completes work for user space (AIO completions with IOCB_FLAG_RESFD) signals one with `signal`.
 */
import { KernelError } from './errno.js';
import { File, type FileOps } from './file.js';
import type { PollHub } from './poll.js';
import type { KernelWaits } from './waits.js';

const EVENTFD_MAX = (1n << 64n) - 2n;

export class Eventfd {
  private counter = 0n;

  constructor(
    private readonly poll: PollHub,
    private readonly waits: KernelWaits,
    readonly name: string,
  ) {}

  get value(): bigint {
    return this.counter;
  }

  /** eventfd_signal(): add `n` and wake selectors. */
  signal(n = 1n): void {
    if (n <= 0n) return;
    this.counter = this.counter + n > EVENTFD_MAX ? EVENTFD_MAX : this.counter + n;
    this.poll.wake();
  }

  /** A File for the descriptor (anon inode "[eventfd]"). */
  file(): File {
    const ops: FileOps = {
      describe: () => `[eventfd] ${this.name}`,
      poll: () => ({ readable: this.counter > 0n, writable: this.counter < EVENTFD_MAX }),
      read: async (file, request) => {
        if (request.length < 8)
          throw new KernelError('EINVAL', `read ${this.name}: ${request.length} bytes < 8`);
        if (this.counter === 0n) {
          if (file.nonblocking) throw new KernelError('EAGAIN', `read ${this.name}: counter is 0`);
          await this.waits.waitInterruptible(this.poll.queue, () => this.counter > 0n, {
            what: `${this.name} to be signalled`,
          });
        }
        const out = new Uint8Array(8);
        new DataView(out.buffer).setBigUint64(0, this.counter, true);
        this.counter = 0n;
        this.poll.wake();
        return out;
      },
      write: async (_file, data) => {
        if (data.length < 8) throw new KernelError('EINVAL', `write ${this.name}: ${data.length} bytes < 8`);
        const n = new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0, true);
        if (n === (1n << 64n) - 1n) throw new KernelError('EINVAL', `write ${this.name}: 0xffffffffffffffff`);
        if (this.counter + n > EVENTFD_MAX)
          throw new KernelError('EAGAIN', `write ${this.name}: counter full`);
        this.signal(n);
        return 8;
      },
    };
    return new File(`anon_inode:[eventfd] ${this.name}`, ops, { read: true, write: true });
  }
}
