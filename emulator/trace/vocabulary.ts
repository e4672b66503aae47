/**
 * The catalogue of trace event kinds the teaching views understand (Perfetto JSON, Mermaid, ring lines),
 * with the fields each kind carries. Component authors emit these through `env.trace.emit(comp, kind,
 * fields)`; the writers check an event against its entry and, when it does not fit, still write it (as an
 * instant carrying the problem) — no event is ever dropped. Kinds not listed here are written as instants.
 *
 * Conventions shared by every entry:
 * - Ring indices are the free-running unsigned 32-bit values of ring.h (`req_prod`, `rsp_event` ...).
 * - A `flow` is a number unique per run among events of the same flow family (event channel, watch),
 *   chosen by the emitter of the first half and copied into the second half.
 * - Request ids are blkif ids (bigint or number) or any per-ring key that is not reused while in flight.
 */
import { XENBUS_STATE_NAMES } from '../../drivers/xenbus/state.js';
import type { TraceEvent } from '../runtime/engine.js';

export type FieldType =
  | 'number'
  | 'integer'
  | 'string'
  | 'boolean'
  | 'id'
  | 'integer[]'
  | 'array'
  | 'object'
  /** A XenbusState: its number or its name ("Connected"). */
  | 'xenbus-state';

export interface FieldSpec {
  readonly name: string;
  readonly type: FieldType;
  readonly required: boolean;
  readonly doc: string;
}

/** How the Perfetto writer renders a kind. */
export type PerfettoRole =
  | 'async-begin'
  | 'async-end'
  /** begin or end by the `phase` field ("start" / "end"). */
  | 'async-phase'
  | 'flow-out'
  | 'flow-in'
  | 'ring-counter'
  | 'grant-counter'
  | 'xenbus-state'
  | 'global-instant'
  | 'log'
  | 'instant';

/** The two families of flows: an arrow goes from a `flow-out` to the `flow-in` of the same family. */
export type FlowFamily = 'evtchn' | 'watch';

export interface KindSpec {
  readonly kind: string;
  /** Components expected to emit it (documentation; others may). */
  readonly emitters: readonly string[];
  /** When set, the entry describes the kind only as these components emit it (generic names: send, op). */
  readonly onlyComps?: readonly string[];
  readonly doc: string;
  readonly fields: readonly FieldSpec[];
  readonly perfetto: PerfettoRole;
  readonly flow?: FlowFamily;
  /** Extra rule beyond per-field types; returns a problem or undefined. */
  readonly check?: (fields: Record<string, unknown>) => string | undefined;
}

function f(name: string, type: FieldType, doc: string): FieldSpec {
  return { name, type, required: true, doc };
}
function opt(name: string, type: FieldType, doc: string): FieldSpec {
  return { name, type, required: false, doc };
}

/** Ring fields carry Xen's names (ring.h), as xen-ringwatch printed them. */
const RING_FIELDS: readonly FieldSpec[] = [
  f('ring', 'string', 'ring name, e.g. "vbd-1-51712" (backend) or "xvda" (frontend)'),
  f('req_prod', 'integer', 'shared req_prod'),
  f('req_event', 'integer', 'shared req_event'),
  f('rsp_prod', 'integer', 'shared rsp_prod'),
  f('rsp_event', 'integer', 'shared rsp_event'),
  opt('nr_ents', 'integer', 'number of entries, a power of two'),
  opt('req_cons', 'integer', 'back: private req_cons'),
  opt('rsp_prod_pvt', 'integer', 'back: private rsp_prod_pvt'),
  opt('req_prod_pvt', 'integer', 'front: private req_prod_pvt'),
  opt('rsp_cons', 'integer', 'front: private rsp_cons'),
  opt('inflight', 'integer', 'requests the emitter has taken and not answered'),
];

const RING_INDEX_FIELDS = [
  'req_prod',
  'req_event',
  'rsp_prod',
  'rsp_event',
  'req_cons',
  'rsp_prod_pvt',
  'req_prod_pvt',
  'rsp_cons',
];

/** Requests are keyed by ring (or, in blkfront, disk) and id. */
function ringOrDisk(fl: Record<string, unknown>): string | undefined {
  if (typeof fl.ring === 'string' || typeof fl.disk === 'string') return undefined;
  return 'needs ring or disk (a string)';
}

