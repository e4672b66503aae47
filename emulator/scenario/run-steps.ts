/**
 * Executing one scenario step on the machine as the controller: each kind goes to the program that
 * does it in the real system (xl and tap-ctl to dom0's user space, guest actions to the guest's
 * kernel, xenstore to dom0's client), with the step's virtual start and end time and its outcome.
 * `expect-error` inverts success (the message must contain it); `may-fail` records a failure without
 * failing the scenario.
 */

import { formatPattern } from '../guest/pattern.js';
import type { Machine } from '../machine/machine.js';
import type { Controller, Millis } from '../runtime/engine.js';
import type { Fault, GuestAction, Step, WaitCondition } from './model.js';
import { checkTimeBounds } from './time-bounds.js';
import { formatDuration } from './units.js';

export interface StepRecord {
  /** Field path, with the iteration for repeats: `steps[2].steps[0]#3`. */
  path: string;
  kind: string;
  label?: string;
  description: string;
  start: Millis;
  end: Millis;
  /** ok; failed (counts against the verdict); tolerated (may-fail or the expected error happened). */
  /** 'unfinished': the run ended (a deadlock, an error) while the step was still running. */
  status: 'ok' | 'failed' | 'tolerated' | 'unfinished';
  error?: string;
  /** A bound of `expect-elapsed` this engine does not assert, and why (threads: at-most). */
  unasserted?: string;
  stdout?: string[];
  exitCode?: number;
  line?: number;
}

interface CommandResult {
  exitCode: number;
  stdout: string[];
  stderr: string[];
}

/** Splits a command line like a shell would for plain words and single or double quotes. */
export function splitCommand(command: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | undefined;
  let has = false;
  for (const ch of command) {
    if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur !== '') out.push(cur);
      cur = '';
      has = false;
    } else cur += ch;
  }
  if (quote !== undefined) throw new Error(`unterminated ${quote} quote in: ${command}`);
  if (has || cur !== '') out.push(cur);
  return out;
}

export function describeStep(step: Step): string {
  switch (step.kind) {
    case 'xl':
      return `xl ${step.command}`;
    case 'tap-ctl':
      return `tap-ctl ${step.command}`;
    case 'guest':
      return `${step.guest}: ${describeAction(step.action)}`;
    case 'xenstore-write':
      return `xenstore-write ${step.path} ${step.value}`;
    case 'xenstore-read':
      return `xenstore-read ${step.path}`;
    case 'xenstore-rm':
      return `xenstore-rm ${step.path}`;
    case 'wait':
      return describeWait(step.wait);
    case 'fault':
      return describeFault(step.fault);
    case 'repeat':
      return `repeat ${step.count}`;
    case 'parallel':
      return `parallel (${step.steps.length})`;
    case 'host':
      return `host ${step.action}`;
  }
}

function describeFault(f: Fault): string {
  switch (f.kind) {
    case 'kill-tapdisk':
      return `fault kill-tapdisk ${f.signal}${f.minor === undefined ? '' : ` minor ${f.minor}`}`;
    case 'stall-xenwatch':
      return `fault stall-xenwatch ${formatDuration(f.for)}`;
    case 'slow-image':
      return `fault slow-image ${f.image} +${formatDuration(f.delay)}`;
    case 'fail-image':
      return `fault fail-image ${f.image} ${f.error} after ${f.after}`;
    case 'lose-event':
      return `fault lose-event ${f.domain}${f.port === undefined ? '' : ` port ${f.port}`} x${f.count}`;
    case 'crash-domain':
      return `fault crash-domain ${f.domain}`;
    case 'slow-hotplug':
      return `fault slow-hotplug +${formatDuration(f.delay)}`;
  }
}

function describeAction(a: GuestAction): string {
  switch (a.kind) {
    case 'write':
      return `write ${a.disk} ${a.length}@${a.offset} ${formatPattern(a.pattern)}`;
    case 'read':
      return `read ${a.disk} ${a.length}@${a.offset}`;
    case 'discard':
      return `discard ${a.disk} ${a.length}@${a.offset}`;
    case 'fio':
      return `fio ${a.rw} ${a.disk} bs=${a.bs}`;
    case 'flush':
    case 'open':
    case 'close':
      return `${a.kind} ${a.disk}`;
    default:
      return a.kind;
  }
}

