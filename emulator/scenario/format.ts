/**
 * The inverse of the loader: a scenario model back to the file language, so `explore` can save a
 * reduced scenario and tests can check that formatting and loading give the same model back.
 */

import { stringify } from 'yaml';
import { formatPattern } from '../guest/pattern.js';
import type { ScenarioInput, StepInput } from './load.js';
import type {
  BlkfrontParams,
  Expectations,
  Fault,
  GuestAction,
  Scenario,
  Step,
  TextMatcher,
  TimeBounds,
  WaitCondition,
} from './model.js';
import { BLKFRONT_PARAM_KEYS, VERSION_SWITCHES } from './model.js';
import { formatDuration, formatSize as sizeText } from './units.js';

/** Byte counts without a unit are written as YAML numbers (`offset: 0`, not `offset: "0"`). */
function formatSize(bytes: number): string | number {
  const text = sizeText(bytes);
  return /^\d+$/.test(text) ? bytes : text;
}

function matcher(m: TextMatcher): string {
  return m.kind === 'substring' ? m.text : `/${m.source}/${m.flags}`;
}

function bounds(b: TimeBounds): Record<string, string> {
  const out: Record<string, string> = {};
  if (b.atLeast !== undefined) out['at-least'] = formatDuration(b.atLeast);
  if (b.atMost !== undefined) out['at-most'] = formatDuration(b.atMost);
  return out;
}

/** `open: xvda` and `close: xvda` name the disk directly; other actions take a map. */
function action(a: GuestAction): Record<string, unknown> | string {
  switch (a.kind) {
    case 'write':
      return {
        disk: a.disk,
        offset: formatSize(a.offset),
        length: formatSize(a.length),
        pattern: formatPattern(a.pattern),
      };
    case 'read': {
      const out: Record<string, unknown> = {
        disk: a.disk,
        offset: formatSize(a.offset),
        length: formatSize(a.length),
      };
      if (a.verify !== undefined) out.verify = formatPattern(a.verify);
      return out;
    }
    case 'discard':
      return { disk: a.disk, offset: formatSize(a.offset), length: formatSize(a.length) };
    case 'flush':
      return { disk: a.disk };
    case 'fio': {
      const out: Record<string, unknown> = {
        disk: a.disk,
        rw: a.rw,
        bs: formatSize(a.bs),
        iodepth: a.iodepth,
        size: formatSize(a.size),
        verify: a.verify,
      };
      if (a.count !== undefined) out.count = a.count;
      if (a.duration !== undefined) out.duration = formatDuration(a.duration);
      return out;
    }
    case 'open':
    case 'close':
      return a.disk;
    case 'shutdown':
      return a.timeout === undefined ? {} : { timeout: formatDuration(a.timeout) };
    case 'crash':
      return {};
  }
}

function wait(w: WaitCondition): Record<string, unknown> {
  switch (w.kind) {
    case 'time':
      return { time: formatDuration(w.time) };
    case 'xenstore': {
      const out: Record<string, unknown> = { xenstore: w.path };
      if (w.value !== undefined) out.value = w.value;
      if (w.absent) out.absent = true;
      if (w.timeout !== undefined) out.timeout = formatDuration(w.timeout);
      return out;
    }
    case 'domain': {
      const out: Record<string, unknown> = { domain: w.domain, state: w.state };
      if (w.timeout !== undefined) out.timeout = formatDuration(w.timeout);
      return out;
    }
    case 'guest': {
      const out: Record<string, unknown> = { guest: w.guest, [w.present ? 'device' : 'no-device']: w.device };
      if (w.timeout !== undefined) out.timeout = formatDuration(w.timeout);
      return out;
    }
  }
}

function fault(f: Fault): Record<string, unknown> {
  switch (f.kind) {
    case 'kill-tapdisk':
      return {
        [f.kind]: f.minor === undefined ? { signal: f.signal } : { signal: f.signal, minor: f.minor },
      };
    case 'stall-xenwatch':
      return { [f.kind]: { for: formatDuration(f.for) } };
    case 'slow-image':
      return { [f.kind]: { image: f.image, delay: formatDuration(f.delay) } };
    case 'fail-image':
      return { [f.kind]: { image: f.image, error: f.error, after: f.after } };
    case 'lose-event':
      return {
        [f.kind]:
          f.port === undefined
            ? { domain: f.domain, count: f.count }
            : { domain: f.domain, port: f.port, count: f.count },
      };
    case 'crash-domain':
      return { [f.kind]: { domain: f.domain } };
    case 'slow-hotplug':
      return { [f.kind]: { delay: formatDuration(f.delay) } };
  }
}

/** `blkfront:` with the file's keys, only those set. */
function blkfront(p: BlkfrontParams): Record<string, boolean | number> {
  const out: Record<string, boolean | number> = {};
  for (const [key, field] of Object.entries(BLKFRONT_PARAM_KEYS)) {
    const v = p[field];
    if (v !== undefined) out[key] = v;
  }
  return out;
}