export const TRACE_KINDS: readonly KindSpec[] = [
  {
    kind: 'request-start',
    emitters: ['blkfront', 'blktap', 'tapdisk'],
    doc: 'a block request enters this component (blkfront: put on the ring)',
    fields: [
      opt('ring', 'string', 'ring the request travels on (or disk)'),
      opt('disk', 'string', 'disk name, e.g. "xvda" (or ring)'),
      f('id', 'id', 'request id, unique on that ring while in flight'),
      f('op', 'string', 'read, write, flush, discard ...'),
      opt('sector', 'id', 'first sector'),
      opt('nseg', 'integer', 'number of segments'),
    ],
    perfetto: 'async-begin',
    check: ringOrDisk,
  },
  {
    kind: 'request-end',
    emitters: ['blkfront', 'blktap', 'tapdisk'],
    doc: 'the request leaves this component (response consumed, completion delivered)',
    fields: [
      opt('ring', 'string', 'as in request-start'),
      opt('disk', 'string', 'as in request-start'),
      f('id', 'id', 'as in request-start'),
      opt('status', 'number', 'BLKIF_RSP_OKAY 0, BLKIF_RSP_ERROR -1, BLKIF_RSP_EOPNOTSUPP -2, or -errno'),
    ],
    perfetto: 'async-end',
    check: ringOrDisk,
  },
  {
    kind: 'blk-req',
    emitters: ['blkback'],
    doc: 'blkback took a request off the ring (phase "start") or answered it (phase "end")',
    fields: [
      f('phase', 'string', '"start" or "end"'),
      f('ring', 'string', 'backend ring label, e.g. "vbd-1-51712"'),
      f('id', 'id', 'blkif request id'),
      opt('op', 'string', 'operation'),
      opt('status', 'number', 'BLKIF_RSP_* on "end"'),
    ],
    perfetto: 'async-phase',
    check: (fl) =>
      fl.phase === 'start' || fl.phase === 'end' ? undefined : `phase must be "start" or "end"`,
  },
  {
    kind: 'evtchn-send',
    emitters: ['hypervisor', 'evtchn'],
    doc: 'EVTCHNOP_send (or a notify_remote_via_irq) from this task; starts a flow',
    fields: [
      f('port', 'integer', 'local port'),
      f('flow', 'integer', 'flow id, copied into the upcall that delivers it'),
      opt('remoteDom', 'integer', 'peer domain'),
      opt('remotePort', 'integer', 'peer port'),
    ],
    perfetto: 'flow-out',
    flow: 'evtchn',
  },
  {
    kind: 'evtchn-upcall',
    emitters: ['evtchn', 'blkfront', 'blkback', 'xenbus'],
    doc: 'the handler bound to a port runs; ends the flows of every send it delivers (sends coalesce)',
    fields: [
      f('port', 'integer', 'local port'),
      opt('flow', 'integer', 'the send delivered'),
      opt('flows', 'integer[]', 'all sends delivered by this upcall, when several coalesced'),
    ],
    perfetto: 'flow-in',
    flow: 'evtchn',
    check: (fl) => (fl.flow === undefined && fl.flows === undefined ? 'needs flow or flows' : undefined),
  },
  {
    kind: 'watch-fire',
    emitters: ['xenstored'],
    doc: 'a write (or rm, or an introduce) matched a watch; the event is queued for the watcher; starts a flow',
    fields: [
      f('path', 'string', 'the path that changed (as sent in the WATCH_EVENT)'),
      f('token', 'string', 'the watch token'),
      f('flow', 'integer', 'flow id, copied into the callback'),
      opt('watcher', 'integer', 'domid of the connection that owns the watch'),
    ],
    perfetto: 'flow-out',
    flow: 'watch',
  },
  {
    kind: 'watch-callback',
    emitters: ['xenbus', 'xenwatch'],
    doc: 'xenwatch runs the callback for a watch event; ends the flow',
    fields: [
      f('path', 'string', 'the path in the event'),
      f('token', 'string', 'the watch token'),
      f('flow', 'integer', 'as in watch-fire'),
    ],
    perfetto: 'flow-in',
    flow: 'watch',
  },
  {
    kind: 'ring',
    emitters: ['blkback', 'blkfront', 'tapdisk'],
    doc: 'the indices of one ring after a push or a consume; feeds occupancy counters and ring lines',
    fields: RING_FIELDS,
    perfetto: 'ring-counter',
    check: (fl) => {
      const n = fl.nr_ents as number | undefined;
      if (n !== undefined && (n < 1 || (n & (n - 1)) !== 0))
        return `nr_ents must be a power of two, got ${n}`;
      for (const k of RING_INDEX_FIELDS) {
        const v = fl[k];
        if (v !== undefined && ((v as number) < 0 || (v as number) > 0xffffffff)) {
          return `${k} must be an unsigned 32-bit index, got ${v}`;
        }
      }
      return undefined;
    },
  },
  {
    kind: 'grant-map',
    emitters: ['blkback', 'tapdisk', 'hypervisor'],
    doc: 'grants mapped by this domain (GNTTABOP_map_grant_ref, one or a batch)',
    fields: [
      opt('mapped', 'integer', 'grants this domain has mapped after the operation (preferred)'),
      opt('count', 'integer', 'how many this operation mapped (default 1) when mapped is absent'),
      opt('ref', 'integer', 'grant reference'),
      opt('granter', 'integer', 'domain that granted'),
    ],
    perfetto: 'grant-counter',
  },
  {
    kind: 'grant-unmap',
    emitters: ['blkback', 'tapdisk', 'hypervisor'],
    doc: 'grants unmapped by this domain',
    fields: [
      opt('mapped', 'integer', 'grants still mapped after the operation (preferred)'),
      opt('count', 'integer', 'how many this operation unmapped (default 1) when mapped is absent'),
      opt('handle', 'integer', 'maptrack handle'),
    ],
    perfetto: 'grant-counter',
  },
  {
    kind: 'xenbus-state',
    emitters: ['xenbus', 'blkfront', 'blkback'],
    doc: 'xenbus_switch_state wrote a new XenbusState (xen/include/public/io/xenbus.h) to <path>/state',
    fields: [
      f('path', 'string', 'device node, e.g. "device/vbd/51712" or "backend/vbd/1/51712"'),
      f('from', 'xenbus-state', 'previous XenbusState (number or name)'),
      f('to', 'xenbus-state', 'new XenbusState (number or name)'),
    ],
    perfetto: 'xenbus-state',
  },
  {
    kind: 'xs-request',
    emitters: ['xenbus', 'libxl', 'xenstored'],
    doc: 'a xenstore request (xsd_sockmsg type name: WRITE, RM, MKDIR, READ, TRANSACTION_END ...)',
    fields: [
      f('type', 'string', 'XS_* name without the prefix'),
      opt('path', 'string', 'path argument'),
      opt('value', 'string', 'WRITE value'),
      opt('tx', 'integer', 'transaction id (0 = none)'),
    ],
    perfetto: 'instant',
  },
  {
    kind: 'xs-reply',
    emitters: ['xenbus', 'libxl', 'xenstored'],
    doc: 'the reply to an xs-request',
    fields: [
      f('type', 'string', 'XS_* name of the request'),
      opt('error', 'string', 'E* name when an ERROR'),
    ],
    perfetto: 'instant',
  },
  {
    kind: 'stall',
    emitters: ['runtime'],
    doc: 'nothing can progress except by a timeout; chain of waits (see StallReport)',
    fields: [
      f('chain', 'array', 'StallLink[]: holder, waitsFor, deadline?, heldBy?'),
      f('cycle', 'boolean', 'the chain returns to a holder already in it'),
      opt('brokenBy', 'object', '{ timer, task, at } the timeout that breaks it'),
    ],
    perfetto: 'global-instant',
  },
  {
    kind: 'stall-end',
    emitters: ['runtime'],
    doc: 'the stall ended',
    fields: [
      f('by', 'string', 'timeout, wake or run-end'),
      opt('task', 'string', 'task whose wake or timeout ended it'),
      opt('duration', 'number', 'ms the stall lasted'),
    ],
    perfetto: 'global-instant',
  },
  {
    kind: 'deadlock',
    emitters: ['runtime'],
    doc: 'nothing can progress and no timer will: the run ends',
    fields: [f('chain', 'array', 'StallLink[]'), f('cycle', 'boolean', 'the chain is a cycle')],
    perfetto: 'global-instant',
  },
  {
    kind: 'log',
    emitters: ['runtime (env.trace.log)', 'libxl'],
    doc: 'a kernel log line (field msg) or a libxl log line (field message)',
    fields: [
      opt('msg', 'string', 'printk text'),
      opt('message', 'string', 'libxl text'),
      opt('level', 'string', ''),
    ],
    perfetto: 'log',
    check: (fl) => (fl.msg === undefined && fl.message === undefined ? 'needs msg or message' : undefined),
  },
  {
    kind: 'send',
    emitters: ['tap-ctl'],
    onlyComps: ['tap-ctl'],
    doc: 'tap-ctl writes a control message to a tapdisk',
    fields: [f('to', 'integer', 'tapdisk pid'), f('type', 'string', 'message type (ATTACH, DETACH ...)')],
    perfetto: 'instant',
  },
  {
    kind: 'receive',
    emitters: ['tap-ctl'],
    onlyComps: ['tap-ctl'],
    doc: 'tap-ctl read a reply from a tapdisk',
    fields: [
      f('from', 'integer', 'tapdisk pid'),
      opt('type', 'string', 'reply type'),
      opt('undecodable', 'string', ''),
    ],
    perfetto: 'instant',
  },
  {
    kind: 'timeout',
    emitters: ['tap-ctl'],
    onlyComps: ['tap-ctl'],
    doc: "tap-ctl's select() gave up waiting for a reply",
    fields: [
      f('from', 'integer', 'tapdisk pid'),
      f('waited', 'string', 'reply awaited'),
      f('seconds', 'number', 'select timeout'),
    ],
    perfetto: 'instant',
  },
  {
    kind: 'op',
    emitters: ['libxl'],
    onlyComps: ['libxl'],
    doc: 'a libxl control-path step; the first word says what (xs_*, tap_ctl_*, tap-ctl, wait, hotplug)',
    fields: [f('op', 'string', 'the step, e.g. "tap_ctl_destroy 201 0"')],
    perfetto: 'instant',
  },
];