function describeWait(w: WaitCondition): string {
  switch (w.kind) {
    case 'time':
      return `wait ${formatDuration(w.time)}`;
    case 'xenstore':
      return `wait for ${w.path}${w.absent ? ' to go' : w.value !== undefined ? ` = ${w.value}` : ' to exist'}`;
    case 'domain':
      return `wait for ${w.domain} to be ${w.state}`;
    case 'guest':
      return `wait for ${w.guest} to have ${w.present ? 'device' : 'no device'} ${w.device}`;
  }
}

export async function runStep(
  ctl: Controller,
  machine: Machine,
  step: Step,
  out: StepRecord[],
  suffix = '',
): Promise<void> {
  const rec: StepRecord = {
    path: step.at.path + suffix,
    kind: step.kind,
    description: describeStep(step),
    start: ctl.env.now(),
    end: ctl.env.now(),
    status: 'unfinished',
    ...(step.label !== undefined ? { label: step.label } : {}),
    ...(step.at.line !== undefined ? { line: step.at.line } : {}),
  };
  out.push(rec);
  let error: string | undefined;
  try {
    error = await execute(ctl, machine, step, out, rec, suffix);
  } catch (e) {
    error = (e as Error).message;
  }
  rec.end = ctl.env.now();
  rec.status = 'ok';
  if (step.expectError !== undefined) {
    if (error === undefined) {
      rec.status = 'failed';
      rec.error = `expected an error containing "${step.expectError}", but the step succeeded`;
    } else if (!error.includes(step.expectError)) {
      rec.status = 'failed';
      rec.error = `expected an error containing "${step.expectError}", got: ${error}`;
    } else {
      rec.status = 'tolerated';
      rec.error = error;
    }
  } else if (error !== undefined) {
    rec.status = step.mayFail ? 'tolerated' : 'failed';
    rec.error = error;
  }
  const b = step.expectElapsed;
  if (b !== undefined && rec.status !== 'failed') {
    const took = rec.end - rec.start;
    const c = checkTimeBounds(took, b, machine.engine.kind);
    if (c.unasserted !== undefined) rec.unasserted = `expect-elapsed ${c.unasserted}`;
    if (!c.ok) {
      rec.status = 'failed';
      rec.error = `took ${formatDuration(took)}, ${c.broken}`;
    }
  }
}

/** Runs the step; returns an error message when it failed. */
async function execute(
  ctl: Controller,
  machine: Machine,
  step: Step,
  out: StepRecord[],
  rec: StepRecord,
  suffix: string,
): Promise<string | undefined> {
  switch (step.kind) {
    case 'xl':
    case 'tap-ctl': {
      const r = (await ctl.call(
        0,
        step.kind === 'xl' ? 'xl' : 'tapCtl',
        splitCommand(step.command),
      )) as CommandResult;
      rec.stdout = [...r.stdout, ...r.stderr];
      rec.exitCode = r.exitCode;
      if (r.exitCode !== 0) {
        // One output stream per process: the last line printed is what says why.
        const why = r.stderr.length ? r.stderr.join(' / ') : r.stdout.at(-1);
        return `exit code ${r.exitCode}${why ? `: ${why}` : ''}`;
      }
      return undefined;
    }
    case 'guest':
      await ctl.call(machine.engineDomainOf(step.guest), step.action.kind, step.action);
      return undefined;
    case 'xenstore-write':
      await ctl.call(0, 'xenstoreWrite', step.path, step.value);
      return undefined;
    case 'xenstore-read': {
      const v = (await ctl.call(0, 'xenstoreRead', step.path)) as string | undefined;
      rec.stdout = [v ?? '(absent)'];
      if (v === undefined) return `${step.path} does not exist`;
      if (step.expect !== undefined && v !== step.expect)
        return `${step.path} is "${v}", expected "${step.expect}"`;
      return undefined;
    }
    case 'xenstore-rm':
      await ctl.call(0, 'xenstoreRm', step.path);
      return undefined;
    case 'wait':
      return wait(ctl, machine, step.wait);
    case 'fault':
      return fault(ctl, machine, step.fault);
    case 'repeat':
      for (let i = 0; i < step.count; i++) {
        for (const s of step.steps) await runStep(ctl, machine, s, out, `${suffix}#${i + 1}`);
      }
      return firstFailure(out, rec);
    case 'parallel': {
      // One controller task cannot await two calls at once: one task per branch.
      const q = ctl.env.waitQueue(`parallel ${step.at.path}`);
      let left = step.steps.length;
      for (const s of step.steps) {
        ctl.env.spawn(`step ${s.at.path}`, async () => {
          try {
            await runStep(ctl, machine, s, out, suffix);
          } finally {
            left--;
            q.wakeAll();
          }
        });
      }
      await ctl.env.wait(q, () => left === 0, {
        what: `the ${step.steps.length} parallel steps of ${step.at.path}`,
      });
      return firstFailure(out, rec);
    }
    case 'host':
      // dom0's power-off: device_shutdown of its buses (the only part with observable behaviour).
      await ctl.call(0, 'hostShutdown');
      return undefined;
  }
}

