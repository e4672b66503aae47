/**
 * tap-ctl-list.c: glob the sysfs minors (`/sys/class/blktap2/blktap*`) and the tapdisk sockets
 * (`/var/run/blktap-control/ctl*`), ask each tapdisk its PID (2 s; a tapdisk that does not answer is
 * skipped) and then LIST (2 s per message), and join them with `joinTapdiskList`. tap_ctl_find() picks
 * the first entry of that list with the given type and path (libxl uses it to find a disk's tapdisk).
 *
 * Xen fails the whole listing at the first tapdisk whose LIST fails and sends LIST to `ctl<id>`; xapi
 * sends it to `ctl<pid>` and shows such a tapdisk as a pid-only row.
 * Simplification: xapi's own list timeouts are not modelled; both variants use Xen's 2 s.
 */
import {
  BLKTAP2_CONTROL_DIR,
  BLKTAP2_CONTROL_SOCKET,
  BLKTAP2_SYSFS_DIR,
} from '../../../drivers/blktap/abi.js';
import { requestMessage, TAPDISK_COOKIE_NONE, TapdiskMessageType } from '../../tapdisk/message.js';
import {
  type IpcFailure,
  joinTapdiskList,
  listTapdiskByPid,
  type TapdiskProbe,
  type TapListEntry,
  type VbdListing,
} from '../tap-ctl-list.js';
import { eprintf, errno, errnoOf, type TapCtlContext, TapCtlTimeout } from './context.js';
import { tapCtlConnectId, tapCtlReadMessage, tapCtlWriteMessage } from './ipc.js';
import { tapCtlGetPid } from './spawn.js';

export interface TapCtlListing {
  /** 0 or a negative errno (-EPROTO when a LIST reply could not be read). */
  err: number;
  entries: TapListEntry[];
  /** What each answering tapdisk said, by socket id (tap_list_t.id is the socket id, not the pid). */
  probes: TapdiskProbe[];
}

/** sscanf(path, "<prefix>%d"): the number after the prefix, or undefined. */
function scanNumber(path: string, prefix: string): number | undefined {
  if (!path.startsWith(prefix)) return undefined;
  const m = /^\s*([+-]?\d+)/.exec(path.slice(prefix.length));
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && Math.abs(n) <= 0x7fffffff ? n : undefined;
}

/** _tap_ctl_find_minors() */
async function findMinors(ctx: TapCtlContext): Promise<number[]> {
  const prefix = `${BLKTAP2_SYSFS_DIR}/blktap`;
  const out: number[] = [];
  for (const path of await ctx.proc.glob(`${prefix}*`)) {
    const minor = scanNumber(path, prefix);
    if (minor !== undefined) out.push(minor);
  }
  return out;
}

/** The ids in `ctl<id>` socket names, in glob order. */
async function findSocketIds(ctx: TapCtlContext): Promise<number[]> {
  const prefix = `${BLKTAP2_CONTROL_DIR}/${BLKTAP2_CONTROL_SOCKET}`;
  const out: number[] = [];
  for (const path of await ctx.proc.glob(`${prefix}*`)) {
    const id = scanNumber(path, prefix);
    if (id !== undefined) out.push(id);
  }
  return out;
}

