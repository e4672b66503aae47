/**
 * Input from outside a run (a socket of `xenpv run --serve`): items pushed by host code, taken by the
 * controller through `Controller.receive`, the one await on something the engine does not control.
 * The sim engine stays idle (neither finished nor deadlocked) while its controller waits here, so what
 * runs depends only on the sequence of items, not on when they arrive.
 */
import type { Env } from './engine.js';

export class ExternalInbox<T> {
  private readonly items: T[] = [];
  private closedFlag = false;
  private readonly listeners = new Set<() => void>();

  /** Queues an item for the controller. */
  push(item: T): void {
    if (this.closedFlag) throw new Error('external inbox: closed; no more input is taken');
    this.items.push(item);
    this.changed();
  }

  /** No more input: the controller's receive returns undefined once the queue is empty. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.changed();
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** An item is queued, or the inbox is closed. */
  get ready(): boolean {
    return this.items.length > 0 || this.closedFlag;
  }

  take(): T | undefined {
    return this.items.shift();
  }

  /** Called (outside any task) after each push and at close; returns a function that unsubscribes. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const l of [...this.listeners]) l();
  }
}

/** What an engine does around a controller's receive (count the wait, re-arm guards). */
export interface ReceiveHooks {
  begin(): void;
  end(): void;
  /** Input arrived (called outside any task, before the controller is woken). */
  delivered?(): void;
}

/** The controller's receive, in any engine: a declared wait on the inbox, woken by its changes. */
export async function receiveExternal<T>(
  env: Env,
  inbox: ExternalInbox<T>,
  what: string,
  hooks: ReceiveHooks,
): Promise<T | undefined> {
  const q = env.waitQueue(`external input: ${what}`);
  const off = inbox.onChange(() => {
    hooks.delivered?.();
    q.wakeAll();
  });
  hooks.begin();
  try {
    await env.wait(q, () => inbox.ready, { what });
  } finally {
    off();
    hooks.end();
  }
  return inbox.take();
}
