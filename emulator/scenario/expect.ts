/**
 * Checking a scenario's expectations against what the run left: one check per expectation, each with
 * a name (`expect.stall`, `expect.xenstore /local/domain/1`) and, when it fails, what was seen.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { firstMismatch, type Pattern } from '../guest/pattern.js';
import type { EngineKind, Millis, StallReport } from '../runtime/engine.js';
import type { DomainState, Scenario, TextMatcher } from './model.js';
import type { StepRecord } from './run-steps.js';
import { checkTimeBounds } from './time-bounds.js';
import { formatDuration } from './units.js';

export interface ExpectationCheck {
  name: string;
  ok: boolean;
  /** What was seen (always for failures; for passes when it helps). */
  detail: string;
}

export interface EndState {
  guestStates: Record<string, string | undefined>;
  xenstore: Record<string, string | undefined>;
  tapCtlList: string[] | undefined;
  tapCtlError?: string;
  /** `losetup -a` in dom0 at the end, when `expect.loop-devices` asks. */
  loopDevices?: string[];
  loopDevicesError?: string;
  /**
   * Set when the run ended (a deadlock, an error) before the controller had read every part the
   * expectations look at: how it ended and the parts never read. Their checks fail as "not checked"
   * rather than judging the empty values left in their place.
   */
  unread?: { ended: string; parts: EndStatePart[] };
}

/** One part of the end state, read through dom0 after the steps. */
export type EndStatePart = 'guest states' | 'tap-ctl list' | 'losetup -a' | `xenstore ${string}`;

/** The parts of the end state a scenario's expectations look at, in the order the runner reads them. */
export function endStateParts(s: Scenario): EndStatePart[] {
  const e = s.expect;
  const parts: EndStatePart[] = ['guest states'];
  for (const p of [...(e.xenstoreAbsent ?? []), ...Object.keys(e.xenstore ?? {})])
    parts.push(`xenstore ${p}`);
  if (e.tapCtlList !== undefined) parts.push('tap-ctl list');
  if (e.loopDevices !== undefined) parts.push('losetup -a');
  return parts;
}

/** How a run that stopped early ended, for "not checked" details: "in a deadlock", "with an error". */
export function howRunEnded(outcome: RunFacts['outcome']): string {
  return outcome === 'deadlock' ? 'in a deadlock' : outcome === 'error' ? 'with an error' : 'early';
}

/** The detail of a check whose part was never read, or undefined when it was. */
function notChecked(end: EndState, part: EndStatePart): string | undefined {
  if (end.unread === undefined || !end.unread.parts.includes(part)) return undefined;
  const what =
    part === 'tap-ctl list' || part === 'losetup -a'
      ? `${part} could run`
      : part === 'guest states'
        ? "the domains' states were read"
        : `${part.slice('xenstore '.length)} was read`;
  return `not checked: the run ended ${end.unread.ended} before ${what}`;
}

export interface RunFacts {
  /** The engine that ran (default sim): threads does not assert upper time bounds (time-bounds.ts). */
  engine?: EngineKind;
  outcome: 'completed' | 'deadlock' | 'error';
  /** The run error's message when the outcome is 'error' (an oops carries its "BUG: ..." line). */
  error?: string;
  stalls: StallReport[];
  endTime: Millis;
  dmesg: Record<number, string[]>;
  domainNames: Record<number, string>;
  end: EndState;
  workDir: string;
  steps: StepRecord[];
}

/** A `tap-ctl-list` row: exact text, or `/source/flags` for a whole-row regular expression (image paths). */
export function tapCtlRowMatches(want: string, row: string): boolean {
  const re = /^\/(.+)\/([imsu]*)$/s.exec(want);
  return re === null ? row === want : new RegExp(`^(?:${re[1]})$`, re[2]).test(row);
}

export function matchText(m: TextMatcher, text: string): boolean {
  if (m.kind === 'substring') return text.includes(m.text);
  return new RegExp(m.source, m.flags).test(text);
}

export function showMatcher(m: TextMatcher): string {
  return m.kind === 'substring' ? JSON.stringify(m.text) : `/${m.source}/${m.flags}`;
}

/** True when the matchers match chain links (holder or what it waits for) in order. */
export function chainMatches(stall: StallReport, matchers: readonly TextMatcher[]): boolean {
  let i = 0;
  for (const link of stall.chain) {
    if (i < matchers.length && (matchText(matchers[i], link.holder) || matchText(matchers[i], link.waitsFor)))
      i++;
  }
  return i === matchers.length;
}

