/**
 * The kernel side of the xenstore ring (Linux drivers/xen/xenbus/xenbus_comms.c): requests are written
 * into the request ring, replies and watch events read from the response ring by one reader task
 * ("xenbus", as Linux's xenbus_thread), and the event channel is signalled after every index update.
 *
 * The domain's event-channel dispatch calls onEvent() when the xenstore port fires; that wakes both the
 * reader and any writer waiting for room. Nothing polls.
 */
import type { Env, Holder, Task, WaitQueue } from '../../emulator/runtime/engine.js';
import type { XsTransport } from './transport.js';
import { REQ_RING, RSP_RING, XsRingIndexError, XsRingPage } from './xs-ring-page.js';
import { XsFrameParser, type XsMessage } from './xs-wire.js';

export interface XsRingClientOptions {
  /** The domain's xenstore interface page (start_info.store_mfn), at least 2080 bytes, 4-byte aligned. */
  page: Uint8Array;
  /** Signal xenstored: EVTCHNOP_send on the domain's xenstore port (start_info.store_evtchn). */
  notify: () => void;
  /** The xenstored task in dom0, named as holder in waits for replies and ring room. */
  server?: Holder;
  label?: string;
}

export class XsRingClientTransport implements XsTransport {
  readonly label: string;
  readonly page: XsRingPage;
  private readonly queue: WaitQueue;
  private readonly framer = new XsFrameParser();
  private failure: Error | undefined;
  private failureReported = false;
  private onFailure: ((err: Error) => void) | undefined;
  private readerTask: Task | undefined;

  constructor(
    private readonly env: Env,
    private readonly options: XsRingClientOptions,
  ) {
    this.page = new XsRingPage(options.page);
    this.label = options.label ?? `xenstore ring of dom${env.domid}`;
    this.queue = env.waitQueue('xenbus ring');
  }

  /** The xenstore event channel fired: the reader and blocked writers re-check the indices. */
  onEvent(): void {
    this.queue.wakeAll();
  }

  get reader(): Task | undefined {
    return this.readerTask;
  }

  attach(sink: (msg: XsMessage) => void, onFailure: (err: Error) => void): void {
    if (this.readerTask) throw new Error(`${this.label}: attach() called twice`);
    this.onFailure = onFailure;
    this.readerTask = this.env.spawn(
      'xenbus',
      async () => {
        for (;;) {
          await this.env.wait(this.queue, () => this.failure !== undefined || this.responseBytes() !== 0, {
            what: 'xenstore reply or watch event',
            holders: () => this.servers(),
          });
          if (this.failure) {
            this.fail(this.failure);
            return;
          }
          let bytes: Uint8Array;
          let msgs: XsMessage[];
          try {
            bytes = this.page.consume(RSP_RING);
            // The daemon may be waiting for room to finish a message.
            this.options.notify();
            msgs = this.framer.push(bytes);
          } catch (e) {
            this.fail(e as Error);
            return;
          }
          for (const m of msgs) sink(m);
        }
      },
      { daemon: true, component: 'xenbus' },
    );
  }

  async send(message: Uint8Array): Promise<void> {
    let off = 0;
    while (off < message.length) {
      await this.env.wait(this.queue, () => this.failure !== undefined || this.requestRoom() !== 0, {
        what: 'room in the xenstore request ring',
        holders: () => this.servers(),
      });
      if (this.failure) {
        this.fail(this.failure);
        throw this.failure;
      }
      let n: number;
      try {
        n = this.page.produce(REQ_RING, message.subarray(off));
      } catch (e) {
        this.fail(e as Error);
        throw e;
      }
      off += n;
      this.options.notify();
    }
  }

  servers(): readonly Holder[] {
    return this.options.server ? [this.options.server] : [];
  }

  /** Bytes waiting in the response ring; -1 when its indices are corrupt (the reader then reports it). */
  private responseBytes(): number {
    try {
      return this.page.used(RSP_RING);
    } catch (e) {
      if (e instanceof XsRingIndexError) {
        this.failure ??= e;
        return -1;
      }
      throw e;
    }
  }

  private requestRoom(): number {
    try {
      return this.page.free(REQ_RING);
    } catch (e) {
      if (e instanceof XsRingIndexError) {
        this.failure ??= e;
        return -1;
      }
      throw e;
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    if (!this.failureReported) {
      this.failureReported = true;
      this.env.trace.log('xenbus', `${this.label}: ${this.failure.message}; connection to xenstored lost`);
      this.onFailure?.(this.failure);
    }
    this.queue.wakeAll();
  }
}
