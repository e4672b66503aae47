/**
 * `tap-ctl list`: the three-way join of sysfs minors, running tapdisks and each tapdisk's LIST reply
 * (`tap_ctl_list` in tap-ctl-list.c), the `-p -m -t -f` filters and the exact output lines of
 * `tap_ctl_list_row` (terminal) and `tap_ctl_list_dict` (pipe) in tap-ctl.c, for Xen's in-tree copy
 * (`tools/blktap2/control`) and xapi-project/blktap.
 *
 * The IPC (PID and LIST requests with their 2 s / 10 s timeouts) is the caller's job; this module takes
 * its results as data.
 */

import { type TapdiskMessage, TapdiskMessageType } from '../tapdisk/message.js';

export type TapCtlVariant = 'xen' | 'xapi';

/** tap_list_t: -1 marks a missing number, null a missing string. */
export interface TapListEntry {
  pid: number;
  minor: number;
  state: number;
  type: string | null;
  path: string | null;
}

/** One VBD of a LIST reply (`u.list`): path '' when the VBD has no image open. */
export interface VbdListing {
  minor: number;
  state: number;
  path: string;
}

/** Why an IPC exchange with a tapdisk failed; `err` is a negative errno. */
export interface IpcFailure {
  error: number;
  /** A failed read is reported as -EPROTO by _tap_ctl_list_tapdisk, whatever the cause. */
  stage: 'connect' | 'write' | 'read';
}

/** What tap-ctl learnt about one `ctl<id>` socket. */
export interface TapdiskProbe {
  /** The number in the socket name `ctl<id>`. */
  socketId: number;
  /** The PID reply, or how it failed (the tapdisk is then left out of the listing altogether). */
  pid: number | IpcFailure;
  /**
   * The LIST reply in the order tapdisk sent it, or how it failed. xapi sends LIST to `ctl<pid>`
   * (the PID reply), Xen to `ctl<socketId>`; the caller addresses it accordingly.
   */
  vbds: readonly VbdListing[] | IpcFailure;
}

export type TapListResult = { ok: true; entries: TapListEntry[] } | { ok: false; err: number };

export const EINVAL = 22;
export const EPROTO = 71;

function isFailure(x: unknown): x is IpcFailure {
  return typeof x === 'object' && x !== null && 'error' in x;
}

function failureErrno(f: IpcFailure): number {
  return f.stage === 'read' ? -EPROTO : f.error;
}

/** _parse_params(): split at the first ':'; no colon is -EINVAL. */
function parseParams(params: string): { type: string; path: string } | undefined {
  const colon = params.indexOf(':');
  if (colon < 0) return undefined;
  return { type: params.slice(0, colon), path: params.slice(colon + 1) };
}

/**
 * Collects a LIST reply stream as the client loop does: stop at the first message with count 0.
 * A message of another type or a stream that ends early is a read failure (-EPROTO).
 */
export function vbdsFromListReplies(messages: readonly TapdiskMessage[]): VbdListing[] | IpcFailure {
  const out: VbdListing[] = [];
  for (const m of messages) {
    if (m.type !== TapdiskMessageType.LIST_RSP || m.body.kind !== 'list') {
      // tap-ctl does not check the type; a non-LIST body would be read through the union. We refuse it.
      return { error: -EPROTO, stage: 'read' };
    }
    if (m.body.count === 0) return out;
    out.push({ minor: m.body.minor, state: m.body.state, path: m.body.path });
  }
  return { error: -EPROTO, stage: 'read' };
}

