/**
 * The `tap-ctl` command (tap-ctl.c main and the tap_cli_* functions) run inside a process of the kernel
 * model: argument parsing by `parseTapCtlArgs`, tap_ctl_check() before every real command, the library
 * call, and exactly what the tool prints. The exit code is main()'s return value (|ret|, except a
 * failed check whose negative value is returned as is), truncated to 8 bits by exit().
 */
import { ERRNO, type ErrnoName, strerror } from '../../kernel/errno.js';
import type { Kernel } from '../../kernel/kernel.js';
import type { Process } from '../../kernel/process.js';
import { parseTapCtlArgs, type TapCtlCommand, type TapCtlVariant } from '../tap-ctl-args.js';
import { formatTapList, NO_FILTER, type TapListEntry, type TapListFilter } from '../tap-ctl-list.js';
import { tapCtlAllocate } from './allocate.js';
import { tapCtlAttach } from './attach.js';
import { tapCtlCheck } from './check.js';
import { tapCtlClose } from './close.js';
import { type TapCtlContext, tapCtlContext } from './context.js';
import { tapCtlCreate } from './create.js';
import { tapCtlDestroy } from './destroy.js';
import { tapCtlDetach } from './detach.js';
import { tapCtlFree } from './free.js';
import { tapCtlList, tapCtlListPid } from './list.js';
import { tapCtlBlkMajor } from './major.js';
import { tapCtlOpen } from './open.js';
import { tapCtlPause } from './pause.js';
import { tapCtlSpawn } from './spawn.js';
import { tapCtlStats } from './stats.js';
import { tapCtlUnpause } from './unpause.js';

export interface TapCtlRunOptions {
  variant: TapCtlVariant;
  /** isatty(STDOUT_FILENO): rows for a terminal, key=value pairs for a pipe. */
  tty: boolean;
  /** The kernel of the process (procfs tables, the spawned tapdisk's stdout). */
  kernel: Kernel;
  tapdiskProgram?: string;
  /** Lines written to stderr; by default they go to the process output like a terminal shows them. */
  stderr?: (line: string) => void;
}

const EINVAL = ERRNO.EINVAL;

/** Runs `tap-ctl <argv...>` (argv without the program name) in `proc`; returns the exit status. */
export async function runTapCtl(
  proc: Process,
  argv: readonly string[],
  options: TapCtlRunOptions,
): Promise<number> {
  const ctx = tapCtlContext(proc, options.kernel, {
    variant: options.variant,
    ...(options.tapdiskProgram === undefined ? {} : { tapdiskProgram: options.tapdiskProgram }),
  });
  const stdout = (text: string) => {
    for (const line of splitLines(text)) proc.print(line);
  };
  const stderr = (text: string) => {
    for (const line of splitLines(text)) {
      options.kernel.env.trace.emit('proc', 'stderr', { pid: proc.pid, line });
      if (options.stderr) options.stderr(line);
      else proc.print(line);
    }
  };

  const parsed = parseTapCtlArgs(argv, options.variant);
  if (parsed.environmentChecked) {
    const check = await tapCtlCheck(ctx);
    if (check.err) {
      stdout(`${check.message}\n`);
      return check.err & 0xff;
    }
  }
  if (parsed.kind === 'exit') {
    if (parsed.onlyIfListSucceeds) {
      // Xen's tap_cli_list lists before it looks at its options.
      const listing = await tapCtlList(ctx);
      if (listing.err) return finish(-listing.err);
    }
    stdout(parsed.stdout);
    stderr(parsed.stderr);
    return parsed.code & 0xff;
  }
  const ret = await runCommand(ctx, parsed.command, options, stdout);
  return finish(ret);

  function finish(r: number): number {
    if (options.variant === 'xapi' && r !== 0) stderr(`${strerrorOf(Math.abs(r))}\n`);
    return (r >= 0 ? r : -r) & 0xff;
  }
}

