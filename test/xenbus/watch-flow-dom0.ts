// dom0 for the watch-flow tests: the xenbus test dom0 (xenstored, the ring transport to each guest,
// dom0's kernel xenbus over a direct connection with its xenwatch) with xenstored tracing watch-fire.
// Guests are the harness's fixtures/xs-guest.ts.
import { XenbusClient } from '../../drivers/xenbus/client.js';
import { DirectTransport } from '../../drivers/xenbus/direct-transport.js';
import { Xenwatch } from '../../drivers/xenbus/xenwatch.js';
import { XsType } from '../../drivers/xenbus/xs-wire.js';
import type { DomainContext, DomainProgram } from '../../emulator/runtime/engine.js';
import { XenstoreDaemon } from '../../emulator/xenstored/daemon.js';
import { XenstoredRingTransport } from '../../emulator/xenstored/ring-transport.js';

export function boot(ctx: DomainContext): DomainProgram {
  const { env } = ctx;
  const { guests } = ctx.config as { guests: number[] };
  let transport: XenstoredRingTransport | undefined;
  const daemon = new XenstoreDaemon({
    logger: (line) => env.trace.log('xenstored', line),
    tracer: env.trace,
    onIntroduce: (domid) => {
      transport!.addDomain({
        domid,
        page: new Uint8Array(ctx.shared[`xs-ring-${domid}`]!),
        notify: () => ctx.kicker.kick(domid),
      });
    },
    onRelease: (domid) => transport!.removeDomain(domid),
  });
  transport = new XenstoredRingTransport(env, daemon);
  transport.start();
  env.onUpcall(() => transport!.onEvent());

  // A plain daemon connection (not a XenbusClient): its events are counted but have no callbacks.
  const admin = daemon.connect({ domid: 0, send: () => true });
  for (const g of guests) {
    admin.request(XsType.MKDIR, `/local/domain/${g}\0`);
    admin.request(XsType.SET_PERMS, `/local/domain/${g}\0n${g}\0`);
    daemon.introduceDomain(g, BigInt(g), 1);
  }
  admin.request(XsType.WATCH, '/local/domain\0admin\0');

  const xenwatch = new Xenwatch(env);
  xenwatch.start();
  // Two dom0 clients over direct connections, as the kernel and a toolstack process would have.
  const kernel = new XenbusClient(env, new DirectTransport(daemon, { domid: 0, privileged: true }), {
    xenwatch,
  });
  const tool = new XenbusClient(env, new DirectTransport(daemon, { domid: 0, privileged: true }), {
    xenwatch,
  });
  const seen: string[] = [];

  return {
    /** Watch `path` from both dom0 clients; each callback records "<client> <path>". */
    async watchBoth(path: string) {
      await kernel.watch(path, (p) => {
        seen.push(`kernel ${p}`);
      });
      await tool.watch(path, (p) => {
        seen.push(`tool ${p}`);
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
  };
}
