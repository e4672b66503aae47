/**
 * A domain's worker thread (threads engine): boots the domain program, runs its tasks on a FIFO
 * scheduler in real scaled time, turns kick-word changes into upcalls, serves `call` messages, and
 * publishes its status and blocked parties for the main thread's watchdog.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ScaledClock } from './clock.js';
import { bootDomain, errorToWire, programMethod } from './domain-boot.js';
import { DomainEnv } from './domain-env.js';
import type { DomainProgram } from './engine.js';
import { KickWatcher, kickIndex, sharedKicker } from './kick-words.js';
import { RealtimeRunner } from './realtime.js';
import type { SchedTask } from './scheduler.js';
import { StatusSlot } from './status-slot.js';
import { TraceSink } from './trace-sink.js';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.js';

const TRACE_BATCH = 4096;

const init = workerData as WorkerInit;
const port = parentPort!;
const domid = init.spec.domid;
const clock = new ScaledClock(init.epoch, init.timeScale);
const sink = new TraceSink({ now: () => clock.now(), keep: init.traceKeep, dmesgLines: init.dmesgLines });
const slot = new StatusSlot(init.status);
const kicks = new Int32Array(init.kicks);
let sent = 0;
let received = 0;
/** 'progress' requests served: messages, but no progress of the domain (a stall must not end by them). */
let progressRequests = 0;
let kicksTaken = 0;
let snapshotPending = false;
// Kicks can arrive between boot and this worker's 'start' (another domain started first and kicked
// it): the word's value at boot is the baseline, so none of them is lost.
const kicksAtBoot = Atomics.load(kicks, kickIndex(domid));

function post(m: FromWorker): void {
  sent++;
  port.postMessage(m);
}

const runner = new RealtimeRunner(clock, (task, e) => {
  const error = errorToWire(e);
  sink.log(domid, task.traceName, task.component, `task ${task.label} failed: ${error.message}`);
  post({ type: 'task-failed', label: task.label, error });
});
const env = new DomainEnv(domid, 'threads', runner.sched, sink, Math.random);
const kicker = sharedKicker(kicks, new Int32Array(init.present));

const progress = (): number => runner.sched.progressSteps + received - progressRequests + kicksTaken;
let watcher: KickWatcher | undefined;
const kickSeen = (): number => watcher?.seen ?? Atomics.load(kicks, kickIndex(domid));

const isIdle = (): boolean => runner.sched.running === undefined && runner.sched.runnableCount === 0;

runner.onIdle = () => {
  slot.writeStatus({ progress: progress(), idle: 1, kickSeen: kickSeen(), sent, received });
  if (sink.events.length >= TRACE_BATCH) post({ type: 'trace', events: sink.drain() });
  if (snapshotPending) return;
  snapshotPending = true;
  // Debounced: a worker that stays idle publishes its blocked parties once, shortly after; the
  // watchdog trusts a snapshot only while its progress count is the current one.
  setTimeout(() => {
    snapshotPending = false;
    if (!isIdle()) return; // it will publish again when it next goes idle
    slot.writeSnapshot({
      progress: progress(),
      idle: 1,
      kickSeen: kickSeen(),
      sent,
      received,
      nodes: runner.snapshot(),
    });
  }, 5);
};

let program: DomainProgram | undefined;

port.on('message', (m: ToWorker) => {
  received++;
  if (m.type === 'progress') {
    progressRequests++;
    post({ type: 'progress', id: m.id, events: sink.drain(), dmesg: sink.dmesg() });
    // Still idle: publish the counters so the watchdog sees the request answered; the progress count
    // is unchanged, so the published wait-for snapshot stays valid.
    if (isIdle()) slot.writeStatus({ progress: progress(), idle: 1, kickSeen: kickSeen(), sent, received });
    return;
  }
  slot.setIdle(0);
  switch (m.type) {
    case 'start':
      clock.epoch = m.epoch;
      watcher = new KickWatcher(
        kicks,
        domid,
        () => {
          kicksTaken++;
          slot.setIdle(0);
          env.kick();
        },
        () => received,
        kicksAtBoot,
      );
      runner.outside = watcher;
      runner.sched.start();
      break;
    case 'call':
      serveCall(m.id, m.method, m.args);
      break;
    case 'collect':
      post({ type: 'collected', events: sink.drain(), dmesg: sink.dmesg() });
      break;
  }
});

/** Call tasks still running, by task: a halted domain answers them with an error. */
const callTasks = new Map<SchedTask, number>();
runner.sched.haltListeners.push((tasks) => {
  for (const t of tasks) {
    const id = callTasks.get(t);
    if (id === undefined) continue;
    callTasks.delete(t);
    post({
      type: 'result',
      id,
      ok: false,
      error: errorToWire(new Error(`call: dom${domid} halted while running ${t.name}`)),
    });
  }
});

function serveCall(id: number, method: string, args: unknown[]): void {
  let fn: (...a: unknown[]) => Promise<unknown>;
  try {
    fn = programMethod(program!, domid, method);
  } catch (e) {
    post({ type: 'result', id, ok: false, error: errorToWire(e) });
    return;
  }
  const task = env.spawnTask(method, async () => {
    try {
      const value = await fn(...args);
      try {
        post({ type: 'result', id, ok: true, value });
      } catch (e) {
        sent--; // the failed post was not sent
        post({ type: 'result', id, ok: false, error: errorToWire(e) });
      }
    } catch (e) {
      if (runner.sched.haltIfDead(domid, e)) return; // the halt answered this call
      post({ type: 'result', id, ok: false, error: errorToWire(e) });
    }
    callTasks.delete(task);
  });
  callTasks.set(task, id);
  post({ type: 'started', id, label: task.label });
}

try {
  program = await bootDomain(init.spec, {
    env,
    kicker,
    shared: init.shared,
    config: init.spec.config,
    holders: runner.holders,
  });
  post({ type: 'booted' });
} catch (e) {
  post({ type: 'boot-error', error: errorToWire(e) });
}