function step(s: Step): StepInput {
  let out: StepInput;
  switch (s.kind) {
    case 'xl':
    case 'tap-ctl':
      out = { [s.kind]: s.command };
      break;
    case 'guest':
      out = { guest: s.guest, [s.action.kind]: action(s.action) };
      break;
    case 'xenstore-write':
      out = { [s.kind]: { path: s.path, value: s.value } };
      break;
    case 'xenstore-read':
      out = { [s.kind]: s.expect === undefined ? { path: s.path } : { path: s.path, expect: s.expect } };
      break;
    case 'xenstore-rm':
      out = { [s.kind]: { path: s.path } };
      break;
    case 'wait':
      out = { wait: wait(s.wait) };
      break;
    case 'fault':
      out = { fault: fault(s.fault) };
      break;
    case 'repeat':
      out = { repeat: s.count, steps: s.steps.map(step) };
      break;
    case 'parallel':
      out = { parallel: s.steps.map(step) };
      break;
    case 'host':
      out = { host: s.action };
      break;
  }
  if (s.label !== undefined) out.label = s.label;
  if (s.reorderable) out.reorderable = true;
  if (s.expectElapsed !== undefined) out['expect-elapsed'] = bounds(s.expectElapsed);
  if (s.expectError !== undefined) out['expect-error'] = s.expectError;
  if (s.mayFail) out['may-fail'] = true;
  return out;
}

function expectations(e: Expectations): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (e.stall !== undefined) {
    if (e.stall.kind === 'none') out.stall = 'none';
    else {
      const stall: Record<string, unknown> = { chain: e.stall.chain.map(matcher) };
      if (e.stall.brokenBy !== undefined) stall['broken-by'] = matcher(e.stall.brokenBy);
      if (e.stall.count !== undefined) stall.count = e.stall.count;
      out.stall = stall;
    }
  }
  if (e.deadlock !== undefined) out.deadlock = e.deadlock;
  if (e.tapCtlList !== undefined) out['tap-ctl-list'] = e.tapCtlList;
  if (e.loopDevices !== undefined) out['loop-devices'] = e.loopDevices;
  if (e.xenstoreAbsent !== undefined) out['xenstore-absent'] = e.xenstoreAbsent;
  if (e.xenstore !== undefined) out.xenstore = e.xenstore;
  if (e.domains !== undefined) out.domains = e.domains;
  if (e.data !== undefined) {
    out.data = e.data.map((d) => ({
      image: d.image,
      offset: formatSize(d.offset),
      length: formatSize(d.length),
      pattern: formatPattern(d.pattern),
    }));
  }
  if (e.log !== undefined) {
    out.log = e.log.map((l) =>
      'contains' in l
        ? { domain: l.domain, contains: matcher(l.contains) }
        : { domain: l.domain, 'not-contains': matcher(l.notContains) },
    );
  }
  if (e.elapsed !== undefined) out.elapsed = bounds(e.elapsed);
  if (e.oops !== undefined) out.oops = matcher(e.oops);
  return out;
}

/** The scenario as a plain object in the file's shape (what `scenario()` accepts). */
export function toScenarioInput(s: Scenario): ScenarioInput {
  // Keys in the order a person writes them: what it is, what it runs on, what it does, what it expects.
  const out = { name: s.name, description: s.description } as ScenarioInput;
  if (s.cites !== undefined) out.cites = s.cites;
  if (s.seed !== undefined) out.seed = s.seed;
  out.versions = Object.fromEntries(
    VERSION_SWITCHES.map((sw) => [sw.key, s.versions[sw.field]]),
  ) as ScenarioInput['versions'];
  out.host = {
    memory: formatSize(s.host.memory),
    images: s.host.images.map((i) => ({
      name: i.name,
      size: formatSize(i.size),
      format: i.format,
      fill: formatPattern(i.fill),
    })),
  };
  out.domains = s.domains.map((d) => ({
    name: d.name,
    memory: formatSize(d.memory),
    abi: d.abi,
    disks: d.disks,
    ...(d.onPoweroff === undefined ? {} : { 'on-poweroff': d.onPoweroff }),
    ...(d.onCrash === undefined ? {} : { 'on-crash': d.onCrash }),
    ...(d.blkfront === undefined ? {} : { blkfront: blkfront(d.blkfront) }),
  }));
  out.steps = s.steps.map(step);
  out.expect = expectations(s.expect);
  return out;
}

/** The scenario as YAML text in the file language. */
export function formatScenario(s: Scenario): string {
  // Strings are quoted whenever YAML would read them as another type (e.g. "4.1", "true").
  return stringify(toScenarioInput(s), { lineWidth: 0 });
}
