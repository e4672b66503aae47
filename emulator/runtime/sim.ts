/**
 * The sim engine: every domain and the controller in one JavaScript thread, one task at a time, picked
 * by a seeded PRNG (or a replayed choice list), in virtual time that only moves by jumps to the next
 * timer. When nothing is runnable the engine decides, exactly, between idleness, a stall (only a
 * timeout can move things on) and a deadlock (nothing can).
 */
import type { Timer } from './clock.js';
import { bootDomain, checkDomainSpec, errorToWire, programMethod, wireToError } from './domain-boot.js';
import { DomainEnv } from './domain-env.js';
import type {
  Controller,
  DomainProgram,
  DomainSpec,
  DomId,
  Engine,
  EngineProgress,
  Holder,
  HolderDirectory,
  Millis,
  RunResult,
  SimEngineOptions,
  StallReport,
  UpcallKicker,
} from './engine.js';
import { HOST_DOMID } from './engine.js';
import { receiveExternal } from './external-inbox.js';
import { Sfc32 } from './prng.js';
import { PickRunQueue, type SchedTask, Scheduler } from './scheduler.js';
import { TraceSink } from './trace-sink.js';
import { chainFromHolder, holderDirectory } from './waitgraph.js';

export const DEFAULT_MAX_STEPS = 10_000_000;

interface SimDomain {
  env: DomainEnv;
  program: DomainProgram | undefined;
}

interface ActiveStall {
  report: StallReport;
  timer: Timer;
}

export function createSimEngine(options: SimEngineOptions): Engine {
  return new SimEngine(options);
}

class SimEngine implements Engine {
  readonly kind = 'sim' as const;
  readonly kicker: UpcallKicker;
  private vnow: Millis = 0;
  private readonly sched: Scheduler;
  private readonly sink: TraceSink;
  private readonly prng: Sfc32;
  private readonly seed: number;
  private readonly replay: readonly number[];
  private replayPos = 0;
  private readonly choices: number[] = [];
  private readonly widths: number[] = [];
  private readonly domains = new Map<DomId, SimDomain>();
  private readonly shared: Record<string, SharedArrayBuffer> = {};
  private readonly published = new Map<string, Holder>();
  private readonly holders: HolderDirectory;
  private readonly host: DomainEnv;
  private stalls: StallReport[] = [];
  private stall: ActiveStall | undefined;
  private controllerTask: SchedTask | undefined;
  private controllerDone = false;
  private finished = false;
  private ran = false;
  private outcome: RunResult<unknown>['outcome'] = 'completed';
  private error: Error | undefined;
  private finish: (() => void) | undefined;
  /** Controller waits on external input (receive): idle is not the end of the run then. */
  private externalWaits = 0;
  private guard: ReturnType<typeof setImmediate> | undefined;

  constructor(options: SimEngineOptions) {
    if (options === null || typeof options !== 'object') throw new Error('createSimEngine: options required');
    const { seed, replay, maxSteps } = options;
    if (!Number.isSafeInteger(seed))
      throw new Error(`createSimEngine: seed must be a safe integer, got ${seed}`);
    if (replay !== undefined && !Array.isArray(replay)) {
      throw new Error('createSimEngine: replay must be an array of choice indexes');
    }
    if (maxSteps !== undefined && !(Number.isInteger(maxSteps) && maxSteps > 0)) {
      throw new Error(`createSimEngine: maxSteps must be a positive integer, got ${maxSteps}`);
    }
    this.seed = seed;
    this.prng = new Sfc32(seed);
    this.replay = replay ?? [];
    this.sink = new TraceSink({
      now: () => this.vnow,
      filter: options.traceFilter,
      keep: options.traceKeep,
      dmesgLines: options.dmesgLines,
    });
    this.sched = new Scheduler({
      runQueue: new PickRunQueue((n) => this.pick(n)),
      maxSteps: maxSteps ?? DEFAULT_MAX_STEPS,
      policy: {
        now: () => this.vnow,
        idle: () => this.idle(),
        taskFailed: (task, e) => this.taskFailed(task, e),
        unblocked: (task) => this.unblocked(task),
        timerFired: (timer, task) => this.timerFired(timer, task),
      },
    });
    this.kicker = {
      kick: (domid: DomId) => {
        const d = this.domains.get(domid);
        if (d === undefined) throw new Error(`kick: no domain ${domid}`);
        d.env.kick();
      },
    };
    this.holders = holderDirectory(this.published, this.sched.live);
    this.host = this.makeEnv(HOST_DOMID);
  }