const BY_KIND = new Map<string, KindSpec[]>();
for (const k of TRACE_KINDS) BY_KIND.set(k.kind, [...(BY_KIND.get(k.kind) ?? []), k]);

/** The catalogue entry for a kind as `comp` emits it, or undefined for kinds written as plain instants. */
export function kindSpec(kind: string, comp: string): KindSpec | undefined {
  return BY_KIND.get(kind)?.find((k) => k.onlyComps === undefined || k.onlyComps.includes(comp));
}

function fitsType(v: unknown, type: FieldType): boolean {
  switch (type) {
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'integer':
      return typeof v === 'number' && Number.isSafeInteger(v);
    case 'string':
      return typeof v === 'string';
    case 'boolean':
      return typeof v === 'boolean';
    case 'id':
      return (
        typeof v === 'bigint' || typeof v === 'string' || (typeof v === 'number' && Number.isSafeInteger(v))
      );
    case 'integer[]':
      return Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isSafeInteger(x));
    case 'array':
      return Array.isArray(v);
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'xenbus-state':
      return xenbusStateValue(v) !== undefined;
  }
}

function describeValue(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === undefined) return 'undefined';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/**
 * Why an event does not fit its catalogue entry ("field id: expected id, got undefined"), or undefined
 * when it fits or its kind is not catalogued.
 */