export function showChain(s: StallReport): string {
  return s.chain.map((l) => `${l.holder} waits for ${l.waitsFor}`).join(' -> ') || '(empty chain)';
}

export function checkExpectations(s: Scenario, f: RunFacts): ExpectationCheck[] {
  const e = s.expect;
  const checks: ExpectationCheck[] = [];
  const add = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });
  const stalls = f.stalls.filter((x) => x.brokenBy !== undefined);

  if (e.stall?.kind === 'none') {
    add(
      'expect.stall: none',
      stalls.length === 0,
      stalls.length === 0 ? 'no stall' : `${stalls.length} stall(s): ${stalls.map(showChain).join('; ')}`,
    );
  } else if (e.stall?.kind === 'chain') {
    const want = e.stall;
    const matching = stalls.filter(
      (x) =>
        chainMatches(x, want.chain) &&
        (want.brokenBy === undefined || matchText(want.brokenBy, x.brokenBy?.timer ?? '')),
    );
    const ok = want.count === undefined ? matching.length >= 1 : matching.length === want.count;
    const wanted = `${want.count === undefined ? 'at least one' : `exactly ${want.count}`} stall with chain ${want.chain.map(showMatcher).join(' -> ')}${want.brokenBy ? ` broken by ${showMatcher(want.brokenBy)}` : ''}`;
    add(
      'expect.stall',
      ok,
      `${matching.length} matching of ${stalls.length}; wanted ${wanted}${stalls.length ? `; seen: ${stalls.map((x) => `${showChain(x)} [broken by ${x.brokenBy?.timer}]`).join('; ')}` : ''}`,
    );
  }
  if (e.deadlock !== undefined) {
    const dead = f.outcome === 'deadlock';
    const last = f.stalls.at(-1);
    add(
      `expect.deadlock: ${e.deadlock}`,
      dead === e.deadlock,
      dead ? `deadlock: ${last ? showChain(last) : ''}` : `run ${f.outcome}`,
    );
  }
  if (e.tapCtlList !== undefined) {
    const got = f.end.tapCtlList;
    const unread = notChecked(f.end, 'tap-ctl list');
    const ok =
      unread === undefined &&
      got !== undefined &&
      got.length === e.tapCtlList.length &&
      got.every((row, i) => tapCtlRowMatches(e.tapCtlList![i]!, row));
    add(
      'expect.tap-ctl-list',
      ok,
      unread ??
        (got === undefined
          ? `tap-ctl list failed: ${f.end.tapCtlError ?? 'no rows and no error were recorded'}`
          : got.length
            ? got.join(' | ')
            : '(no rows)'),
    );
  }
  if (e.loopDevices !== undefined) {
    const got = f.end.loopDevices;
    const unread = notChecked(f.end, 'losetup -a');
    const ok =
      unread === undefined &&
      got !== undefined &&
      got.length === e.loopDevices.length &&
      got.every((row, i) => tapCtlRowMatches(e.loopDevices![i]!, row));
    add(
      'expect.loop-devices',
      ok,
      unread ??
        (got === undefined
          ? `losetup -a failed: ${f.end.loopDevicesError ?? 'no rows and no error were recorded'}`
          : got.length
            ? got.join(' | ')
            : '(no loop devices bound)'),
    );
  }
  for (const p of e.xenstoreAbsent ?? []) {
    const v = f.end.xenstore[p];
    const unread = notChecked(f.end, `xenstore ${p}`);
    add(
      `expect.xenstore-absent ${p}`,
      unread === undefined && v === undefined,
      unread ?? (v === undefined ? 'absent' : `left behind: ${p} = ${JSON.stringify(v)}`),
    );
  }
  for (const [p, want] of Object.entries(e.xenstore ?? {})) {
    const v = f.end.xenstore[p];
    const unread = notChecked(f.end, `xenstore ${p}`);
    add(
      `expect.xenstore ${p}`,
      unread === undefined && v === want,
      unread ?? (v === undefined ? 'absent' : `= ${JSON.stringify(v)}`),
    );
  }
  const statesUnread = notChecked(f.end, 'guest states');
  for (const [state, names] of Object.entries(e.domains ?? {}) as [DomainState, string[]][]) {
    if (statesUnread !== undefined) {
      add(`expect.domains.${state}`, false, statesUnread);
      continue;
    }
    const got = Object.entries(f.end.guestStates)
      .filter(([, st]) => st === state)
      .map(([n]) => n)
      .sort();
    const want = [...names].sort();
    const ok = got.length === want.length && got.every((n, i) => n === want[i]);
    add(`expect.domains.${state}`, ok, `[${got.join(', ')}]${ok ? '' : ` (wanted [${want.join(', ')}])`}`);
  }
  for (const d of e.data ?? []) {
    const name = `expect.data ${d.image} ${d.length}@${d.offset}`;
    try {
      const bad = imageMismatch(join(f.workDir, d.image), d.pattern, d.offset, d.length);
      add(name, bad < 0, bad < 0 ? 'matches' : `first difference at byte ${bad}`);
    } catch (err) {
      add(name, false, (err as Error).message);
    }
  }
  for (const l of e.log ?? []) {
    const engineDom = Object.entries(f.domainNames).find(([, n]) => n === l.domain)?.[0];
    const lines = engineDom === undefined ? [] : (f.dmesg[Number(engineDom)] ?? []);
    if ('contains' in l) {
      const hit = lines.some((x) => matchText(l.contains, x));
      add(
        `expect.log ${l.domain} contains ${showMatcher(l.contains)}`,
        hit,
        hit ? 'found' : `not in ${lines.length} line(s)`,
      );
    } else {
      const hit = lines.find((x) => matchText(l.notContains, x));
      add(
        `expect.log ${l.domain} not-contains ${showMatcher(l.notContains)}`,
        hit === undefined,
        hit ?? 'absent',
      );
    }
  }
  if (e.elapsed !== undefined) {
    const { atLeast, atMost } = e.elapsed;
    const c = checkTimeBounds(f.endTime, e.elapsed, f.engine ?? 'sim');
    add(
      'expect.elapsed',
      c.ok,
      `${formatDuration(f.endTime)} (wanted${atLeast !== undefined ? ` >= ${formatDuration(atLeast)}` : ''}${atMost !== undefined ? ` <= ${formatDuration(atMost)}` : ''})` +
        (c.unasserted === undefined ? '' : `; ${c.unasserted}`),
    );
  }
  if (e.oops !== undefined) {
    const ok = oopsExpected(s, f.outcome, f.error);
    add(
      `expect.oops ${showMatcher(e.oops)}`,
      ok,
      ok
        ? `the run's expected ending: ${f.error}`
        : f.outcome === 'error'
          ? (f.error ?? 'run error without a message')
          : `no oops: run ${f.outcome}`,
    );
  }
  return checks;
}

