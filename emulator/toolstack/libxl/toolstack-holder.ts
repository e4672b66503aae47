/**
 * The toolstack as a party in the wait-for graph. Backends that keep something held until "the
 * toolstack" removes their xenstore directory (blkback holding a tapdev open) name a holder labelled
 * `toolstack` through the engine's holder directory; this is that holder. While an xl process performs
 * a teardown (libxl_domain_destroy, libxl_device_disk_remove/_del), the holder is blocked on whatever
 * that process's task waits for, so a stall chain that reaches blkback continues into libxl's own wait
 * (a tap-ctl select() on tapdisk, say) and closes the cycle when that wait leads back.
 */
import { TOOLSTACK_HOLDER_LABEL } from '../../../drivers/blkback/xenbus.js';
import type { Holder, HolderDirectory, Task, WaitFor } from '../../runtime/engine.js';

/** The label blkback resolves. */
export { TOOLSTACK_HOLDER_LABEL };

/** What kind of teardown an xl task is doing (for reports and tests). */
export type TeardownKind = 'domain-destroy' | 'device-remove';

interface Teardown {
  readonly task: Task;
  readonly kind: TeardownKind;
  readonly target: string;
  /** Nested teardowns of the same task (domain_create's failure path destroys the domain). */
  depth: number;
}

export class ToolstackHolder implements Holder {
  readonly label = TOOLSTACK_HOLDER_LABEL;
  /** Running teardowns, oldest first. */
  private readonly running: Teardown[] = [];

  /** The teardowns in progress: which task, what kind, of what. */
  active(): ReadonlyArray<{ task: string; kind: TeardownKind; target: string }> {
    return this.running.map((t) => ({ task: t.task.label, kind: t.kind, target: t.target }));
  }

  /**
   * The wait of the oldest task in a teardown that is blocked right now; undefined when no teardown
   * runs or every such task is running (then the toolstack is making progress itself).
   */
  blockedOn(): WaitFor | undefined {
    for (const t of this.running) {
      if (t.task.state !== 'blocked') continue;
      const w = t.task.blockedOn();
      if (w !== undefined) return w;
    }
    return undefined;
  }

  /** Runs `body` as a teardown performed by `task` (the calling xl process's task). */
  async during<T>(task: Task, kind: TeardownKind, target: string, body: () => Promise<T>): Promise<T> {
    let entry = this.running.find((t) => t.task === task);
    if (entry === undefined) {
      entry = { task, kind, target, depth: 0 };
      this.running.push(entry);
    }
    entry.depth++;
    try {
      return await body();
    } finally {
      if (--entry.depth === 0) this.running.splice(this.running.indexOf(entry), 1);
    }
  }
}

/** One holder per host; published in the host's holder directory the first time it is asked for. */
const byHost = new WeakMap<object, ToolstackHolder>();

export function toolstackHolder(host: { readonly holders?: HolderDirectory }): ToolstackHolder {
  let h = byHost.get(host);
  if (h === undefined) {
    h = new ToolstackHolder();
    byHost.set(host, h);
    host.holders?.publish(h);
  }
  return h;
}
