/**
 * The faults a scenario injects, carried out in dom0 through the mechanism each one stands for:
 * - kill-tapdisk: kill(2) through the kernel model, so a tapdisk in an uninterruptible wait (munmap in
 *   DETACH) dies only when that wait ends;
 * - stall-xenwatch: a watch callback queued on dom0's one xenwatch task that sleeps, so every watch
 *   event behind it waits (teardown.md §2 residual race, C8);
 * - slow-image / fail-image: the storage under the image file, for tapdisk (ImageFaults) and for the
 *   phy path (the image disk backed by that file);
 * - lose-event: the hypervisor's send path drops the next notifications to a domain's port;
 * - slow-hotplug: the next run of the block hotplug script's `add` sleeps before it writes
 *   physical-device (hotplug/block.ts), as on a loaded dom0 or behind a slow losetup.
 * Each one is traced as kind 'fault' where it takes effect.
 */
import { resolve } from 'node:path';
import type { BlktapDriver } from '../../drivers/blktap/driver.js';
import { XenbusWatch, type Xenwatch } from '../../drivers/xenbus/xenwatch.js';
import type { Hypervisor } from '../../hypervisor/hypervisor.js';
import { ImageDisk } from '../kernel/image-disk.js';
import type { Kernel } from '../kernel/kernel.js';
import { Process } from '../kernel/process.js';
import type { SignalName } from '../kernel/signals.js';
import type { Env } from '../runtime/engine.js';
import type { ImageFaults } from '../tapdisk/image-faults.js';
import { TAPDISK2_PATH } from '../tapdisk/server.js';
import { armSlowHotplugAdd, pendingSlowHotplugAdds } from '../toolstack/hotplug/block.js';
import type { MachineConfig } from './config.js';
import type { MachineDomainBuilder } from './domain-builder.js';

export interface Dom0FaultDeps {
  env: Env;
  kernel: Kernel;
  blktap: BlktapDriver;
  xenwatch: Xenwatch;
  hv: Hypervisor;
  machine: MachineConfig;
  imageFaults: ImageFaults;
  builder: MachineDomainBuilder;
}

/** Where an image of the scenario lives on the host (relative names are under the run's work dir). */
function imagePath(machine: MachineConfig, image: string): string {
  if (image.startsWith('/')) return resolve(image);
  if (machine.workDir === undefined) {
    throw new Error(`fault: image "${image}" is relative and the machine has no work dir`);
  }
  return resolve(machine.workDir, image);
}

/** The part of a dom0 block device (machine config `blockDevices`) a fault looks at. */
interface FileBlockDevice {
  name: string;
  backing: { kind: string; path?: string };
  latencyMs?: number;
}

/** The phy-path image disks backed by `path` (dom0 block devices of the machine config). */
function imageDisksOf(d: Dom0FaultDeps, path: string): { disk: ImageDisk; latencyMs: number }[] {
  const out: { disk: ImageDisk; latencyMs: number }[] = [];
  const devices = (d.machine as { blockDevices?: FileBlockDevice[] }).blockDevices ?? [];
  for (const dev of devices) {
    if (dev.backing.kind !== 'file' || dev.backing.path === undefined || resolve(dev.backing.path) !== path)
      continue;
    const driver = d.kernel.blocks.byName(dev.name)?.driver;
    if (driver instanceof ImageDisk) out.push({ disk: driver, latencyMs: dev.latencyMs ?? 0 });
  }
  return out;
}

function checkImageKnown(d: Dom0FaultDeps, image: string, path: string): void {
  const known = (d.machine.images ?? []).map((i) => resolve(i.path));
  if (!known.includes(path) && imageDisksOf(d, path).length === 0) {
    const names = (d.machine.images ?? []).map((i) => i.path).join(', ') || 'none';
    throw new Error(`fault: no image "${image}" on this host (images: ${names})`);
  }
}