function firstFailure(out: StepRecord[], parent: StepRecord): string | undefined {
  const i = out.indexOf(parent);
  const bad = out.slice(i + 1).find((r) => r.status === 'failed');
  return bad === undefined ? undefined : `inner step ${bad.path} failed`;
}

async function wait(ctl: Controller, machine: Machine, w: WaitCondition): Promise<string | undefined> {
  switch (w.kind) {
    case 'time':
      await ctl.env.sleep(w.time, { what: `scenario wait ${formatDuration(w.time)}` });
      return undefined;
    case 'xenstore': {
      const ok = (await ctl.call(0, 'xenstoreWait', w.path, w.value, w.absent, w.timeout)) as boolean;
      return ok ? undefined : `timed out after ${formatDuration(w.timeout ?? 0)}: ${describeWait(w)}`;
    }
    case 'domain': {
      const ok = (await ctl.call(0, 'waitDomainState', w.domain, w.state, w.timeout)) as boolean;
      return ok ? undefined : `timed out after ${formatDuration(w.timeout ?? 0)}: ${describeWait(w)}`;
    }
    case 'guest': {
      const ok = (await ctl.call(
        machine.engineDomainOf(w.guest),
        w.present ? 'waitDevice' : 'waitNoDevice',
        w.device,
        w.timeout,
      )) as boolean;
      return ok ? undefined : `timed out after ${formatDuration(w.timeout ?? 0)}: ${describeWait(w)}`;
    }
  }
}

/** Injects a fault through the component that models it (dom0-faults.ts); each is traced as 'fault'. */
async function fault(ctl: Controller, machine: Machine, f: Fault): Promise<string | undefined> {
  switch (f.kind) {
    case 'crash-domain':
      ctl.env.trace.emit('fault', 'fault', { fault: f.kind, domain: f.domain });
      await ctl.call(machine.engineDomainOf(f.domain), 'crash');
      return undefined;
    case 'kill-tapdisk':
      await ctl.call(0, 'faultKillTapdisk', f.signal, f.minor);
      return undefined;
    case 'stall-xenwatch':
      await ctl.call(0, 'faultStallXenwatch', f.for);
      return undefined;
    case 'slow-image':
      await ctl.call(0, 'faultSlowImage', f.image, f.delay);
      return undefined;
    case 'fail-image':
      await ctl.call(0, 'faultFailImage', f.image, f.error, f.after);
      return undefined;
    case 'lose-event':
      await ctl.call(0, 'faultLoseEvent', f.domain, f.port, f.count);
      return undefined;
    case 'slow-hotplug':
      await ctl.call(0, 'faultSlowHotplug', f.delay);
      return undefined;
  }
}