async function runCommand(
  ctx: TapCtlContext,
  cmd: TapCtlCommand,
  options: TapCtlRunOptions,
  stdout: (text: string) => void,
): Promise<number> {
  const xapi = options.variant === 'xapi';
  switch (cmd.name) {
    case 'list': {
      const listing = xapi && cmd.pid !== -1 ? await tapCtlListPid(ctx, cmd.pid) : await tapCtlList(ctx);
      if (listing.err) return -listing.err;
      const filter: TapListFilter = {
        ...NO_FILTER,
        pid: cmd.pid,
        minor: cmd.minor,
        type: cmd.type,
        file: cmd.file,
      };
      // Xen drops rows without a type (path) under -t (-f); xapi lets them through.
      const entries = xapi ? listing.entries : listing.entries.filter((e) => strictMatch(e, filter));
      stdout(formatTapList(entries, { variant: options.variant, tty: options.tty, filter }));
      return 0;
    }
    case 'allocate': {
      const a = await tapCtlAllocate(ctx, cmd.devname);
      if (!a.err) stdout(`${a.devname}\n`);
      return a.err;
    }
    case 'free':
      return tapCtlFree(ctx, cmd.minor);
    case 'create': {
      if (hasXapiOpenFlags(cmd) || cmd.cgroupSlice !== null) {
        throw new Error(
          'not implemented: xapi create options beyond -a/-d (the Xen message codec has no such flags)',
        );
      }
      const c = await tapCtlCreate(ctx, cmd.args, cmd.devname);
      if (!c.err) stdout(`${c.devname}\n`);
      return c.err;
    }
    case 'destroy':
      notXapiTimeout(cmd.timeoutSeconds);
      return tapCtlDestroy(ctx, cmd.pid, cmd.minor);
    case 'spawn': {
      if (cmd.cgroupSlice !== null) throw new Error('not implemented: xapi spawn -c <cgroup-slice>');
      const id = await tapCtlSpawn(ctx);
      if (id < 0) {
        if (xapi) return id;
        stdout(`spawn failed: ${ctx.errno}\n`);
        return id;
      }
      stdout(!xapi || options.tty ? `tapdisk spawned with pid ${id}\n` : `${id}\n`);
      return 0;
    }
    case 'attach':
      return tapCtlAttach(ctx, cmd.pid, cmd.minor);
    case 'detach':
      return tapCtlDetach(ctx, cmd.pid, cmd.minor);
    case 'open': {
      if (hasXapiOpenFlags(cmd) || cmd.readKeyFromStdin) {
        throw new Error(
          'not implemented: xapi open options beyond -p/-m/-a (the Xen message codec has no such flags)',
        );
      }
      return tapCtlOpen(ctx, cmd.pid, cmd.minor, cmd.args);
    }
    case 'close':
      notXapiTimeout(cmd.timeoutSeconds);
      return tapCtlClose(ctx, cmd.pid, cmd.minor, cmd.force);
    case 'pause':
      notXapiTimeout(cmd.timeoutSeconds);
      return tapCtlPause(ctx, cmd.pid, cmd.minor);
    case 'unpause':
      if (cmd.secondary !== null || cmd.logPath !== null) {
        throw new Error('not implemented: xapi unpause -2/-c (the Xen message codec has no such flags)');
      }
      return tapCtlUnpause(ctx, cmd.pid, cmd.minor, cmd.args);
    case 'major': {
      if (cmd.charDevice) return EINVAL;
      const major = await tapCtlBlkMajor(ctx);
      if (major < 0) return -major;
      stdout(`${major}\n`);
      return 0;
    }
    case 'check': {
      const c = await tapCtlCheck(ctx);
      stdout(`${c.message}\n`);
      return c.err;
    }
    case 'stats':
      return tapCtlStats(ctx, cmd.pid, cmd.minor);
  }
}

/** The xapi image-open options (create and open share them) that the Xen message codec cannot carry. */
function hasXapiOpenFlags(cmd: {
  readonly: boolean;
  noODirect: boolean;
  addLocalCache: boolean;
  reuseParentMinor: number;
  secondary: string | null;
  standby: boolean;
  timeoutSeconds: number | null;
  logPath: string | null;
}): boolean {
  return (
    cmd.readonly ||
    cmd.noODirect ||
    cmd.addLocalCache ||
    cmd.reuseParentMinor !== -1 ||
    cmd.secondary !== null ||
    cmd.standby ||
    cmd.timeoutSeconds !== 0 ||
    cmd.logPath !== null
  );
}

function notXapiTimeout(timeoutSeconds: number | null): void {
  if (timeoutSeconds !== null) throw new Error('not implemented: xapi -t <seconds> operation timeouts');
}

/** Xen tap_cli_list: `type && (!entry->type || strcmp(...))` skips the row. */
function strictMatch(e: TapListEntry, f: TapListFilter): boolean {
  if (f.type !== null && (e.type === null || e.type !== f.type)) return false;
  if (f.file !== null && (e.path === null || e.path !== f.file)) return false;
  return true;
}

/** The lines of printed text: a trailing newline ends the last line; an empty string prints nothing. */
function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** glibc strerror(), "Unknown error N" for numbers it has no text for. */
export function strerrorOf(n: number): string {
  const name = (Object.keys(ERRNO) as ErrnoName[]).find((k) => ERRNO[k] === n);
  return name === undefined ? `Unknown error ${n}` : strerror(name);
}
