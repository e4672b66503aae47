/**
 * The runtime contract every component is written against.
 *
 * Two engines implement it: `sim` (every domain in one thread, a seeded scheduler, virtual time) and
 * `threads` (one worker thread per domain, real time scaled by `timeScale`). Component code never knows
 * which one runs it: it spawns tasks, blocks only through declared waits, and reads the clock here.
 *
 * Rules for component code:
 * - Block only through `wait`, `sleep`, `yield` or a `Mutex`. Never await a promise the engine does not
 *   control (timers, fs.promises, sockets): in sim the scheduler would lose track of the task.
 * - Every wait says what it waits for and, where known, who must act (`holders`). The engine keeps these
 *   as the wait-for graph and reports stalls from them.
 * - Cross-domain wake-ups happen only through the hypervisor (event channels kick a domain's upcall).
 */

import type { ExternalInbox } from './external-inbox.js';

export type DomId = number;
/** Milliseconds: virtual in sim, real (scaled) in threads. */
export type Millis = number;

export type EngineKind = 'sim' | 'threads';

/** A party that can make others wait: a task, or an owner that is not a task (blkback holding a bdev). */
export interface Holder {
  /** Stable label used in reports, e.g. "dom0/tapdisk[201]" or "blkback vbd-1-51712". */
  readonly label: string;
  /** What this holder itself waits for right now, or undefined when it is not blocked. */
  blockedOn(): WaitFor | undefined;
}

/** One edge source in the wait-for graph. */
export interface WaitFor {
  /** What is awaited, in words: "DETACH reply from tapdisk 201", "tapdev0 to have no openers". */
  readonly what: string;
  /** Who must act for the wait to end; evaluated lazily when a report is made. */
  readonly holders?: () => readonly Holder[];
  /** Absolute time at which a timeout ends this wait, if any. */
  readonly deadline?: Millis;
  /** Name of the timer that ends it, for reports: "tap-ctl select() timeout". */
  readonly timeoutName?: string;
}

export interface WaitOptions {
  what: string;
  holders?: () => readonly Holder[];
  /** Give up after this long (relative). Omit to wait without a timeout (like wait_event). */
  timeoutMs?: Millis;
  timeoutName?: string;
}

export type WaitResult = 'ok' | 'timeout';

/** A Linux-style wait queue local to one domain. */
export interface WaitQueue {
  readonly name: string;
  /** Make every waiter re-check its condition. */
  wakeAll(): void;
}

export type TaskState = 'runnable' | 'running' | 'blocked' | 'done';

export interface Task extends Holder {
  readonly id: number;
  readonly name: string;
  readonly domain: DomId;
  readonly state: TaskState;
  /** Daemon tasks (xenwatch, ring threads, upcall handlers) do not keep a run alive. */
  readonly daemon: boolean;
}

export interface SpawnOptions {
  /** A task that loops forever serving requests; the run may end while it is blocked. */
  daemon?: boolean;
  /** Component name used in traces (defaults to the task name). */
  component?: string;
}

export interface Mutex extends Holder {
  readonly name: string;
  readonly owner: Task | undefined;
  lock(what?: string): Promise<void>;
  /** Returns false instead of blocking (mutex_trylock). */
  tryLock(): boolean;
  unlock(): void;
}

export interface SleepOptions {
  what?: string;
  /**
   * Housekeeping timers (retry lists, purges) that should not count as progress when deciding whether
   * the system is stalled or finished.
   */
  background?: boolean;
}

/** One structured trace event. */
export interface TraceEvent {
  /** Time in ms (virtual in sim). */
  t: Millis;
  dom: DomId;
  task: string;
  comp: string;
  kind: string;
  fields?: Record<string, unknown>;
}

export interface Tracer {
  emit(comp: string, kind: string, fields?: Record<string, unknown>): void;
  /** Append a line to this domain's kernel log (dmesg ring buffer); also traced as kind "log". */
  log(comp: string, message: string): void;
  /**
   * Whether an event of this component and kind would be kept (added: hot paths ask before building
   * the fields). Optional so hand-made Tracers in tests need not provide it; see `traceWanted`.
   */
  wants?(comp: string, kind: string): boolean;
}

/** `tracer.wants(comp, kind)`, true for a Tracer without `wants` (it keeps everything). */
export function traceWanted(tracer: Tracer, comp: string, kind: string): boolean {
  return tracer.wants === undefined || tracer.wants(comp, kind);
}

