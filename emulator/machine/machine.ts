/**
 * Assembles a host in one engine: the hypervisor's shared state, the slot table, dom0 (engine domain 0
 * = Xen dom0) and one slot per guest of the config (engine domain slot + 1; see slot-table.ts).
 *
 *   const m = await buildMachine(config, 'sim', { seed: 1 });
 *   const result = await m.run(async (ctl) => ctl.call(0, 'xenstoreRead', '/local/domain/0/name'));
 *   await m.close();
 */
import { Hypervisor } from '../../hypervisor/hypervisor.js';
import { createEngine, type EngineOptions } from '../runtime/create-engine.js';
import type { Controller, Engine, EngineKind, RunResult } from '../runtime/engine.js';
import type { XenstoreDaemon } from '../xenstored/daemon.js';
import { checkMachineConfig, type DomainBootConfig, type MachineConfig } from './config.js';
import { localXenstored } from './local-xenstored.js';
import { registerHypervisorBuffers, SLOTS_SHARED } from './shared-names.js';
import { SlotTable } from './slot-table.js';

const PAGE = 4096;

export interface Machine {
  readonly engine: Engine;
  readonly config: MachineConfig;
  /** Engine domain of the guest named `name`. */
  engineDomainOf(name: string): number;
  /** Guest names by engine domain (0 is dom0), for timelines. */
  readonly domainNames: ReadonlyMap<number, string>;
  /**
   * The shared memory every domain sees: the hypervisor's buffers (`hv.*`, read them with
   * `hypervisorBuffers`) and the guest slot table (`SLOTS_SHARED`); see shared-names.ts. Valid until
   * `close`: a closed sim machine's memory is handed to the next machine built in this thread.
   */
  readonly shared: Readonly<Record<string, SharedArrayBuffer>>;
  /**
   * dom0's xenstore daemon (sim only: under threads it lives in dom0's worker and this throws). Work
   * on it only from inside the run (a controller task), so the scheduler sees what it sets off.
   */
  xenstored(): XenstoreDaemon;
  run<T>(controller: (ctl: Controller) => Promise<T>): Promise<RunResult<T>>;
  /** Ends the engine (threads: its workers); the machine cannot run again. */
  close(): Promise<void>;
}

const here = (file: string): string => new URL(`./${file}`, import.meta.url).href;

/** The module URL of a machine program; .ts under vitest/tsx, .js when built. */
function moduleUrl(name: string): string {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return here(`${name}${ext}`);
}

export async function buildMachine<K extends EngineKind>(
  config: MachineConfig,
  engineKind: K,
  engineOptions: EngineOptions<K>,
): Promise<Machine> {
  checkMachineConfig(config);
  const hv = Hypervisor.create({
    frames: config.memory / PAGE,
    maxDomains: Math.max(2, config.guests.length * 2 + 1),
  });
  const slots = SlotTable.create(config.guests.length);
  const engine = createEngine(engineKind, engineOptions);
  const shared: Record<string, SharedArrayBuffer> = {};
  const addShared = (name: string, buffer: SharedArrayBuffer) => {
    engine.addShared(name, buffer);
    shared[name] = buffer;
  };
  try {
    registerHypervisorBuffers(addShared, hv.buffers);
    addShared(SLOTS_SHARED, slots.buffer);
    const dom0: DomainBootConfig = { machine: config, slot: -1 };
    await engine.addDomain({ domid: 0, name: 'Domain-0', module: moduleUrl('dom0'), config: dom0 });
    for (const [i, g] of config.guests.entries()) {
      const cfg: DomainBootConfig = { machine: config, slot: i };
      await engine.addDomain({
        domid: SlotTable.engineDomain(i),
        name: g.name,
        module: moduleUrl('slot'),
        config: cfg,
      });
    }
  } catch (e) {
    await engine.close();
    throw e;
  }
  let closed = false;
  const names = new Map<number, string>([[0, 'dom0']]);
  for (const [i, g] of config.guests.entries()) names.set(SlotTable.engineDomain(i), g.name);
  return {
    engine,
    config,
    domainNames: names,
    shared: Object.freeze(shared),
    xenstored(): XenstoreDaemon {
      const d = localXenstored(slots.buffer);
      if (d !== undefined) return d;
      throw new Error(
        engine.kind === 'threads'
          ? "machine: xenstored lives in dom0's worker thread under the threads engine; use the sim engine to reach it"
          : 'machine: dom0 did not record its xenstored (it failed to boot)',
      );
    },
    engineDomainOf(name: string): number {
      const i = config.guests.findIndex((g) => g.name === name);
      if (i < 0) throw new Error(`machine: no guest named "${name}"`);
      return SlotTable.engineDomain(i);
    },
    run: (controller) => engine.run(controller),
    close: async () => {
      if (closed) return;
      closed = true;
      await engine.close();
      // A sim machine lives in this thread alone: once closed, its memory can serve the next machine.
      if (engineKind === 'sim') hv.recycle();
    },
  };
}
