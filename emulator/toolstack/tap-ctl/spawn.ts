/**
 * tap-ctl-spawn.c: fork/exec tapdisk2 with its stdout on a pipe, wait for the (daemonizing) child to
 * exit, then read the control socket path `/var/run/blktap-control/ctl<id>` it printed. Returns the id
 * or a negative value. tap_ctl_get_pid() asks a tapdisk for its pid (PID, 2 s).
 *
 * Contract with the tapdisk2 program (emulator/tapdisk/server.ts): it listens on `ctl<its pid>` and only
 * then prints that path as its first stdout line, so the id read here is always connectable; a tapdisk2
 * that fails before (bad arguments) prints an error and exits 1.
 */
import { BLKTAP2_CONTROL_DIR, BLKTAP2_CONTROL_SOCKET } from '../../../drivers/blktap/abi.js';
import { isKernelError } from '../../kernel/errno.js';
import { SIGNALS } from '../../kernel/signals.js';
import { requestMessage } from '../../tapdisk/message.js';
import { eprintf, errno, errnoOf, type TapCtlContext, TapCtlTimeout, traceTapCtl } from './context.js';
import { tapCtlConnectSendAndReceive } from './ipc.js';

/**
 * __tap_ctl_spawn + tap_ctl_wait + reading the pipe: the child runs detached (tapdisk2 daemonizes), and
 * tap-ctl reads its stdout until the first line arrives or the child exits without one; an exit before
 * printing is reported as tap_ctl_wait() does (status → -code, signal → -EINTR).
 * Simplification: the pipe is the child's line log (Process.readOutput blocks until a line or exit).
 */
async function spawnAndRead(
  ctx: TapCtlContext,
): Promise<{ err: number; child: number; stdout: readonly string[] }> {
  let pid: number;
  try {
    pid = await ctx.proc.spawn(ctx.tapdiskProgram, [], { name: 'tapdisk2', daemonize: true });
  } catch (e) {
    if (!isKernelError(e, 'ENOENT')) return { err: -errnoOf(ctx, e), child: -1, stdout: [] };
    // The fork succeeded in C; execlp failed in the child, which logs and exits 1.
    eprintf(ctx, '__tap_ctl_spawn', 'exec failed');
    return { err: -1, child: -1, stdout: [] };
  }
  const child = ctx.kernel.processes.get(pid);
  traceTapCtl(ctx, 'spawn', { child: pid, program: ctx.tapdiskProgram });
  if (child === undefined) return { err: -errno('ECHILD'), child: pid, stdout: [] };
  // fscanf() on the pipe: blocks until the daemon prints its socket path or the pipe reaches EOF.
  let stdout: readonly string[];
  try {
    stdout = await ctx.proc.readOutput(pid, {
      what: `tap-ctl spawn: socket path on the stdout of tapdisk2[${pid}]`,
    });
  } catch (e) {
    return { err: -errnoOf(ctx, e), child: pid, stdout: [] };
  }
  if (stdout.length > 0) return { err: 0, child: pid, stdout };
  const status = child.exitStatus!;
  if (status.signal !== undefined) {
    eprintf(ctx, 'tap_ctl_wait', `tapdisk2[${pid}] killed by signal ${SIGNALS[status.signal]}`);
    return { err: -errno('EINTR'), child: pid, stdout: [] };
  }
  const code = status.code ?? 0;
  if (code) eprintf(ctx, 'tap_ctl_wait', `tapdisk2[${pid}] failed, status ${code}`);
  return { err: -code, child: pid, stdout: [] };
}

/** fscanf(f, "/var/run/blktap-control/ctl%d", &id) over what the child printed. */
export function parseSpawnedId(stdout: readonly string[]): number | undefined {
  const text = stdout.join('\n');
  const prefix = `${BLKTAP2_CONTROL_DIR}/${BLKTAP2_CONTROL_SOCKET}`;
  const start = text.replace(/^\s+/, '');
  if (!start.startsWith(prefix)) return undefined;
  const m = /^\s*([+-]?\d+)/.exec(start.slice(prefix.length));
  if (!m) return undefined;
  const id = Number(m[1]);
  return Number.isSafeInteger(id) && Math.abs(id) <= 0x7fffffff ? id : undefined;
}

/** tap_ctl_spawn(): the new tapdisk's id (the number in `ctl<id>`), or a negative value. */
export async function tapCtlSpawn(ctx: TapCtlContext): Promise<number> {
  const { err, child, stdout } = await spawnAndRead(ctx);
  if (err) return err;
  let id = parseSpawnedId(stdout);
  if (id === undefined) {
    ctx.errno = errno('EINVAL');
    eprintf(ctx, 'tap_ctl_get_child_id', `parsing id failed: ${ctx.errno}`);
    id = -1;
  }
  if (id < 0) eprintf(ctx, 'tap_ctl_spawn', `get_id failed, child ${child} err ${ctx.errno}`);
  return id;
}

/** tap_ctl_get_pid(): u.tapdisk_pid of the reply (its type is not checked), or the IPC error. */
export async function tapCtlGetPid(ctx: TapCtlContext, id: number): Promise<number> {
  const r = await tapCtlConnectSendAndReceive(ctx, id, requestMessage('PID', 0), TapCtlTimeout.PID);
  if (r.err) return r.err;
  // A reply of another type is read through the union in C; only a PID body carries a pid here.
  return r.message?.body.kind === 'pid' ? r.message.body.pid : 0;
}
