/**
 * dom0's program: the kernel model with the blktap2 driver and dom0's grant table and event channels,
 * the xenstore daemon (its ring transport for guests and a direct connection standing in for the Unix
 * socket of user space), dom0's xenwatch, the backend bus with blkback, the installed user-space
 * programs (`tap-ctl`, `tapdisk2`, `xl`, the `block` and `xen-hotplug-cleanup` hotplug scripts, and
 * udevd, which runs them on the backend devices' uevents before libxl 4.2), one xl config per guest of the
 * host (`/etc/xen/<name>.cfg`), VIRQ_DOM_EXC (xenstored's @releaseDomain), and the domain builder that
 * boots Xen domains into guest slots. Every component runs at the version the machine config names.
 *
 * The controller calls: xl(argv), tapCtl(argv) -> {exitCode, stdout, stderr}; xenstoreRead/Write/Rm/Ls;
 * ps; domains; guestStates; waitDomainState; createDomain/destroyDomain (the builder, for demos).
 */

import { Blkback } from '../../drivers/blkback/index.js';
import { installBlktap } from '../../drivers/blktap/driver.js';
import { GuestEvents } from '../../drivers/events.js';
import { GrantTable } from '../../drivers/grant-table.js';
import { XenbusClient } from '../../drivers/xenbus/client.js';
import { DirectTransport } from '../../drivers/xenbus/direct-transport.js';
import { XenstoreError } from '../../drivers/xenbus/errors.js';
import { Xenwatch } from '../../drivers/xenbus/xenwatch.js';
import { XenError } from '../../hypervisor/errno.js';
import { Hypervisor } from '../../hypervisor/hypervisor.js';
import { VIRQ_DOM_EXC } from '../../hypervisor/layout.js';
import { KernelError } from '../kernel/errno.js';
import { Kernel } from '../kernel/kernel.js';
import { LoopDevices } from '../kernel/loop.js';
import type { DomainContext, DomainProgram } from '../runtime/engine.js';
import { ImageFaults } from '../tapdisk/image-faults.js';
import { registerTapdisk } from '../tapdisk/server.js';
import { setBlockScriptVersion } from '../toolstack/hotplug/block.js';
import { LOSETUP_PATH, losetupProgram } from '../toolstack/hotplug/losetup.js';
import type { ToolstackHost } from '../toolstack/libxl/host.js';
import { XL_PATH } from '../toolstack/libxl/host.js';
import { runTapCtl } from '../toolstack/tap-ctl/command.js';
import { startUdevd } from '../toolstack/udev/install.js';
import { installToolstack } from '../toolstack/xl/install.js';
import { XsClient } from '../xenstored/client.js';
import { XenstoreDaemon } from '../xenstored/daemon.js';
import { createDom0Layout } from '../xenstored/layout.js';
import { XenstoredRingTransport } from '../xenstored/ring-transport.js';
import { XenstoredStoreChannels } from '../xenstored/store-channels.js';
import type { DomainBootConfig } from './config.js';
import { dom0FaultMethods } from './dom0-faults.js';
import { MachineDomainBuilder } from './domain-builder.js';
import { recordLocalXenstored } from './local-xenstored.js';
import { machineKicker } from './machine-kicker.js';
import { hypervisorBuffers, SLOTS_SHARED } from './shared-names.js';
import { SlotTable } from './slot-table.js';
import { UeventBackendBus } from './xenbus-uevents.js';
import { resolveDiskTarget, xlConfigFiles } from './xl-config.js';

export interface CommandResult {
  exitCode: number;
  stdout: string[];
  stderr: string[];
}

const TAP_CTL_PATH = '/usr/sbin/tap-ctl';

