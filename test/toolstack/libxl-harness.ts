/**
 * A dom0 for toolstack tests in the sim engine: the hypervisor, xenstored, dom0's kernel with the
 * blktap2 driver, tapdisk2, dom0's xenbus with blkback (sending uevents), udevd, and xl + the hotplug
 * scripts installed. Guests are built by libxl but run no kernel (the DomainBuilder records the boot);
 * a test plays a guest's frontend by writing its xenstore state.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BlkbackVersion } from '../../drivers/blkback/common.js';
import { Blkback } from '../../drivers/blkback/index.js';
import { type DestroySemantics, installBlktap } from '../../drivers/blktap/driver.js';
import { GuestEvents } from '../../drivers/events.js';
import { XenbusClient } from '../../drivers/xenbus/client.js';
import { DirectTransport } from '../../drivers/xenbus/direct-transport.js';
import { Xenwatch } from '../../drivers/xenbus/xenwatch.js';
import { Kernel } from '../../emulator/kernel/kernel.js';
import type { Process } from '../../emulator/kernel/process.js';
import { UeventBackendBus } from '../../emulator/machine/xenbus-uevents.js';
import type { Env, RunResult } from '../../emulator/runtime/engine.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import { DEFAULT_TAPDISK_OPTIONS } from '../../emulator/tapdisk/options.js';
import { registerTapdisk } from '../../emulator/tapdisk/server.js';
import type { GuestStartInfo, LibxlVersion, ToolstackHost } from '../../emulator/toolstack/libxl/host.js';
import { XL_PATH } from '../../emulator/toolstack/libxl/host.js';
import { startUdevd } from '../../emulator/toolstack/udev/install.js';
import { UDEVADM_PATH } from '../../emulator/toolstack/udev/udevd.js';
import { installToolstack } from '../../emulator/toolstack/xl/install.js';
import { XenstoreDaemon } from '../../emulator/xenstored/daemon.js';
import { Hypervisor } from '../../hypervisor/index.js';
import { testTempDir } from '../temp-dirs.js';

export interface XlRun {
  code: number;
  out: string[];
  start: number;
  end: number;
}

export interface ToolHost {
  k: Kernel;
  env: Env;
  daemon: XenstoreDaemon;
  hv: Hypervisor;
  host: ToolstackHost;
  boots: GuestStartInfo[];
  /** dom0's kernel xenbus client (for test reads/writes, as xenstore-read/-write would). */
  xs: XenbusClient;
  image: string;
  xl(argv: readonly string[]): Promise<XlRun>;
  /** All processes' output so far, by name. */
  procOutput(pid: number): string[];
}

export interface ToolHostOptions {
  libxl: LibxlVersion;
  semantics?: DestroySemantics;
  blkback?: BlkbackVersion;
  seed?: number;
  configs?: Record<string, string>;
}

export function makeImage(sectors = 64): string {
  const dir = testTempDir('libxl');
  const path = join(dir, 'disk.img');
  writeFileSync(path, new Uint8Array(sectors * 512));
  return path;
}

export async function onToolHost<T>(
  o: ToolHostOptions,
  body: (h: ToolHost) => Promise<T>,
): Promise<RunResult<T>> {
  const image = makeImage();
  const hv = Hypervisor.create({ frames: 2048, maxDomains: 8 });
  const engine = createSimEngine({ seed: o.seed ?? 1 });
  try {
    return await engine.run(async (ctl) => {
      const env = ctl.env;
      const hc = hv.hypercalls(0);
      const daemon = new XenstoreDaemon({ logger: (l) => env.trace.log('xenstored', l) });
      const k = new Kernel(env);
      installBlktap(k, { destroySemantics: o.semantics ?? '2010-08' });
      registerTapdisk(k, DEFAULT_TAPDISK_OPTIONS);
      const xenwatch = new Xenwatch(env);
      xenwatch.start();
      const client = new XenbusClient(env, new DirectTransport(daemon, { domid: 0, privileged: true }), {
        xenwatch,
      });
      await client.write('/local/domain/0/name', 'Domain-0');
      await client.mkdir('/local/domain/0/backend');
      const bus = new UeventBackendBus(k, client);
      const blkback = new Blkback({
        env,
        kernel: k,
        hc,
        events: new GuestEvents(hc),
        client,
        bus,
        version: o.blkback ?? '2013',
        holders: ctl.holders,
      });
      await bus.start();
      await blkback.register();
      const boots: GuestStartInfo[] = [];
      const host: ToolstackHost = {
        kernel: k,
        xenstored: daemon,
        privcmd: { dom0: hc, foreign: (d) => hv.hypercalls(d) },
        builder: { boot: (_d, _n, si) => void boots.push(si) },
        libxl: o.libxl,
        holders: ctl.holders,
        files: new Map(Object.entries(o.configs ?? {}).map(([p, t]) => [p, t.replaceAll('@IMAGE@', image)])),
      };
      installToolstack(host);
      startUdevd(k, o.libxl);
      const h: ToolHost = {
        k,
        env,
        daemon,
        hv,
        host,
        boots,
        xs: client,
        image,
        async xl(argv) {
          const start = env.now();
          const proc: Process = k.spawn(XL_PATH, argv, { name: 'xl' });
          const st = await k.processes.waitExit(proc);
          const end = env.now();
          // `udevadm settle`: the scripts udev runs for what xl did have run (a real guest takes that
          // long to boot before its frontend can close).
          await k.processes.waitExit(k.spawn(UDEVADM_PATH, ['settle'], { name: 'udevadm' }));
          return { code: st?.code ?? -1, out: [...proc.output], start, end };
        },
        procOutput: (pid) => [...(k.processes.get(pid)?.output ?? [])],
      };
      return body(h);
    });
  } finally {
    await engine.close();
  }
}

export const GUEST_CFG = `# a PV guest with one tap disk
name = "guest1"
memory = 16
disk = [ 'tap2:aio:@IMAGE@,xvda,w' ]
`;