/** The runtime as one domain sees it. */
export interface Env {
  readonly domid: DomId;
  readonly engine: EngineKind;
  now(): Millis;
  spawn(name: string, body: () => Promise<void>, options?: SpawnOptions): Task;
  /** The task currently running (throws outside a task). */
  current(): Task;
  waitQueue(name: string): WaitQueue;
  /** Block until `cond()` is true (checked now, and again after each wake of `q`) or the timeout passes. */
  wait(q: WaitQueue, cond: () => boolean, options: WaitOptions): Promise<WaitResult>;
  sleep(ms: Millis, options?: SleepOptions): Promise<void>;
  /** A scheduling point: lets other runnable tasks go first (sim picks among them with its PRNG). */
  yield(): Promise<void>;
  mutex(name: string): Mutex;
  /** Register this domain's event-channel upcall handler; it runs in a daemon task after each kick. */
  onUpcall(handler: () => void): void;
  /** Deterministic in sim (seeded); Math.random-quality in threads. */
  random(): number;
  /**
   * Stop this domain's vCPU (added for the machine's guest slots): every task but the event-channel
   * upcall daemon stops forever; a later upcall may boot the domain afresh. From a halted task the
   * promise never settles. Optional so hand-made Envs in tests need not provide it.
   */
  haltDomain?(keep?: (task: Task) => boolean): Promise<void>;
  /** Tasks that fail with an error `test` accepts halt the domain (but `keep`) instead of failing the run. */
  setHaltOnFailure?(test: ((error: unknown) => boolean) | undefined, keep?: (task: Task) => boolean): void;
  readonly trace: Tracer;
}

/** What the hypervisor needs from the engine: deliver an upcall to a domain. */
export interface UpcallKicker {
  kick(domid: DomId): void;
}

/** A stall: nothing could progress except by a timeout (or nothing at all: a deadlock). */
export interface StallReport {
  /** When the system became stuck. */
  at: Millis;
  /** The chain of waits, starting at a blocked task, following holders until a cycle or an end. */
  chain: StallLink[];
  /** True when the chain returns to a holder already in it. */
  cycle: boolean;
  /** The timeout that will break (or broke) it; undefined for a deadlock. */
  brokenBy?: { timer: string; task: string; at: Millis };
  /** How it ended, once it has (added: not part of the first contract). */
  end?: StallEnd;
}

export interface StallLink {
  holder: string;
  waitsFor: string;
  deadline?: Millis;
  /** The holder the chain follows next (added; on the last link it names who is not blocked). */
  heldBy?: string;
}

// ---------------------------------------------------------------------------------------------------
// The engine as the machine layer and scenario drivers see it.
// ---------------------------------------------------------------------------------------------------

/** The pseudo-domain of the controller (scenario driver); its tasks are labelled "host/<name>#<id>". */
export const HOST_DOMID: DomId = -1;

/**
 * Holders that other domains can name. In threads a domain cannot reach another domain's objects, so a
 * cross-domain wait names its holder by label (`ref`) and the owning domain `publish`es the real one;
 * the engine joins them by label (directly in sim, through the watchdog's snapshots in threads).
 */
export interface HolderDirectory {
  /** Make `holder` findable by its label from every domain; returns a function that withdraws it. */
  publish(holder: Holder): () => void;
  /** A holder standing for whatever some domain published (or a task labelled) under `label`. */
  ref(label: string): Holder;
}

export interface DomainContext {
  /** The runtime as this domain sees it. */
  env: Env;
  /** Deliver upcalls to any domain (used by the hypervisor). */
  kicker: UpcallKicker;
  /** Shared memory registered with `engine.addShared()`. */
  shared: Record<string, SharedArrayBuffer>;
  /** JSON-able, from the DomainSpec. */
  config: unknown;
  /** Cross-domain holder names (added beside the agreed members). */
  holders: HolderDirectory;
}

// biome-ignore lint/suspicious/noExplicitAny: programs expose methods of any shape; calls are checked at run time
export type DomainProgram = Record<string, (...args: any[]) => Promise<unknown>>;
export type DomainBoot = (ctx: DomainContext) => DomainProgram | Promise<DomainProgram>;

export interface DomainSpec {
  domid: DomId;
  name: string;
  /** File URL of the module exporting the boot function. */
  module: string;
  /** Export to call; default 'boot'. */
  exportName?: string;
  config?: unknown;
}