/** sysfs `blktap<N>` entries become minors through glob (sorted by strcmp) then sscanf. */
function globOrder<T>(items: readonly T[], name: (t: T) => string): T[] {
  return [...items].sort((a, b) => {
    const x = name(a);
    const y = name(b);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/**
 * tap_ctl_list(): the join.
 * - Tapdisks whose PID request failed are left out.
 * - A tapdisk with no VBD gives a pid-only row ("orphaned tapdisk"). xapi also gives one when LIST
 *   failed; Xen fails the whole listing instead.
 * - Each VBD gives a row; its minor is struck off the sysfs list. VBD rows come out in reverse reply
 *   order (both versions build the list with list_add).
 * - Remaining sysfs minors give minor-only rows ("orphaned minor").
 * Order: Xen sorts tapdisks by id and minors numerically; xapi keeps glob (strcmp) order.
 */
export function joinTapdiskList(
  sysfsMinors: readonly number[],
  tapdisks: readonly TapdiskProbe[],
  variant: TapCtlVariant,
): TapListResult {
  const live = tapdisks.filter((t) => !isFailure(t.pid));
  const ordered =
    variant === 'xen'
      ? [...live].sort((a, b) => a.socketId - b.socketId)
      : globOrder(live, (t) => `ctl${t.socketId}`);
  const minors =
    variant === 'xen' ? [...sysfsMinors].sort((a, b) => a - b) : globOrder(sysfsMinors, (m) => `blktap${m}`);
  const remaining: (number | undefined)[] = [...minors];
  const entries: TapListEntry[] = [];

  for (const t of ordered) {
    const pid = t.pid as number;
    if (isFailure(t.vbds)) {
      if (variant === 'xen') return { ok: false, err: failureErrno(t.vbds) };
      entries.push({ pid, minor: -1, state: -1, type: null, path: null });
      continue;
    }
    if (t.vbds.length === 0) {
      entries.push({ pid, minor: -1, state: -1, type: null, path: null });
      continue;
    }
    const rows: TapListEntry[] = [];
    let parseFailed = false;
    for (const v of [...t.vbds].reverse()) {
      let type: string | null = null;
      let path: string | null = null;
      if (v.path !== '') {
        const p = parseParams(v.path);
        if (!p) {
          if (variant === 'xen') return { ok: false, err: -EINVAL };
          parseFailed = true;
          break;
        }
        type = p.type;
        path = p.path;
      }
      rows.push({ pid, minor: v.minor, state: v.state, type, path });
    }
    if (parseFailed) {
      // xapi: the tapdisk's partial list is dropped and it is shown as if LIST had failed.
      entries.push({ pid, minor: -1, state: -1, type: null, path: null });
      continue;
    }
    for (const row of rows) {
      // Xen strikes off only when minor >= 0; xapi compares anyway, but sysfs minors are never negative.
      if (row.minor >= 0) {
        const at = remaining.indexOf(row.minor);
        if (at >= 0) remaining[at] = undefined;
      }
      entries.push(row);
    }
  }
  for (const m of remaining) {
    if (m !== undefined) entries.push({ pid: -1, minor: m, state: -1, type: null, path: null });
  }
  return { ok: true, entries };
}

/**
 * xapi `tap-ctl list -p <pid>` (tap_ctl_list_pid): only that tapdisk, no sysfs minors. `probe` is the
 * tapdisk at `ctl<pid>`, or undefined when there is none. A failed PID request lists nothing.
 */
export function listTapdiskByPid(probe: TapdiskProbe | undefined): TapListResult {
  if (!probe || isFailure(probe.pid)) return { ok: true, entries: [] };
  const pid = probe.pid;
  if (isFailure(probe.vbds) || probe.vbds.length === 0) {
    return { ok: true, entries: [{ pid, minor: -1, state: -1, type: null, path: null }] };
  }
  const rows: TapListEntry[] = [];
  for (const v of [...probe.vbds].reverse()) {
    if (v.path === '') {
      rows.push({ pid, minor: v.minor, state: v.state, type: null, path: null });
      continue;
    }
    const p = parseParams(v.path);
    if (!p) return { ok: true, entries: [{ pid, minor: -1, state: -1, type: null, path: null }] };
    rows.push({ pid, minor: v.minor, state: v.state, type: p.type, path: p.path });
  }
  return { ok: true, entries: rows };
}

/** The `-p -m -t -f` options: atoi'd numbers (-1 = unset) and strings (null = unset). */
export interface TapListFilter {
  pid: number;
  minor: number;
  type: string | null;
  file: string | null;
}

export const NO_FILTER: TapListFilter = { pid: -1, minor: -1, type: null, file: null };

/**
 * The filters of tap_cli_list. Note the asymmetry the C code has: a row without a type (or path)
 * passes a `-t` (or `-f`) filter, so orphan rows survive them.
 */
export function filterTapList(entries: readonly TapListEntry[], f: TapListFilter): TapListEntry[] {
  return entries.filter((e) => {
    if (f.minor >= 0 && e.minor !== f.minor) return false;
    if (f.pid >= 0 && e.pid !== f.pid) return false;
    if (f.type !== null && e.type !== null && e.type !== f.type) return false;
    if (f.file !== null && e.path !== null && e.path !== f.file) return false;
    return true;
  });
}

// --- printf ---------------------------------------------------------------------------------------------

/** `%Ns`: right-aligned in N columns, never truncated. */
function padLeft(s: string, width: number): string {
  return s.length >= width ? s : ' '.repeat(width - s.length) + s;
}

/** `%x` of a C int: two's complement for negatives. */
function hex(n: number): string {
  return (n >>> 0).toString(16);
}

/** `%#x`: 0x prefix, except for zero which prints as plain "0". */
function altHex(n: number): string {
  return n === 0 ? '0' : `0x${hex(n)}`;
}

/** tap_ctl_list_row / tap_cli_list_row: one terminal line, with its newline. */
export function formatTapListRow(e: TapListEntry, variant: TapCtlVariant): string {
  const pid = e.pid !== -1 ? String(e.pid) : '-';
  const minor = e.minor !== -1 ? String(e.minor) : '-';
  const state = e.state !== -1 ? (variant === 'xen' ? hex(e.state) : altHex(e.state)) : '-';
  const minorWidth = variant === 'xen' ? 2 : 4;
  return `${padLeft(pid, 8)} ${padLeft(minor, minorWidth)} ${padLeft(state, 4)} ${padLeft(e.type ?? '-', 10)} ${e.path ?? '-'}\n`;
}

/** tap_ctl_list_dict / tap_cli_list_dict: `key=value` pairs for scripts, missing ones omitted. */
export function formatTapListDict(e: TapListEntry, variant: TapCtlVariant): string {
  const parts: string[] = [];
  if (e.pid !== -1) parts.push(`pid=${e.pid}`);
  if (e.minor !== -1) parts.push(`minor=${e.minor}`);
  if (e.state !== -1) parts.push(`state=${variant === 'xen' ? String(e.state) : altHex(e.state)}`);
  if (e.type !== null && e.path !== null) parts.push(`args=${e.type}:${e.path}`);
  return `${parts.join(' ')}\n`;
}

/** The whole stdout of `tap-ctl list` for already joined entries. */
export function formatTapList(
  entries: readonly TapListEntry[],
  options: { variant: TapCtlVariant; tty: boolean; filter?: TapListFilter },
): string {
  const rows = filterTapList(entries, options.filter ?? NO_FILTER);
  const line = options.tty ? formatTapListRow : formatTapListDict;
  return rows.map((e) => line(e, options.variant)).join('');
}
