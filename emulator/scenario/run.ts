/**
 * The scenario runner: builds the machine a scenario describes (image files in a fresh work dir), runs
 * its demo (if any) and its steps in order as the controller, records per-step virtual start/end times
 * and outcomes, collects the end state (tap-ctl list, xenstore, guest states, image data, logs) and
 * checks every expectation (expect.ts).
 *
 *   const r = await runScenario('scenarios/hello-grant.yaml', { engine: 'sim', seed: 1 });
 *   r.verdict; // 'pass' | 'fail'
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { MACHINE_DEFAULT_VERSIONS, type MachineConfig } from '../machine/config.js';
import { driveHelloGrant, HELLO_PING, HELLO_PONG } from '../machine/demo/hello-grant-driver.js';
import { buildMachine, type Machine } from '../machine/machine.js';
import type {
  Controller,
  EngineKind,
  Millis,
  StallReport,
  TraceEvent,
  TraceFilter,
} from '../runtime/engine.js';
import {
  checkExpectations,
  type EndState,
  type EndStatePart,
  type ExpectationCheck,
  endStateParts,
  howRunEnded,
  oopsExpected,
} from './expect.js';
import { checkImageStore, createImages, type ImageStore, makeWorkDir, removeWorkDir } from './images.js';
import type { Scenario, Step } from './model.js';
import { type DemoSpec, loadRunnableScenario } from './run-demo.js';
import { runStep, type StepRecord } from './run-steps.js';

export interface RunScenarioOptions {
  engine?: EngineKind;
  /** sim: the PRNG seed (default: the scenario's seed, else 1). */
  seed?: number;
  /** threads: virtual ms per real ms is 1/timeScale (default 0.01). */
  timeScale?: number;
  /** sim: scheduling choices to replay. */
  replay?: number[];
  /** threads: watchdog period in real ms (default 20). */
  watchdogMs?: number;
  /** Run in this work dir (images) instead of a fresh one; it is the caller's and stays. */
  workDir?: string;
  /**
   * Where a fresh work dir goes (images.ts): 'disk' (default, the host's temp dir) or 'memory' (a
   * RAM-backed filesystem: benches, explore). Ignored when `workDir` is given.
   */
  imageStore?: ImageStore;
  /**
   * Keep the fresh work dir after the run (its images, the generated xl configs) for inspection; by
   * default the run removes it once the expectations were checked. Ignored when `workDir` is given.
   */
  keepWorkDir?: boolean;
  /**
   * Which trace events to keep (both engines). In sim, events filtered out are not even built where
   * the emitter asks `trace.wants` first. dmesg is kept whatever the filter says.
   */
  traceFilter?: TraceFilter;
  /** Demo to run before the steps (files give it with a `demo:` block). */
  demo?: DemoSpec;
  /**
   * Runs as the controller after the steps and the end state (which the verdict uses) were collected,
   * with the machine still up: `xenpv run --serve` answers commands here until its socket closes.
   */
  serve?: (ctl: Controller, machine: Machine) => Promise<void>;
}

export interface RunScenarioResult {
  scenario: Scenario;
  verdict: 'pass' | 'fail';
  /** One line per failed expectation or unexpected step failure. */
  failures: string[];
  checks: ExpectationCheck[];
  steps: StepRecord[];
  stalls: StallReport[];
  outcome: 'completed' | 'deadlock' | 'error';
  error?: string;
  /** The run ended in the oops `expect.oops` names: its expected outcome, not a failure. */
  expectedOops: boolean;
  tapCtlList?: string[];
  /** What the controller read after the steps; `end.unread` says what a deadlock or error cut off. */
  end: EndState;
  trace: TraceEvent[];
  dmesg: Record<number, string[]>;
  /** Engine domain -> name (0 is dom0). */
  domainNames: Record<number, string>;
  endTime: Millis;
  choices?: number[];
  /** sim: how many tasks were runnable at each recorded choice (explore --systematic uses it). */
  choiceWidths?: number[];
  /** The run's work dir: still there afterwards only if the caller gave it or asked to keep it. */
  workDir: string;
  /** Whether `workDir` still exists after the run (given by the caller, or `keepWorkDir`). */
  workDirKept: boolean;
  engine: EngineKind;
  seed?: number;
}