export function checkEvent(e: TraceEvent): string | undefined {
  const spec = kindSpec(e.kind, e.comp);
  if (spec === undefined) return undefined;
  const fields = e.fields ?? {};
  for (const field of spec.fields) {
    const v = fields[field.name];
    if (v === undefined) {
      if (field.required) return `field ${field.name}: missing (${e.comp} ${e.kind})`;
      continue;
    }
    if (!fitsType(v, field.type)) {
      return `field ${field.name}: expected ${field.type}, got ${describeValue(v)} (${e.comp} ${e.kind})`;
    }
  }
  const extra = spec.check?.(fields);
  return extra === undefined ? undefined : `${extra} (${e.comp} ${e.kind})`;
}

/** The XenbusState number of a number or a name ("Closing" -> 5), or undefined. */
export function xenbusStateValue(value: unknown): number | undefined {
  if (typeof value === 'number') {
    return Number.isInteger(value) && value >= 0 && value < XENBUS_STATE_NAMES.length ? value : undefined;
  }
  if (typeof value === 'string') {
    const i = (XENBUS_STATE_NAMES as readonly string[]).indexOf(value);
    return i < 0 ? undefined : i;
  }
  return undefined;
}

/** "Connected(4)" for 4 or "Connected"; the value as text when it is not a XenbusState. */
export function xenbusStateLabel(value: unknown): string {
  const n = xenbusStateValue(value);
  return n === undefined ? String(value) : `${XENBUS_STATE_NAMES[n]}(${n})`;
}