export interface Controller {
  env: Env;
  /** Run a domain program's method as a task (named after the method) in that domain; the calling task
   *  waits for it. Arguments and results must be structured-cloneable. */
  call(domid: DomId, method: string, ...args: unknown[]): Promise<unknown>;
  /** Cross-domain holder names, as domains see them. */
  holders: HolderDirectory;
  /**
   * Wait for the next item pushed into `inbox` from outside the run (undefined once it is closed and
   * empty). Added for `xenpv run --serve`: while the controller waits here the engine neither ends the
   * run nor reports a deadlock (sim stays idle; threads' watchdog does not judge).
   */
  receive?<T>(inbox: ExternalInbox<T>, what: string): Promise<T | undefined>;
}

export interface RunResult<T> {
  value?: T;
  error?: Error;
  outcome: 'completed' | 'deadlock' | 'error';
  stalls: StallReport[];
  trace: TraceEvent[];
  dmesg: Record<number, string[]>;
  /** sim only: the index picked at each scheduling decision that had two or more candidates. */
  choices?: number[];
  /** sim only: how many candidates each decision in `choices` had (for schedule exploration). */
  choiceWidths?: number[];
  endTime: Millis;
}

export interface Engine {
  readonly kind: EngineKind;
  readonly kicker: UpcallKicker;
  /** Register shared memory before addDomain; every domain sees it in `ctx.shared`. */
  addShared(name: string, buffer: SharedArrayBuffer): void;
  /** Import the module and boot it. */
  addDomain(spec: DomainSpec): Promise<void>;
  /**
   * Run a controller (the scenario driver). It gets an Env of its own (pseudo-domain HOST_DOMID = -1)
   * and `call` to invoke a domain program's method, which runs as a task in that domain.
   */
  run<T>(controller: (ctl: Controller) => Promise<T>): Promise<RunResult<T>>;
  /**
   * What the run has recorded so far, read while it goes on (added for the shell; RunResult hands the
   * same over only at the end). Async because threads must ask each worker. Each call returns a fresh
   * snapshot: the whole trace, in time order and filtered as RunResult's will be, so a caller keeps no
   * cursor (the shell filters by time, and a threads worker's batch can land earlier than the last
   * event already seen, so an index into the merged trace would not be stable anyway).
   */
  progress?(): Promise<EngineProgress>;
  /** Terminate workers etc. */
  close(): Promise<void>;
}

/** A snapshot of a run's record so far (`Engine.progress`). */
export interface EngineProgress {
  /** The engine's clock now: virtual ms in sim, scaled real ms in threads. */
  now: Millis;
  trace: readonly TraceEvent[];
  /** Stall reports so far; one still going on has no `end` yet. */
  stalls: readonly StallReport[];
  dmesg: Record<number, string[]>;
}

/** Which trace events to keep; checked before an event is built. */
export type TraceFilter = (comp: string, kind: string) => boolean;

/**
 * Which trace events to keep, as data: unlike a TraceFilter it reaches the threads engine's workers,
 * so dropped events are never built nor posted. An object keeps an event when its kind is listed in
 * `kinds` (if given) and its component in `comps` (if given); `{}` keeps everything. The dmesg ring
 * keeps every log line whatever the spec says.
 */
export type TraceKeep = 'all' | 'none' | { kinds?: readonly string[]; comps?: readonly string[] };

export interface SimEngineOptions {
  seed: number;
  /** Scheduling decisions to take instead of the PRNG's (then the seed takes over). */
  replay?: number[];
  /** Give up (outcome 'error') after this many task switches; default 10 million. */
  maxSteps?: number;
  /** Applied together with `traceKeep`: an event is kept when both keep it. */
  traceFilter?: TraceFilter;
  traceKeep?: TraceKeep;
  /** dmesg ring size per domain; default 4096 lines. */
  dmesgLines?: number;
}

export interface ThreadsEngineOptions {
  /** Virtual ms per real ms is 1/timeScale: at 0.01 a sleep(5000) takes 50 real ms. */
  timeScale: number;
  /** Real ms without progress before the watchdog looks for a stall; default 200. */
  watchdogMs?: number;
  /** Applied in the main thread only (workers still build and post what it drops): prefer traceKeep. */
  traceFilter?: TraceFilter;
  /** Applied in every worker and in the main thread, together with `traceFilter`. */
  traceKeep?: TraceKeep;
  dmesgLines?: number;
}

/** Optional fields a report may carry beyond StallReport (how and when the stall ended). */
export interface StallEnd {
  at: Millis;
  by: 'timeout' | 'wake' | 'run-end';
  /** The task whose wake or timeout ended it. */
  task?: string;
}