/** Builds the machine config: guests from `domains`, images created in `workDir`. */
export function machineConfigFor(s: Scenario, workDir: string, demo?: DemoSpec): MachineConfig {
  const guests = s.domains.map((d) => ({
    name: d.name,
    memory: d.memory,
    abi: d.abi,
    disks: d.disks,
    ...(d.onPoweroff === undefined ? {} : { onPoweroff: d.onPoweroff }),
    ...(d.onCrash === undefined ? {} : { onCrash: d.onCrash }),
    ...(d.blkfront === undefined ? {} : { blkfront: { ...d.blkfront } }),
  }));
  if (demo?.kind === 'hello-grant') {
    for (const name of [HELLO_PING, HELLO_PONG]) {
      if (!guests.some((g) => g.name === name)) {
        throw new Error(`demo hello-grant: declare a domain named "${name}" under domains:`);
      }
    }
  }
  return {
    guests,
    versions: { ...MACHINE_DEFAULT_VERSIONS, ...s.versions },
    memory: s.host.memory,
    workDir,
    images: s.host.images.map((i) => ({ path: join(workDir, i.name), size: i.size, format: i.format })),
  };
}

export async function runScenario(
  scenarioOrPath: Scenario | string,
  options: RunScenarioOptions = {},
): Promise<RunScenarioResult> {
  let s: Scenario;
  let demo = options.demo;
  if (typeof scenarioOrPath === 'string') {
    const loaded = loadRunnableScenario(scenarioOrPath);
    s = loaded.scenario;
    demo ??= loaded.demo;
  } else s = scenarioOrPath;
  const engine = options.engine ?? 'sim';
  const seed = options.seed ?? s.seed ?? 1;
  const imageStore = checkImageStore(options.imageStore);
  const traceFilter = options.traceFilter;
  if (traceFilter !== undefined && typeof traceFilter !== 'function')
    throw new Error('runScenario: traceFilter must be a function (comp, kind) => boolean');
  if (options.keepWorkDir !== undefined && typeof options.keepWorkDir !== 'boolean')
    throw new Error(
      `runScenario: keepWorkDir must be true or false, got ${JSON.stringify(options.keepWorkDir)}`,
    );
  // A work dir the run made is its own to remove (unless asked to keep it); a given one is the caller's.
  const removeAfter = options.workDir === undefined && options.keepWorkDir !== true;
  const workDir = options.workDir ?? makeWorkDir(s.name, imageStore);
  try {
    mkdirSync(workDir, { recursive: true });
    createImages(s, workDir);
    const config = machineConfigFor(s, workDir, demo);
    const filter = traceFilter === undefined ? {} : { traceFilter };
    const machine: Machine =
      engine === 'sim'
        ? await buildMachine(config, 'sim', {
            seed,
            ...(options.replay ? { replay: options.replay } : {}),
            ...filter,
          })
        : await buildMachine(config, 'threads', {
            timeScale: options.timeScale ?? 0.01,
            watchdogMs: options.watchdogMs ?? 20,
            ...filter,
          });
    return await runOnMachine(s, demo, machine, options, {
      engine,
      seed,
      workDir,
      workDirKept: !removeAfter,
    });
  } finally {
    if (removeAfter) removeWorkDir(workDir);
  }
}