  addShared(name: string, buffer: SharedArrayBuffer): void {
    if (typeof name !== 'string' || name === '')
      throw new Error('addShared: name must be a non-empty string');
    if (!(buffer instanceof SharedArrayBuffer))
      throw new Error(`addShared ${name}: buffer must be a SharedArrayBuffer`);
    if (this.domains.size > 0) throw new Error(`addShared ${name}: call it before addDomain`);
    if (name in this.shared) throw new Error(`addShared: name "${name}" is already registered`);
    this.shared[name] = buffer;
  }

  async addDomain(spec: DomainSpec): Promise<void> {
    if (this.ran) throw new Error('addDomain: the engine has already run');
    checkDomainSpec(spec, new Set(this.domains.keys()));
    const env = this.makeEnv(spec.domid);
    const dom: SimDomain = { env, program: undefined };
    this.domains.set(spec.domid, dom);
    try {
      dom.program = await bootDomain(spec, {
        env,
        kicker: this.kicker,
        shared: this.shared,
        config: spec.config,
        holders: this.holders,
      });
    } catch (e) {
      this.domains.delete(spec.domid);
      throw e;
    }
  }

  /** Taken when called (the run goes on in microtasks after); copies, so later events do not show. */
  progress(): Promise<EngineProgress> {
    return Promise.resolve({
      now: this.vnow,
      trace: this.sink.events.slice(),
      stalls: this.stalls.map((s) => ({ ...s, ...(s.end ? { end: { ...s.end } } : {}) })),
      dmesg: this.sink.dmesg(),
    });
  }

  run<T>(controller: (ctl: Controller) => Promise<T>): Promise<RunResult<T>> {
    if (this.ran) return Promise.reject(new Error('run: a sim engine runs once; create a new one'));
    if (typeof controller !== 'function')
      return Promise.reject(new Error('run: controller must be a function'));
    this.ran = true;
    const ctl: Controller = {
      env: this.host,
      holders: this.holders,
      call: (domid, method, ...args) => this.call(domid, method, args),
      receive: (inbox, what) =>
        receiveExternal(this.host, inbox, what, {
          begin: () => this.externalWaits++,
          end: () => this.externalWaits--,
          delivered: () => this.armGuard(),
        }),
    };
    let value: T | undefined;
    this.controllerTask = this.host.spawnTask('controller', async () => {
      try {
        value = await controller(ctl);
      } catch (e) {
        this.error = e instanceof Error ? e : new Error(String(e));
        this.outcome = 'error';
      } finally {
        this.controllerDone = true;
      }
    });
    return new Promise<RunResult<T>>((resolve) => {
      this.armGuard();
      this.finish = () => {
        if (this.guard !== undefined) clearImmediate(this.guard);
        const result: RunResult<T> = {
          outcome: this.outcome,
          stalls: this.stalls,
          trace: this.sink.events,
          dmesg: this.sink.dmesg(),
          choices: this.choices,
          choiceWidths: this.widths,
          endTime: this.vnow,
        };
        if (this.outcome === 'completed') result.value = value;
        if (this.error !== undefined) result.error = this.error;
        resolve(result);
      };
      this.sched.start();
    });
  }

  /**
   * Nothing in a sim run leaves the microtask queue; if this fires first, some task awaited a promise
   * the engine does not control (a real timer, I/O) and would hang the run. Re-armed after each
   * external input; a controller waiting for input is the one foreign wait allowed.
   */
  private armGuard(): void {
    if (this.guard !== undefined) clearImmediate(this.guard);
    this.guard = setImmediate(() => {
      this.guard = undefined;
      if (this.finished || this.externalWaits > 0) return;
      const who = this.sched.running?.label ?? 'a task';
      this.fail(
        new Error(
          `sim: ${who} awaited a promise the engine does not control (a real timer, I/O, a worker); ` +
            'block only through env.wait/sleep/yield/mutex',
        ),
      );
    });
  }

  async close(): Promise<void> {
    if (!this.finished && this.ran) this.fail(new Error('sim: engine closed during the run'));
  }

  // --- scheduling policy -----------------------------------------------------------------------------

  private pick(n: number): number {
    const drawn = this.prng.below(n); // drawn even when replaying, so the seed continues where it would
    let i = drawn;
    if (this.replayPos < this.replay.length) {
      const pos = this.replayPos++;
      const r = this.replay[pos];
      if (!Number.isInteger(r) || r < 0 || r >= n) {
        this.fail(
          new Error(`replay[${pos}] = ${r}, but only ${n} tasks were runnable there (valid: 0..${n - 1})`),
        );
        return 0;
      }
      i = r;
    }
    this.choices.push(i);
    this.widths.push(n);
    return i;
  }

