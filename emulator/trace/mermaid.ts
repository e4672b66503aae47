/**
 * A Mermaid `sequenceDiagram` of a run's control path: the XenbusState handshake through xenstore, watch
 * callbacks in xenwatch, libxl's steps, tap-ctl's messages to tapdisk and its blktap control calls, and
 * stalls as highlighted notes. Per-request ring traffic is left to the Perfetto view (too fine for this).
 *
 * Participants appear only when used, in a fixed order (guest blkfronts, then dom0: xenstore,
 * xenwatch/blkback, libxl, tap-ctl, each tapdisk, blktap), grouped in one box per domain.
 */
import type { TraceEvent } from '../runtime/engine.js';
import { checkEvent, xenbusStateLabel } from './vocabulary.js';

export interface MermaidOptions {
  /** Names for domains (default "dom<N>"). */
  domainNames?: ReadonlyMap<number, string>;
  /** At most this many steps (messages and notes); the rest is summarised in one note. Default 300. */
  maxSteps?: number;
  /** Number the messages (Mermaid `autonumber`). Default false. */
  autonumber?: boolean;
}

export const DEFAULT_MAX_STEPS = 300;

/**
 * Text safe inside a Mermaid message, note or participant alias: one line; '#', ';', '<' and '>' as
 * Mermaid entity codes (';' ends a statement, '#' starts an entity, angle brackets are read as HTML);
 * the keyword "end" bracketed so it cannot close a block.
 */
