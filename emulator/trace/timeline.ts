/**
 * The readable timeline `xenpv run` prints: one line per trace event, time first, a colour per domain,
 * XenbusState changes and stalls highlighted. Pure: events in, lines out.
 */
import { Chalk, type ChalkInstance } from 'chalk';
import type { StallLink, StallReport, TraceEvent } from '../runtime/engine.js';
import { xenbusStateLabel } from './vocabulary.js';

export type Verbosity = 'quiet' | 'normal' | 'verbose';

export interface TimelineOptions {
  /** Colour level: 0 plain, 1 basic, 2 256, 3 truecolor. */
  colorLevel: 0 | 1 | 2 | 3;
  verbosity: Verbosity;
  /** Names to show instead of numeric domids. */
  domainNames?: ReadonlyMap<number, string>;
}

/** Event kinds that only `--verbose` shows: per-request and per-notification detail. */
const VERBOSE_ONLY = new Set([
  'evtchn-send',
  'evtchn-upcall',
  'watch-fire',
  'watch-callback',
  'ring-push',
  'ring-consume',
  'grant-map',
  'grant-unmap',
  'grant-copy',
  'xs-request',
  'xs-reply',
  'task-spawn',
  'task-exit',
]);

const DOMAIN_COLOURS = ['cyan', 'green', 'magenta', 'yellow', 'blue', 'white'] as const;

export function formatSeconds(ms: number): string {
  return (ms / 1000).toFixed(6).padStart(11);
}

export function domainLabel(dom: number, names?: ReadonlyMap<number, string>): string {
  if (dom < 0) return 'host';
  return names?.get(dom) ?? `dom${dom}`;
}

function fieldText(fields: Record<string, unknown> | undefined, skip: ReadonlySet<string>): string {
  if (!fields) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (skip.has(key) || value === undefined) continue;
    const text =
      typeof value === 'string' ? (/\s/.test(value) ? JSON.stringify(value) : value) : JSON.stringify(value);
    parts.push(`${key}=${text}`);
  }
  return parts.join(' ');
}

/** A state as traced: a number, a numeric string, or a name. */
function stateName(value: unknown): string {
  return xenbusStateLabel(typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value);
}

/** One line for a stall event: who is stuck on what, how long the chain is, and what will break it. */
function stallSummary(f: Record<string, unknown>): string {
  const chain = (f.chain as StallLink[] | undefined) ?? [];
  const head = chain[0] ? `${chain[0].holder} waits for ${chain[0].waitsFor}` : 'no chain';
  const shape = `${chain.length} link${chain.length === 1 ? '' : 's'}${f.cycle ? ', a cycle' : ''}`;
  const by = f.brokenBy as StallReport['brokenBy'];
  const end = by ? `; broken by ${by.timer} at ${formatSeconds(by.at).trim()}s` : '; no timer breaks it';
  return `${head} (${shape})${end}`;
}

/** The words of one event, without time or domain columns. */
export function describeEvent(e: TraceEvent): string {
  const f = e.fields ?? {};
  switch (e.kind) {
    case 'log':
      // The trace sink stores a dmesg line as `msg`; some components log with `message`.
      return String(f.msg ?? f.message ?? '');
    case 'xenbus-state': {
      const rest = fieldText(f, new Set(['from', 'to']));
      return `state ${stateName(f.from)} -> ${stateName(f.to)}${rest ? `  ${rest}` : ''}`;
    }
    case 'stall':
      return `STALL: ${stallSummary(f)}`;
    case 'stall-end':
      return `stall ends (${f.by ?? '?'}) after ${formatSeconds(Number(f.duration ?? 0)).trim()}s`;
    default: {
      const rest = fieldText(f, new Set());
      return rest ? `${e.kind}  ${rest}` : e.kind;
    }
  }
}

export function makeChalk(level: TimelineOptions['colorLevel']): ChalkInstance {
  return new Chalk({ level });
}

/** Render a list of events as timeline lines. */
export function renderTimeline(events: readonly TraceEvent[], options: TimelineOptions): string[] {
  if (options.verbosity === 'quiet') return [];
  const c = makeChalk(options.colorLevel);
  const lines: string[] = [];
  for (const e of events) {
    if (options.verbosity !== 'verbose' && VERBOSE_ONLY.has(e.kind)) continue;
    const colour = DOMAIN_COLOURS[(e.dom < 0 ? DOMAIN_COLOURS.length - 1 : e.dom) % DOMAIN_COLOURS.length];
    const dom = c[colour](domainLabel(e.dom, options.domainNames).padEnd(8));
    const who = `${e.task}`.padEnd(18);
    const comp = c.dim(e.comp.padEnd(10));
    let text = describeEvent(e);
    if (e.kind === 'xenbus-state') text = c.bold(text);
    if (e.kind === 'stall') text = c.red.bold(text);
    if (e.kind === 'stall-end') text = c.yellow(text);
    lines.push(`${c.dim(formatSeconds(e.t))}  ${dom} ${who} ${comp} ${text}`);
  }
  return lines;
}

/** A stall as several indented lines: the chain of waits, then what breaks it. */
export function renderStall(stall: StallReport, options: Pick<TimelineOptions, 'colorLevel'>): string[] {
  const c = makeChalk(options.colorLevel);
  const head = stall.brokenBy
    ? `stall at ${formatSeconds(stall.at).trim()}s${stall.cycle ? ' (a cycle)' : ''}, broken by ${stall.brokenBy.timer} in ${stall.brokenBy.task} at ${formatSeconds(stall.brokenBy.at).trim()}s`
    : `DEADLOCK at ${formatSeconds(stall.at).trim()}s${stall.cycle ? ' (a cycle)' : ''}: no timer breaks it`;
  const lines = [c.red.bold(head)];
  stall.chain.forEach((link, i) => {
    const arrow = i === 0 ? '   ' : '-> ';
    const deadline =
      link.deadline === undefined ? '' : c.dim(` (gives up at ${formatSeconds(link.deadline).trim()}s)`);
    lines.push(`  ${arrow}${c.bold(link.holder)} waits for ${link.waitsFor}${deadline}`);
  });
  if (stall.cycle && stall.chain.length > 0) lines.push(`  -> back to ${c.bold(stall.chain[0].holder)}`);
  return lines;
}
