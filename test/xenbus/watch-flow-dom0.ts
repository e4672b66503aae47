// dom0 for the watch-flow tests: the shared test dom0's xenstore side (test/fixtures/dom0-xenstore.ts)
// with xenstored tracing watch-fire, a watching admin connection and a second dom0 client.
// Guests are the harness's fixtures/xs-guest.ts.
import { XsType } from '../../drivers/xenbus/xs-wire.js';
import type { DomainContext, DomainProgram } from '../../emulator/runtime/engine.js';
import { startDom0Xenstore } from '../fixtures/dom0-xenstore.js';

export function boot(ctx: DomainContext): DomainProgram {
  const { env } = ctx;
  const { guests } = ctx.config as { guests: number[] };
  const xs = startDom0Xenstore(ctx, { guests, trace: true });
  xs.admin.request(XsType.WATCH, '/local/domain\0admin\0');
  // Two dom0 clients over direct connections, as the kernel and a toolstack process would have.
  const kernel = xs.client;
  const tool = xs.newClient();
  const seen: string[] = [];
  const seenQueue = env.waitQueue('test: dom0 watch callbacks');

  return {
    /** Watch `path` from both dom0 clients; each callback records "<client> <path>". */
    async watchBoth(path: string) {
      await kernel.watch(path, (p) => {
        seen.push(`kernel ${p}`);
        seenQueue.wakeAll();
      });
      await tool.watch(path, (p) => {
        seen.push(`tool ${p}`);
        seenQueue.wakeAll();
      });
    },
    async write(path: string, value: string) {
      await kernel.write(path, value);
    },
    async seen() {
      return seen;
    },
    async settle(ms: number) {
      await env.sleep(ms);
    },
    /** Wait until the callbacks have recorded `n` events (no host-time window in threads). */
    async waitSeen(n: number) {
      await env.wait(seenQueue, () => seen.length >= n, { what: `test: ${n} dom0 watch callbacks` });
    },
  };
}