/** True when the run ended in the oops the scenario expects (`expect.oops`); any other error is a failure. */
export function oopsExpected(s: Scenario, outcome: RunFacts['outcome'], error: string | undefined): boolean {
  const want = s.expect.oops;
  return want !== undefined && outcome === 'error' && error !== undefined && matchText(want, error);
}

/** Bytes of the image read and compared at a time: the check's buffer is reused, not sized to the range. */
const CHECK_CHUNK = 256 * 1024;
let checkBuffer: Uint8Array | undefined;

/**
 * The first offset in [offset, offset + length) of the image file whose byte differs from `pattern`,
 * or -1. Throws when the file is shorter than the range.
 */
function imageMismatch(path: string, pattern: Pattern, offset: number, length: number): number {
  checkBuffer ??= new Uint8Array(CHECK_CHUNK);
  const fd = openSync(path, 'r');
  try {
    // A short image fails as such, whatever its bytes: the size first, then the comparison.
    const have = Math.max(0, Math.min(length, fstatSync(fd).size - offset));
    if (have < length)
      throw new Error(`image ${path} has only ${have} byte(s) at offset ${offset}, wanted ${length}`);
    for (let done = 0; done < length; ) {
      const want = Math.min(CHECK_CHUNK, length - done);
      const buf = checkBuffer.subarray(0, want);
      let got = 0;
      while (got < want) {
        const n = readSync(fd, buf, got, want - got, offset + done + got);
        if (n === 0) {
          throw new Error(
            `image ${path} has only ${done + got} byte(s) at offset ${offset}, wanted ${length}`,
          );
        }
        got += n;
      }
      const bad = firstMismatch(pattern, offset + done, buf);
      if (bad >= 0) return bad;
      done += want;
    }
    return -1;
  } finally {
    closeSync(fd);
  }
}