export function dom0FaultMethods(d: Dom0FaultDeps) {
  const { env, kernel } = d;
  const fault = (fields: Record<string, unknown>) => env.trace.emit('fault', 'fault', fields);

  return {
    /** Signals the tapdisk2 serving `minor` (the process holding its ring), or every tapdisk2. */
    async faultKillTapdisk(signal: string, minor?: number): Promise<number[]> {
      let pids: number[];
      if (minor !== undefined) {
        const tap = d.blktap.tap(minor);
        if (tap === undefined) throw new Error(`kill-tapdisk: blktap minor ${minor} is not allocated`);
        const owner = tap.ring.vma?.owner;
        const proc = tap.ring.task ?? (owner instanceof Process ? owner : undefined);
        if (proc === undefined) throw new Error(`kill-tapdisk: no tapdisk serves minor ${minor}`);
        pids = [proc.pid];
      } else {
        pids = kernel.processes
          .ps()
          .filter((p) => p.state !== 'Z' && (p.name === 'tapdisk2' || p.args[0] === TAPDISK2_PATH))
          .map((p) => p.pid);
        if (pids.length === 0) throw new Error('kill-tapdisk: no tapdisk2 process is running');
      }
      for (const pid of pids) {
        fault({ fault: 'kill-tapdisk', pid, signal, ...(minor === undefined ? {} : { minor }) });
        kernel.processes.kill(pid, signal as SignalName);
      }
      return pids;
    },

    /** Queues a xenwatch callback that sleeps `ms`; returns at once (the stall runs in xenwatch). */
    async faultStallXenwatch(ms: number): Promise<void> {
      if (!Number.isFinite(ms) || ms < 0) throw new Error(`stall-xenwatch: for ${ms} is not a duration`);
      const watch = new XenbusWatch('fault/stall-xenwatch', async () => {
        fault({ fault: 'stall-xenwatch', phase: 'start', ms });
        await env.sleep(ms, { what: `fault: xenwatch stalled for ${ms} ms` });
        fault({ fault: 'stall-xenwatch', phase: 'end', ms });
      });
      watch.active = true;
      if (!d.xenwatch.queueEvent(watch, 'fault/stall-xenwatch', 'fault')) {
        throw new Error('stall-xenwatch: xenwatch refused the event');
      }
      watch.active = false; // one event only
      fault({ fault: 'stall-xenwatch', phase: 'queued', ms, pending: d.xenwatch.pending });
    },

    async faultSlowImage(image: string, delayMs: number): Promise<void> {
      const path = imagePath(d.machine, image);
      checkImageKnown(d, image, path);
      d.imageFaults.setDelay(path, delayMs);
      for (const { disk, latencyMs } of imageDisksOf(d, path)) disk.setLatency(latencyMs + delayMs);
      fault({ fault: 'slow-image', image: path, delayMs });
    },

    async faultFailImage(image: string, error: string, after: number): Promise<void> {
      const path = imagePath(d.machine, image);
      checkImageKnown(d, image, path);
      d.imageFaults.setFailure(path, error, after);
      for (const { disk } of imageDisksOf(d, path)) {
        disk.setFault({ error: error as never, ops: ['read', 'write', 'flush', 'discard'], after });
      }
      fault({ fault: 'fail-image', image: path, error, after });
    },

    /** Arms the block script: its next `add` run sleeps `ms` before writing physical-device. */
    async faultSlowHotplug(ms: number): Promise<void> {
      if (!Number.isFinite(ms) || ms <= 0) throw new Error(`slow-hotplug: delay ${ms} is not a duration`);
      armSlowHotplugAdd(kernel, ms);
      fault({ fault: 'slow-hotplug', phase: 'armed', ms, pending: pendingSlowHotplugAdds(kernel) });
    },

    /** Arms the hypervisor to drop the next `count` notifications to `domain` ('dom0' or a guest). */
    async faultLoseEvent(domain: string, port: number | undefined, count: number): Promise<number> {
      let domid: number;
      if (domain === 'dom0' || domain === 'Domain-0') domid = 0;
      else {
        d.builder.slotFor(domain);
        const latest = d.builder.latestDomid(domain);
        const state = d.builder.guestState(domain);
        if (latest === undefined || state === 'dead') {
          throw new Error(`lose-event: guest ${domain} has no domain now (create it first)`);
        }
        domid = latest;
      }
      d.hv.evtchnLoss.arm(domid, port, count);
      fault({ fault: 'lose-event', domain, domid, ...(port === undefined ? {} : { port }), count });
      return domid;
    },
  };
}