  private idle(): boolean {
    if (this.finished) return false;
    if (this.sched.overrun) {
      this.fail(
        new Error(`sim: more than ${this.sched.steps - 1} task switches (maxSteps) at t=${this.vnow} ms`),
      );
      return false;
    }
    if (this.controllerDone) {
      this.end();
      return false;
    }
    const fg = this.sched.fgTimers.peek();
    // The controller waits for outside input: stay idle (time stands still) until it arrives.
    if (fg === undefined && this.externalWaits > 0) return false;
    if (fg === undefined) {
      // Only background timers (or none): nothing but housekeeping could ever run again.
      this.deadlock();
      return false;
    }
    if (fg.kind === 'timeout' && this.stall === undefined) this.reportStall(fg);
    const next = this.sched.earliestTimer()!;
    if (next.at > this.vnow) this.vnow = next.at;
    this.sched.fireDue(this.vnow);
    return true;
  }

  private reportStall(timer: Timer): void {
    const owner = timer.owner!;
    const wait = owner.blockedOn();
    const { chain, cycle } = chainFromHolder(owner);
    const report: StallReport = {
      at: this.vnow,
      chain,
      cycle,
      brokenBy: { timer: wait?.timeoutName ?? 'timeout', task: owner.label, at: timer.at },
    };
    this.stalls.push(report);
    this.stall = { report, timer };
    this.sink.emit(HOST_DOMID, '-', 'runtime', 'stall', { chain, cycle, brokenBy: report.brokenBy });
  }

  private endStall(by: 'timeout' | 'wake' | 'run-end', task: string | undefined): void {
    const s = this.stall;
    if (s === undefined) return;
    this.stall = undefined;
    s.report.end = { at: this.vnow, by };
    if (task !== undefined) s.report.end.task = task;
    this.sink.emit(HOST_DOMID, '-', 'runtime', 'stall-end', { by, task, duration: this.vnow - s.report.at });
  }

  private timerFired(timer: Timer, task: SchedTask | undefined): void {
    if (this.stall !== undefined && timer === this.stall.timer) this.endStall('timeout', task?.label);
  }

  private unblocked(task: SchedTask): void {
    if (this.stall !== undefined) this.endStall('wake', task.label);
  }

  private deadlock(): void {
    let start: SchedTask | undefined =
      this.controllerTask?.state === 'blocked' ? this.controllerTask : undefined;
    if (start === undefined) {
      for (const t of this.sched.live) {
        if (t.state === 'blocked' && !t.daemon && (start === undefined || t.id < start.id)) start = t;
      }
    }
    const { chain, cycle } = start === undefined ? { chain: [], cycle: false } : chainFromHolder(start);
    this.endStall('run-end', undefined);
    const report: StallReport = { at: this.vnow, chain, cycle };
    this.stalls.push(report);
    this.sink.emit(HOST_DOMID, '-', 'runtime', 'deadlock', { chain, cycle });
    this.outcome = 'deadlock';
    this.end();
  }

  private taskFailed(task: SchedTask, e: unknown): void {
    const msg = e instanceof Error ? e.message : String(e);
    this.sink.log(task.domain, task.traceName, task.component, `task ${task.label} failed: ${msg}`);
    this.fail(new Error(`task ${task.label} failed: ${msg}`, { cause: e }));
  }

  private fail(e: Error): void {
    if (this.finished) return;
    this.outcome = 'error';
    this.error = e;
    this.end();
  }

  private end(): void {
    if (this.finished) return;
    this.finished = true;
    this.endStall('run-end', undefined);
    this.sched.halt();
    this.finish?.();
  }

  // --- domains, calls, holders -------------------------------------------------------------------------

  private makeEnv(domid: DomId): DomainEnv {
    // One random stream per domain, so adding a domain does not shift the others' draws.
    const rng = new Sfc32(this.seed * 65_537 + domid + 1);
    return new DomainEnv(domid, 'sim', this.sched, this.sink, () => rng.next());
  }

  private async call(domid: DomId, method: string, args: unknown[]): Promise<unknown> {
    const dom = this.domains.get(domid);
    if (dom?.program === undefined) {
      throw new Error(`call: no domain ${domid} (domains: ${[...this.domains.keys()].join(', ') || 'none'})`);
    }
    const fn = programMethod(dom.program, domid, method);
    const cloned = structuredClone(args); // as threads would post them
    let result: unknown;
    let failure: unknown;
    let failed = false;
    const task = dom.env.spawnTask(method, async () => {
      try {
        result = await fn(...cloned);
      } catch (e) {
        if (this.sched.haltIfDead(domid, e)) return;
        failure = e;
        failed = true;
      }
    });
    await this.sched.join(task, `dom${domid}.${method} to return`);
    if (task.halted) throw new Error(`call: dom${domid} halted while running ${method}`);
    if (failed) throw wireToError(errorToWire(failure));
    return structuredClone(result);
  }
}