/** _tap_ctl_list_tapdisk(): LIST (cookie -1) and the reply stream up to the count-0 terminator. */
export async function tapCtlListTapdisk(
  ctx: TapCtlContext,
  id: number,
): Promise<readonly VbdListing[] | IpcFailure> {
  const c = await tapCtlConnectId(ctx, id);
  if (c.err) return { error: c.err, stage: 'connect' };
  try {
    const werr = await tapCtlWriteMessage(
      ctx,
      c.fd,
      requestMessage('LIST', TAPDISK_COOKIE_NONE),
      TapCtlTimeout.LIST,
      id,
    );
    if (werr) return { error: werr, stage: 'write' };
    const vbds: VbdListing[] = [];
    for (;;) {
      const r = await tapCtlReadMessage(ctx, c.fd, TapCtlTimeout.LIST, { reply: 'LIST_RSP', peer: id });
      // C reads u.list whatever the type; a reply that is not a LIST body is refused here.
      if (r.err || r.message?.type !== TapdiskMessageType.LIST_RSP || r.message.body.kind !== 'list') {
        return { error: -errno('EPROTO'), stage: 'read' };
      }
      const b = r.message.body;
      if (b.count === 0) return vbds;
      vbds.push({ minor: b.minor, state: b.state, path: b.path });
    }
  } finally {
    await ctx.proc.close(c.fd);
  }
}

/** tap_ctl_list() (xapi: without `-p`) */
export async function tapCtlList(ctx: TapCtlContext): Promise<TapCtlListing> {
  let minors: number[];
  let ids: number[];
  try {
    minors = await findMinors(ctx);
    ids = await findSocketIds(ctx);
  } catch (e) {
    const n = errnoOf(ctx, e);
    eprintf(ctx, 'tap_ctl_list', `glob failed, err ${-n}`);
    return { err: -n, entries: [], probes: [] };
  }
  const probes: TapdiskProbe[] = [];
  for (const id of ids) {
    const pid = await tapCtlGetPid(ctx, id);
    if (pid < 0) continue;
    probes.push({ socketId: id, pid, vbds: [] });
  }
  if (ctx.variant === 'xen') probes.sort((a, b) => a.socketId - b.socketId);
  for (const probe of probes) {
    const target = ctx.variant === 'xen' ? probe.socketId : (probe.pid as number);
    probe.vbds = await tapCtlListTapdisk(ctx, target);
    if (ctx.variant === 'xen' && 'error' in probe.vbds) break;
  }
  // Xen stopped at the first failed LIST; the join returns that failure before reaching the rest.
  const joined = joinTapdiskList(minors, probes, ctx.variant);
  if (!joined.ok) return { err: joined.err, entries: [], probes };
  return { err: 0, entries: joined.entries, probes };
}

/** xapi tap_ctl_list_pid(): only the tapdisk at `ctl<pid>`, no sysfs minors. */
export async function tapCtlListPid(ctx: TapCtlContext, pid: number): Promise<TapCtlListing> {
  const ids = await findSocketIds(ctx);
  if (!ids.includes(pid)) return { err: 0, entries: [], probes: [] };
  const answered = await tapCtlGetPid(ctx, pid);
  if (answered < 0) return { err: 0, entries: [], probes: [] };
  const probe: TapdiskProbe = { socketId: pid, pid: answered, vbds: await tapCtlListTapdisk(ctx, pid) };
  const listed = listTapdiskByPid(probe);
  return { err: 0, entries: listed.ok ? listed.entries : [], probes: [probe] };
}

/** The tapdisk and VBD tap_ctl_find() returns: type and path are cleared as the C code does. */
export interface TapCtlFound {
  /** The socket id to address it with (tap_list_t.id). */
  id: number;
  pid: number;
  minor: number;
  state: number;
}

/** tap_ctl_find(type, path): 0 and the entry, -ENOENT when none matches, or the listing's error. */
export async function tapCtlFind(
  ctx: TapCtlContext,
  type: string | null,
  path: string | null,
): Promise<{ err: number; found?: TapCtlFound }> {
  const listing = await tapCtlList(ctx);
  if (listing.err) return { err: listing.err };
  for (const e of listing.entries) {
    if (type !== null && (e.type === null || e.type !== type)) continue;
    if (path !== null && (e.path === null || e.path !== path)) continue;
    const probe = listing.probes.find((p) => p.pid === e.pid);
    return { err: 0, found: { id: probe?.socketId ?? -1, pid: e.pid, minor: e.minor, state: e.state } };
  }
  return { err: -errno('ENOENT') };
}