async function runOnMachine(
  s: Scenario,
  demo: DemoSpec | undefined,
  machine: Machine,
  options: RunScenarioOptions,
  run: { engine: EngineKind; seed: number; workDir: string; workDirKept: boolean },
): Promise<RunScenarioResult> {
  const { engine, seed, workDir, workDirKept } = run;
  const steps: StepRecord[] = [];
  // Filled as it is read, so a run that stops part way still shows what was read and what was not.
  const end: EndState = { guestStates: {}, xenstore: {}, tapCtlList: undefined };
  const read = new Set<EndStatePart>();
  let result: Awaited<ReturnType<Machine['run']>>;
  try {
    result = await machine.run(async (ctl: Controller) => {
      if (demo?.kind === 'hello-grant') {
        const t0 = ctl.env.now();
        const rec: StepRecord = {
          path: 'demo',
          kind: 'demo',
          description: `hello-grant, ${demo.messages} messages`,
          start: t0,
          end: t0,
          status: 'ok',
        };
        steps.push(rec);
        try {
          await driveHelloGrant(ctl, (n) => machine.engineDomainOf(n), demo.messages);
        } catch (e) {
          rec.status = 'failed';
          rec.error = (e as Error).message;
        }
        rec.end = ctl.env.now();
      }
      for (const step of s.steps) await runStep(ctl, machine, step, steps);
      await collectEndState(ctl, s, end, read);
      if (options.serve !== undefined) await options.serve(ctl, machine);
    });
  } finally {
    await machine.close();
  }
  const domainNames: Record<number, string> = Object.fromEntries(machine.domainNames);
  const unread = endStateParts(s).filter((p) => !read.has(p));
  if (unread.length > 0) end.unread = { ended: howRunEnded(result.outcome), parts: unread };
  const expectedOops = oopsExpected(s, result.outcome, result.error?.message);
  const checks = checkExpectations(s, {
    engine,
    outcome: result.outcome,
    ...(result.error ? { error: result.error.message } : {}),
    stalls: result.stalls,
    endTime: result.endTime,
    dmesg: result.dmesg,
    domainNames,
    end,
    workDir,
    steps,
  });
  const failures: string[] = [];
  if (result.outcome === 'error' && !expectedOops)
    failures.push(`run error: ${result.error?.message ?? 'unknown'}`);
  // A deadlock nobody expected is a failure even when no expectation mentions it.
  if (result.outcome === 'deadlock' && s.expect.deadlock === undefined)
    failures.push(
      'the run ended in a deadlock (see the stall chain; add `deadlock: true` under expect: if it is meant)',
    );
  // A step cut off by the run's end shows as unfinished; the deadlock or error above is the failure.
  for (const st of steps)
    if (st.status === 'failed') failures.push(`step ${st.path} (${st.description}) failed: ${st.error}`);
  for (const c of checks) if (!c.ok) failures.push(`${c.name}: ${c.detail}`);
  return {
    scenario: s,
    verdict: failures.length === 0 ? 'pass' : 'fail',
    failures,
    checks,
    steps,
    stalls: result.stalls,
    outcome: result.outcome,
    ...(result.error ? { error: result.error.message } : {}),
    expectedOops,
    tapCtlList: end.tapCtlList,
    end,
    trace: result.trace,
    dmesg: result.dmesg,
    domainNames,
    endTime: result.endTime,
    ...(result.choices ? { choices: result.choices } : {}),
    ...(result.choiceWidths ? { choiceWidths: result.choiceWidths } : {}),
    workDir,
    workDirKept,
    engine,
    ...(engine === 'sim' ? { seed } : {}),
  };
}

/**
 * What the expectations look at, read through dom0 at the end of the run into `end`, each part marked
 * in `read` once it was (a deadlock or an error can stop the controller in between).
 */
async function collectEndState(
  ctl: Controller,
  s: Scenario,
  end: EndState,
  read: Set<EndStatePart>,
): Promise<void> {
  const e = s.expect;
  end.guestStates = (await ctl.call(0, 'guestStates')) as Record<string, string | undefined>;
  read.add('guest states');
  for (const p of [...(e.xenstoreAbsent ?? []), ...Object.keys(e.xenstore ?? {})]) {
    end.xenstore[p] = (await ctl.call(0, 'xenstoreRead', p)) as string | undefined;
    read.add(`xenstore ${p}`);
  }
  if (e.tapCtlList !== undefined) {
    try {
      const r = (await ctl.call(0, 'tapCtl', ['list'])) as { exitCode: number; stdout: string[] };
      end.tapCtlList = r.stdout;
    } catch (err) {
      end.tapCtlError = (err as Error).message;
    }
    read.add('tap-ctl list');
  }
  if (e.loopDevices !== undefined) {
    try {
      const r = (await ctl.call(0, 'losetup', ['-a'])) as { exitCode: number; stdout: string[] };
      if (r.exitCode === 0) end.loopDevices = r.stdout;
      else end.loopDevicesError = `exit code ${r.exitCode}: ${r.stdout.join(' / ')}`;
    } catch (err) {
      end.loopDevicesError = (err as Error).message;
    }
    read.add('losetup -a');
  }
}

export { createImages } from './images.js';
export type { StepRecord } from './run-steps.js';
export type { Step };