export function escapeMermaidText(text: string): string {
  const entities: Record<string, string> = { '#': '#35;', ';': '#59;', '<': '#lt;', '>': '#gt;' };
  return text
    .replace(/[\r\n\t]+/g, ' ')
    .replace(/[#;<>]/g, (c) => entities[c])
    .replace(/\bend\b/gi, (m) => `(${m})`)
    .trim();
}

interface Participant {
  id: string;
  label: string;
  /** Sort key: box first, then position. */
  order: [number, number];
  box: number;
}

type Step =
  | { type: 'msg'; from: string; to: string; arrow: '->>' | '-->>' | '-)' | '-x'; text: string }
  | { type: 'note'; over: string[] | 'all'; text: string }
  | { type: 'rect-open' }
  | { type: 'rect-close' };

const MUTATING_XS = new Set(['WRITE', 'RM', 'MKDIR', 'SET_PERMS', 'INTRODUCE', 'RELEASE']);
const DATA_PATH_KINDS = new Set([
  'request-start',
  'request-end',
  'ring',
  'ring-push',
  'ring-consume',
  'grant-map',
  'grant-unmap',
  'grant-copy',
  'evtchn-send',
  'evtchn-upcall',
  'log',
  'syslog',
  'stdout',
  'stderr',
  'xs-reply',
  'request-error',
  'io-error',
  'ring-message',
  'blk-req',
  'blk-req-latency',
  // tapdisk's side of a control message: tap-ctl's send/receive arrows already show it
  'message',
  'reply',
]);

function short(value: unknown, max = 48): string {
  const s = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

function fieldSummary(
  fields: Record<string, unknown> | undefined,
  skip: readonly string[] = ['pid'],
): string {
  if (fields === undefined) return '';
  return Object.entries(fields)
    .filter(([k, v]) => v !== undefined && !skip.includes(k))
    .map(([k, v]) => `${k}=${short(typeof v === 'bigint' ? `${v}` : v, 32)}`)
    .join(' ');
}

class Diagram {
  readonly participants = new Map<string, Participant>();
  readonly steps: Step[] = [];
  private readonly names: ReadonlyMap<number, string> | undefined;

  constructor(names: ReadonlyMap<number, string> | undefined) {
    this.names = names;
  }

  domName(dom: number): string {
    return this.names?.get(dom) ?? `dom${dom}`;
  }

  frontend(dom: number): string {
    const id = dom < 0 ? `feHost${-dom}` : `fe${dom}`;
    if (!this.participants.has(id)) {
      this.participants.set(id, { id, label: `${this.domName(dom)} blkfront`, order: [dom, 0], box: dom });
    }
    return id;
  }

  dom0(role: 'xs' | 'bb' | 'libxl' | 'tapctl' | 'blktap'): string {
    const labels = {
      xs: ['xenstore', 0],
      bb: ['xenwatch/blkback', 1],
      libxl: ['libxl', 2],
      tapctl: ['tap-ctl', 3],
      blktap: ['blktap', 9_000_000],
    } as const;
    if (!this.participants.has(role)) {
      const [label, pos] = labels[role];
      this.participants.set(role, { id: role, label, order: [0, pos], box: 0 });
    }
    return role;
  }

  tapdisk(pid: unknown): string {
    const n = typeof pid === 'number' && Number.isSafeInteger(pid) && pid >= 0 ? pid : undefined;
    const id = n === undefined ? 'td' : `td${n}`;
    if (!this.participants.has(id)) {
      const label = n === undefined ? 'tapdisk' : `tapdisk[${n}]`;
      this.participants.set(id, { id, label, order: [0, 10 + (n ?? 0)], box: 0 });
    }
    return id;
  }

  /**
   * The participant that owns a xenbus node path seen from domain `dom` (dom0 and the host controller,
   * which runs dom0's user space in some harnesses, are one side).
   */
  ownerOfPath(path: unknown, dom: number): string {
    const p = String(path);
    if (p.startsWith('backend/') || /^\/local\/domain\/\d+\/backend\//.test(p)) return this.dom0('bb');
    if (dom > 0) return this.frontend(dom);
    const fe = frontendDomOf(p);
    return fe > 0 ? this.frontend(fe) : this.dom0('bb');
  }

  /** The participant for an event's emitter, or undefined when it is not on the control path. */
  emitter(e: TraceEvent): string | undefined {
    switch (e.comp) {
      case 'blkfront':
        return this.frontend(e.dom);
      case 'blkback':
      case 'xenwatch':
        return this.dom0('bb');
      case 'xenbus':
        return e.dom > 0 ? this.frontend(e.dom) : this.dom0('bb');
      case 'xenstored':
      case 'xenstore':
        return this.dom0('xs');
      case 'libxl':
      case 'xl':
        return this.dom0('libxl');
      case 'tap-ctl':
        return this.dom0('tapctl');
      case 'tapdisk':
        return this.tapdisk(e.fields?.pid);
      case 'blktap':
        return this.dom0('blktap');
      default:
        return undefined;
    }
  }

  msg(from: string, to: string, text: string, arrow: '->>' | '-->>' | '-)' | '-x' = '->>'): void {
    this.steps.push({ type: 'msg', from, to, arrow, text });
  }

  note(over: string[] | 'all', text: string): void {
    this.steps.push({ type: 'note', over, text });
  }
}

/** "/local/domain/3/device/vbd/51712" -> 3; relative "device/..." paths are the guest's own (-> 0). */
function frontendDomOf(path: string): number {
  const m = /^\/local\/domain\/(\d+)\//.exec(path);
  return m ? Number(m[1]) : 0;
}

function stallText(e: TraceEvent): string {
  const fl = e.fields ?? {};
  const chain = Array.isArray(fl.chain)
    ? fl.chain.map((l) => {
        const link = (l ?? {}) as Record<string, unknown>;
        return `${String(link.holder)} waits for ${String(link.waitsFor)}`;
      })
    : [];
  const head = e.kind === 'deadlock' ? 'DEADLOCK' : 'STALL';
  const broken = fl.brokenBy as { timer?: unknown; task?: unknown } | undefined;
  const tail = broken ? ` — broken by ${String(broken.timer)} in ${String(broken.task)}` : '';
  const waits = chain.length > 0 ? chain.join(' → ') : 'no waits recorded';
  return `${head}${fl.cycle ? ' (cycle)' : ''}: ${waits}${tail}`;
}

function libxlOp(d: Diagram, from: string, op: string): void {
  const word = op.split(' ')[0];
  if (word.startsWith('tap_ctl') || word === 'tap-ctl') d.msg(from, d.dom0('tapctl'), op);
  else if (word.startsWith('xs_')) d.msg(from, d.dom0('xs'), op);
  else d.note([from], op);
}

function addEvent(d: Diagram, e: TraceEvent, stallOpen: { open: boolean }): void {
  const fl = e.fields ?? {};
  if (e.kind === 'stall' || e.kind === 'deadlock') {
    if (checkEvent(e) !== undefined) return;
    if (e.kind === 'stall' && !stallOpen.open) {
      d.steps.push({ type: 'rect-open' });
      stallOpen.open = true;
    }
    d.note('all', stallText(e));
    return;
  }
  if (e.kind === 'stall-end') {
    d.note('all', `stall ends (${String(fl.by)}${fl.task === undefined ? '' : ` in ${String(fl.task)}`})`);
    if (stallOpen.open) {
      d.steps.push({ type: 'rect-close' });
      stallOpen.open = false;
    }
    return;
  }
  if (checkEvent(e) !== undefined) return; // malformed control events are left to the Perfetto view
  switch (e.kind) {
    case 'xenbus-state': {
      const who = d.ownerOfPath(fl.path, e.dom);
      const from = xenbusStateLabel(fl.from);
      const to = xenbusStateLabel(fl.to);
      d.msg(who, d.dom0('xs'), `${String(fl.path)}/state = ${String(fl.to)} (${from} → ${to})`);
      return;
    }
    case 'watch-callback': {
      const who = e.dom > 0 ? d.frontend(e.dom) : d.dom0('bb');
      d.msg(d.dom0('xs'), who, `watch fires: ${String(fl.path)}`, '-)');
      return;
    }
    case 'xs-request': {
      const type = String(fl.type);
      if (!MUTATING_XS.has(type)) return;
      const who = d.emitter(e);
      if (who === undefined || who === 'xs') return;
      const value = fl.value === undefined ? '' : ` = ${short(fl.value, 40)}`;
      d.msg(who, d.dom0('xs'), `${type} ${fl.path === undefined ? '' : String(fl.path)}${value}`.trim());
      return;
    }
  }
  if (e.comp === 'xenbus' && e.kind === 'otherend-changed') {
    // xenbus's otherend watch fired and the driver's otherend_changed runs (in xenwatch)
    const who = d.ownerOfPath(fl.node, e.dom);
    d.msg(
      d.dom0('xs'),
      who,
      `watch fires: ${String(fl.otherend)}/state = ${xenbusStateLabel(fl.state)}`,
      '-)',
    );
    return;
  }
  if (e.comp === 'tap-ctl') {
    const tc = d.dom0('tapctl');
    switch (e.kind) {
      case 'send':
        d.msg(tc, d.tapdisk(fl.to), String(fl.type));
        return;
      case 'receive':
        d.msg(
          d.tapdisk(fl.from),
          tc,
          fl.type === undefined ? `undecodable: ${short(fl.undecodable)}` : String(fl.type),
          '-->>',
        );
        return;
      case 'timeout':
        d.msg(
          tc,
          d.tapdisk(fl.from),
          `no ${String(fl.waited)} after ${String(fl.seconds)} s (select timeout)`,
          '-x',
        );
        return;
      case 'allocate':
        d.msg(tc, d.dom0('blktap'), `BLKTAP2_IOCTL_ALLOC_TAP → minor ${String(fl.minor)}`);
        return;
      case 'free':
        d.msg(tc, d.dom0('blktap'), `BLKTAP2_IOCTL_FREE_TAP minor ${String(fl.minor)}`);
        return;
      case 'free-failed':
        d.msg(
          tc,
          d.dom0('blktap'),
          `BLKTAP2_IOCTL_FREE_TAP minor ${String(fl.minor)} failed (${String(fl.errno)})`,
          '-x',
        );
        return;
      case 'spawn':
        d.msg(tc, d.tapdisk(fl.child), `spawn ${String(fl.program ?? 'tapdisk2')}`);
        return;
      case 'syslog':
        return;
    }
  }
  if (e.comp === 'libxl' && e.kind === 'op') {
    libxlOp(d, d.dom0('libxl'), String(fl.op));
    return;
  }
  if (e.comp === 'libxl' && e.kind === 'log') {
    if (fl.level === 'error' || fl.level === 'warn')
      d.note([d.dom0('libxl')], `${String(fl.level)}: ${short(fl.message, 80)}`);
    return;
  }
  if (
    e.comp === 'blkback' &&
    (e.kind === 'vbd-open' || e.kind === 'vbd-close') &&
    String(fl.disk).startsWith('tapdev')
  ) {
    d.msg(d.dom0('bb'), d.dom0('blktap'), `${e.kind === 'vbd-open' ? 'open' : 'close'} ${String(fl.disk)}`);
    return;
  }
  if (DATA_PATH_KINDS.has(e.kind)) return;
  const who = d.emitter(e);
  if (who === undefined || who === 'xs') return;
  const detail = fieldSummary(fl, ['pid', 'task']);
  d.note([who], detail ? `${e.kind} ${detail}` : e.kind);
}

/** The Mermaid source of a sequence diagram for `events` (any order; sorted by time, stable). */
export function toMermaid(events: readonly TraceEvent[], options: MermaidOptions = {}): string {
  const max = options.maxSteps ?? DEFAULT_MAX_STEPS;
  if (!Number.isSafeInteger(max) || max < 1)
    throw new Error(`maxSteps must be a positive integer, got ${max}`);
  const d = new Diagram(options.domainNames);
  const sorted = events.map((e, i) => ({ e, i })).sort((a, b) => a.e.t - b.e.t || a.i - b.i);
  const stall = { open: false };
  for (const { e } of sorted) addEvent(d, e, stall);
  if (stall.open) d.steps.push({ type: 'rect-close' });

  // Bound the size: keep the first `max` messages and notes (and the rect blocks around them).
  let shown = 0;
  let omitted = 0;
  let rectDepth = 0;
  const kept: Step[] = [];
  for (const s of d.steps) {
    if (s.type === 'rect-open' || s.type === 'rect-close') {
      if (shown >= max) {
        if (s.type === 'rect-close' && rectDepth > 0) {
          kept.push(s);
          rectDepth--;
        }
        continue;
      }
      kept.push(s);
      rectDepth += s.type === 'rect-open' ? 1 : -1;
      continue;
    }
    if (shown >= max) {
      omitted++;
      continue;
    }
    kept.push(s);
    shown++;
  }

  // Participants that appear in the kept steps (an "all" note spans every declared one).
  const used = new Set<string>();
  for (const s of kept) {
    if (s.type === 'msg') {
      used.add(s.from);
      used.add(s.to);
    } else if (s.type === 'note' && s.over !== 'all') for (const p of s.over) used.add(p);
  }
  if (used.size === 0) used.add(d.dom0('xs'));
  const ordered = [...used]
    .map((id) => d.participants.get(id)!)
    .sort(
      (a, b) =>
        (a.box === 0 ? 1 : 0) - (b.box === 0 ? 1 : 0) || a.order[0] - b.order[0] || a.order[1] - b.order[1],
    );

  const lines = ['sequenceDiagram'];
  if (options.autonumber) lines.push('  autonumber');
  let box: number | undefined;
  for (const p of ordered) {
    if (p.box !== box) {
      if (box !== undefined) lines.push('  end');
      box = p.box;
      const colour = p.box === 0 ? 'rgb(240,240,240)' : 'rgb(230,242,255)';
      lines.push(`  box ${colour} ${escapeMermaidText(d.domName(p.box))}`);
    }
    lines.push(`    participant ${p.id} as ${escapeMermaidText(p.label)}`);
  }
  if (box !== undefined) lines.push('  end');
  const span = (over: string[] | 'all'): string => {
    const ids = over === 'all' ? [ordered[0].id, ordered[ordered.length - 1].id] : over;
    return ids[0] === ids[ids.length - 1] ? ids[0] : `${ids[0]},${ids[ids.length - 1]}`;
  };
  let indent = '  ';
  for (const s of kept) {
    switch (s.type) {
      case 'msg':
        lines.push(`${indent}${s.from}${s.arrow}${s.to}: ${escapeMermaidText(s.text)}`);
        break;
      case 'note':
        lines.push(`${indent}Note over ${span(s.over)}: ${escapeMermaidText(s.text)}`);
        break;
      case 'rect-open':
        lines.push(`${indent}rect rgb(255,228,225)`);
        indent += '  ';
        break;
      case 'rect-close':
        indent = indent.slice(2);
        lines.push(`${indent}end`);
        break;
    }
  }
  if (omitted > 0) lines.push(`${indent}Note over ${span('all')}: ${omitted} more steps not shown`);
  return `${lines.join('\n')}\n`;
}