export async function boot(ctx: DomainContext): Promise<DomainProgram> {
  const { env } = ctx;
  const cfg = ctx.config as DomainBootConfig;
  const machine = cfg.machine;
  const slots = new SlotTable(ctx.shared[SLOTS_SHARED]);
  const kicker = machineKicker(ctx.kicker, slots);
  const hv = Hypervisor.attach(hypervisorBuffers(ctx.shared), kicker);
  const hc = hv.hypercalls(0);
  const builder = new MachineDomainBuilder(hc, hv, slots, machine, kicker, env);

  // The kernel and its drivers.
  const kernel = new Kernel(env);
  const gt = new GrantTable(hc, { env });
  const events = new GuestEvents(hc, { env });
  const blktap = installBlktap(kernel, {
    destroySemantics: machine.versions.blktapKernel,
  });

  // xenstored: guests reach it over their rings once introduced (the toolstack's INTRODUCE maps the
  // ring through the reserved grant and binds the store event channel: XenstoredStoreChannels).
  let channels: XenstoredStoreChannels | undefined;
  const daemon = new XenstoreDaemon({
    tracer: env.trace,
    logger: (line) => env.trace.log('xenstored', line),
    domainExists: (domid) => domid === 0 || hv.domainInfo(domid) !== undefined,
    onIntroduce: (domid, gfn, port) => channels!.introduce(domid, gfn, port),
    onRelease: (domid) => channels?.release(domid),
  });
  // In sim the machine that built us is in this thread and may hand the daemon out (--xenstore-socket).
  if (env.engine === 'sim') recordLocalXenstored(ctx.shared[SLOTS_SHARED], daemon);
  const ring = new XenstoredRingTransport(env, daemon);
  channels = new XenstoredStoreChannels(hc, events, ring, (line) => env.trace.log('xenstored', line));
  ring.start();
  env.onUpcall(() => {
    events.handleUpcall();
    ring.onEvent();
  });
  const xenwatch = new Xenwatch(env);
  xenwatch.start();
  // dom0's kernel xenbus and user space both talk to the local daemon directly (simplification: Linux
  // dom0 reaches a local xenstored through its own store ring / the socket).
  const xs = new XenbusClient(env, new DirectTransport(daemon, { domid: 0, privileged: true }), { xenwatch });
  createDom0Layout(new XsClient(daemon.connect({ domid: 0, privileged: true, send: () => true })));

  kernel.registerProgram(TAP_CTL_PATH, async (proc, args) =>
    runTapCtl(proc, args, {
      variant: machine.versions.tapCtl,
      tty: false,
      kernel,
    }),
  );
  // Storage faults a scenario injects under the image files (dom0-faults.ts).
  const imageFaults = new ImageFaults();
  registerTapdisk(kernel, {
    variant: machine.versions.tapdisk,
    replyBeforeTeardown: machine.versions.tapdiskReplyBeforeTeardown,
    openFailure: machine.versions.tapdiskOpenFailure,
    controlExit: machine.versions.tapdiskControlExit,
    latencyMs: 1,
    imageFaults,
  });

  // The block backend on dom0's xenbus, sharing dom0's event channels (one upcall handler).
  // Its devices' add/remove uevents reach udevd, which runs the hotplug scripts the rules name.
  const bus = new UeventBackendBus(kernel, xs, {
    shutdownHook: machine.versions.xenbusBackendShutdown,
  });
  const blkback = new Blkback({
    env,
    kernel,
    hc,
    events,
    client: xs,
    bus,
    version: machine.versions.blkback,
    reconnect: machine.versions.blkbackReconnect,
    kthreadStop: machine.versions.blkbackKthreadStop,
    persistentNegotiation: machine.versions.blkbackPersistentNegotiation,
    holders: ctx.holders,
    ...machine.blkback,
  });
  // The loop driver (max_loop 8) and losetup: the block script binds image files to /dev/loopN.
  const loops = new LoopDevices(kernel);
  kernel.registerProgram(LOSETUP_PATH, losetupProgram(loops));
  // Block devices the host has before any guest (losetup'd images, RAM disks): `phy` targets.
  for (const [minor, d] of (machine.blockDevices ?? []).entries()) {
    const loop = /^loop(\d+)$/.exec(d.name);
    if (loop !== null) {
      // The admin's `losetup /dev/loopN FILE`.
      if (d.backing.kind !== 'file' || d.latencyMs !== undefined) {
        throw new Error(
          `machine config: blockDevices[${minor}] ${d.name}: a loop device takes a file and no latencyMs`,
        );
      }
      loops.setFd(Number(loop[1]), d.backing.path, { readOnly: d.readOnly ?? false });
      continue;
    }
    const disk = kernel.createImageDisk({
      name: d.name,
      minor,
      backing: d.backing,
      ...(d.readOnly === undefined ? {} : { readOnly: d.readOnly }),
      ...(d.latencyMs === undefined ? {} : { latencyMs: d.latencyMs }),
    });
    kernel.ns.mknod(`/dev/${d.name}`, 'blk', disk.bdev.major, disk.bdev.minor);
  }
  // Driver init needs a task (xenbus requests lock); methods wait for it (see `ready`).
  let initDone = false;
  const initQ = env.waitQueue('dom0 driver init');
  env.spawn(
    'kernel_init',
    async () => {
      await bus.start();
      await blkback.register();
      initDone = true;
      initQ.wakeAll();
    },
    { component: 'kernel' },
  );
  const ready = async (): Promise<void> => {
    if (!initDone) await env.wait(initQ, () => initDone, { what: 'dom0 drivers (xenbus, blkback) to start' });
  };

  // The toolstack: xl and the block script as dom0 processes; xl reads the generated guest configs.
  const host: ToolstackHost = {
    kernel,
    xenstored: daemon,
    privcmd: { dom0: hc, foreign: (d) => hv.hypercalls(d) },
    builder,
    libxl: machine.versions.libxl,
    files: xlConfigFiles(machine),
    holders: ctx.holders,
  };
  installToolstack(host);
  setBlockScriptVersion(kernel, machine.versions.hotplugBlock);
  // udevd with the xen-backend rules of the toolstack's era (4.2's defer to libxl).
  startUdevd(kernel, machine.versions.libxl);

  // VIRQ_DOM_EXC: a domain shut down, crashed or died. xenstored fires @releaseDomain for introduced
  // domains (domain_cleanup), which wakes xl's death-waiting daemon; domain-state waits re-check.
  const domainStateQ = env.waitQueue('domain state (VIRQ_DOM_EXC)');
  builder.onStateChange(() => domainStateQ.wakeAll());
  const virqPort = events.bindVirq(VIRQ_DOM_EXC, () => {
    const candidates = new Set([...hv.domains().map((d) => d.domid), ...builder.builtDomids()]);
    for (const d of candidates) {
      if (d === 0 || !daemon.isDomainIntroduced(d)) continue;
      const info = hv.domainInfo(d);
      if (info === undefined || info.shutdown || info.dying) daemon.notifyDomainShutdown(d);
    }
    domainStateQ.wakeAll();
  });
  if (virqPort <= 0) throw new Error(`dom0: binding VIRQ_DOM_EXC failed (${virqPort})`);

  /** Runs an installed program to its end and collects what it printed. */
  const runCommand = async (path: string, argv: readonly string[], name?: string): Promise<CommandResult> => {
    // Simplification: a process has one output stream; what it printed is stdout.
    const stderr: string[] = [];
    const proc = kernel.spawn(path, argv, name === undefined ? {} : { name });
    const status = await kernel.processes.waitExit(proc);
    const exitCode = status?.code ?? 128 + (status?.wstatus ?? 0);
    return { exitCode, stdout: [...proc.output], stderr };
  };

  const xsOp = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof XenstoreError) throw new Error(`xenstore: ${e.message}`);
      throw e;
    }
  };

  void gt;
  void blktap;
  void blkback;

  return {
    ...dom0FaultMethods({ env, kernel, blktap, xenwatch, hv, machine, imageFaults, builder }),
    async xl(argv: string[]): Promise<CommandResult> {
      await ready();
      // xl runs in the run's work dir: a relative block-attach target names a file there. The spec
      // components are one spec to xl; written `format=raw, vdev=xvda` they keep their own commas.
      const args =
        argv[0] === 'block-attach' && argv.length > 2
          ? [
              ...argv.slice(0, 2),
              resolveDiskTarget(
                argv
                  .slice(2)
                  .map((a, i, all) => (i < all.length - 1 ? a.replace(/,\s*$/, '') : a))
                  .join(','),
                machine.workDir,
              ),
            ]
          : argv;
      return runCommand(XL_PATH, args, 'xl');
    },
    async losetup(argv: string[]): Promise<CommandResult> {
      return runCommand(LOSETUP_PATH, argv);
    },
    /**
     * dom0's power-off (kernel_power_off): device_shutdown runs each bus's shutdown hook, here the
     * backend bus's. Simplification: the halt that follows is not modelled; dom0 keeps answering so the
     * run's end state can still be read.
     */
    async hostShutdown(): Promise<void> {
      await ready();
      await bus.shutdown();
      env.trace.log('kernel', 'reboot: Power down');
    },
    async tapCtl(argv: string[]): Promise<CommandResult> {
      await ready();
      return runCommand(TAP_CTL_PATH, argv);
    },
    async xenstoreRead(path: string): Promise<string | undefined> {
      return xsOp(() => xs.tryRead(path));
    },
    async xenstoreWrite(path: string, value: string): Promise<void> {
      await xsOp(() => xs.write(path, value));
    },
    async xenstoreRm(path: string): Promise<void> {
      await xsOp(() => xs.rm(path));
    },
    async xenstoreLs(path: string): Promise<string[]> {
      return xsOp(() => xs.directory(path));
    },
    async xenstoreSnapshot(path: string): Promise<unknown> {
      return daemon.snapshot(path);
    },
    async ps(): Promise<unknown[]> {
      return kernel.processes.ps();
    },
    async domains(): Promise<{ domid: number; state: string; name: string | undefined }[]> {
      return hv.domains().map((d) => ({ domid: d.domid, state: d.state, name: builder.nameOf(d.domid) }));
    },
    async createDomain(name: string, kernelName: string): Promise<number> {
      return builder.create(name, kernelName);
    },
    async destroyDomain(domid: number): Promise<void> {
      builder.destroy(domid);
    },
    /** Wait for a node to have `value`, to exist (value undefined), or to be gone (absent). */
    async xenstoreWait(
      path: string,
      value: string | undefined,
      absent: boolean,
      timeoutMs?: number,
    ): Promise<boolean> {
      const q = env.waitQueue(`xenstore watch ${path}`);
      let current: string | undefined;
      const check = async () => {
        current = await xsOp(() => xs.tryRead(path));
        q.wakeAll();
      };
      const holds = () =>
        absent ? current === undefined : value === undefined ? current !== undefined : current === value;
      const w = await xs.watch(path, check);
      try {
        await check();
        const what = absent
          ? `${path} to be removed`
          : value === undefined
            ? `${path} to exist`
            : `${path} = ${value}`;
        const r = await env.wait(q, holds, {
          what: `xenstore ${what}`,
          ...(timeoutMs === undefined ? {} : { timeoutMs, timeoutName: `wait for xenstore ${what}` }),
        });
        return r === 'ok';
      } finally {
        await xs.unwatch(w);
      }
    },
    /** Wait until guest `name` is in `state`, re-checked at each VIRQ_DOM_EXC and builder event. */
    async waitDomainState(name: string, state: string, timeoutMs?: number): Promise<boolean> {
      builder.slotFor(name);
      const what = `guest ${name} to be ${state}`;
      const r = await env.wait(domainStateQ, () => builder.guestState(name) === state, {
        what,
        ...(timeoutMs === undefined ? {} : { timeoutMs, timeoutName: `wait for ${what}` }),
      });
      return r === 'ok';
    },
    async guestStates(): Promise<Record<string, string | undefined>> {
      const out: Record<string, string | undefined> = {};
      for (const g of machine.guests) out[g.name] = builder.guestState(g.name);
      return out;
    },
    async slots(): Promise<unknown[]> {
      return Array.from({ length: slots.count }, (_, i) => slots.info(i));
    },
  };
}

/** Errors a command may expect and report (kept for callers that map them to exit codes). */
export function isExpectedFailure(e: unknown): boolean {
  return e instanceof KernelError || e instanceof XenError || e instanceof XenstoreError;
}
