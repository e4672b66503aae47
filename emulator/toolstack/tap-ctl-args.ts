/**
 * `tap-ctl` argument parsing, as `main()` and the `tap_cli_*` functions of tap-ctl.c do it, for Xen's
 * in-tree copy (`tools/blktap2/control/tap-ctl.c`) and xapi-project/blktap (`control/tap-ctl.c`, 2016+).
 *
 * The result is either a typed command to run, or the process outcome parsing alone decides (usage
 * text, exit code). Faithful details: glibc getopt (permutation, clustered flags, its stderr messages
 * prefixed with the command name, which is argv[0] for the sub-parser), atoi() for numbers (so "-m x"
 * is minor 0 and "-m -1" counts as missing), `--debug` removed anywhere after the command, usage on
 * stdout for -h and on stderr for errors (except `attach -h`, which Xen and xapi print on stderr),
 * EINVAL (22) as exit code, and xapi's strerror line on stderr for every nonzero return.
 */

export type TapCtlVariant = 'xen' | 'xapi';

export const EINVAL = 22;

export type TapCtlCommand =
  | { name: 'list'; pid: number; minor: number; type: string | null; file: string | null }
  | { name: 'allocate'; devname: string | null }
  | { name: 'free'; minor: number }
  | {
      name: 'create';
      args: string;
      devname: string | null;
      /** xapi only; all false / null / -1 / 0 on Xen. */
      readonly: boolean;
      noODirect: boolean;
      addLocalCache: boolean;
      reuseParentMinor: number;
      secondary: string | null;
      standby: boolean;
      timeoutSeconds: number;
      cgroupSlice: string | null;
      logPath: string | null;
    }
  | { name: 'destroy'; pid: number; minor: number; timeoutSeconds: number | null }
  | { name: 'spawn'; cgroupSlice: string | null }
  | { name: 'attach'; pid: number; minor: number }
  | { name: 'detach'; pid: number; minor: number }
  | {
      name: 'open';
      pid: number;
      minor: number;
      args: string;
      readonly: boolean;
      noODirect: boolean;
      addLocalCache: boolean;
      reuseParentMinor: number;
      secondary: string | null;
      standby: boolean;
      timeoutSeconds: number;
      logPath: string | null;
      /** xapi -E: the key is read from stdin (32 or 64 bytes, else "Unsupported keysize..." exit 1). */
      readKeyFromStdin: boolean;
    }
  | { name: 'close'; pid: number; minor: number; force: boolean; timeoutSeconds: number | null }
  | { name: 'pause'; pid: number; minor: number; timeoutSeconds: number | null }
  | {
      name: 'unpause';
      pid: number;
      minor: number;
      args: string | null;
      secondary: string | null;
      logPath: string | null;
    }
  | {
      name: 'major' /** -c: the tool answers -EINVAL (exit 22) without printing anything on Xen. */;
      charDevice: boolean;
    }
  | { name: 'check' }
  | { name: 'stats'; pid: number; minor: number };

export type TapCtlCommandName = TapCtlCommand['name'];

export interface TapCtlExit {
  kind: 'exit';
  code: number;
  stdout: string;
  stderr: string;
  /**
   * Xen's `list` calls tap_ctl_list() before it parses its options: this outcome only happens when
   * listing succeeded; otherwise the tool exits with the listing's errno and prints nothing.
   */
  onlyIfListSucceeds?: true;
}

export interface TapCtlRun {
  kind: 'run';
  command: TapCtlCommand;
  /** `--debug` appeared (tap_ctl_debug = 1). */
  debug: boolean;
}

/**
 * For every real command main() runs tap_ctl_check() first; when it fails the tool prints its message
 * on stdout and exits with its code before any option is parsed. `environmentChecked` marks outcomes
 * that come after that check.
 */
export type TapCtlParse = (TapCtlRun | TapCtlExit) & { environmentChecked: boolean };

const XEN_COMMANDS: readonly TapCtlCommandName[] = [
  'list',
  'allocate',
  'free',
  'create',
  'destroy',
  'spawn',
  'attach',
  'detach',
  'open',
  'close',
  'pause',
  'unpause',
  'major',
  'check',
];
const XAPI_COMMANDS: readonly TapCtlCommandName[] = [
  'list',
  'allocate',
  'free',
  'create',
  'destroy',
  'spawn',
  'attach',
  'detach',
  'open',
  'close',
  'pause',
  'unpause',
  'stats',
  'major',
  'check',
];

export function tapCtlCommands(variant: TapCtlVariant): readonly TapCtlCommandName[] {
  return variant === 'xen' ? XEN_COMMANDS : XAPI_COMMANDS;
}

/** help(): printed on stdout, exit 0, for no command and for an unknown one. */
export function tapCtlHelp(variant: TapCtlVariant): string {
  return `usage: tap-ctl COMMAND [OPTIONS]\nCOMMAND := { ${tapCtlCommands(variant).join(' | ')} }\n`;
}

const CHECK_USAGE = 'usage: check\n(checks whether environment is suitable for tapdisk2)\n';

/** The usage texts, byte for byte (the stray '>' after allocate's is in both sources). */
export function tapCtlUsage(name: TapCtlCommandName, variant: TapCtlVariant): string {
  const xapi = variant === 'xapi';
  switch (name) {
    case 'list':
      return xapi
        ? 'usage: list [-h] [-p pid] [-m minor] [-t type] [-f file]\n\nLists tapdisks in the following format:\n' +
            '     pid minor state       type file\n'
        : 'usage: list [-h] [-p pid] [-m minor] [-t type] [-f file]\n';
    case 'allocate':
      return 'usage: allocate [-d device name]>\n';
    case 'free':
      return 'usage: free <-m minor>\n';
    case 'create':
      return xapi
        ? 'usage: create <-a type:/path/to/file> [-d device name] [-R readonly] ' +
            '[-e <minor> stack on existing tapdisk for the parent chain] ' +
            '[-r turn on read caching into leaf node] [-2 <path> ' +
            'use secondary image (in mirror mode if no -s)] [-s ' +
            'fail over to the secondary image on ENOSPC] ' +
            '[-t request timeout in seconds] [-D no O_DIRECT] ' +
            '[-c <cgroup-slice>] ' +
            '[-C <path/to/logfile> insert log layer to track changed blocks]\n'
        : 'usage: create <-a args> [-d device name]\n';
    case 'destroy':
      return 'usage: destroy <-p pid> <-m minor>\n';
    case 'spawn':
      return xapi ? 'usage: spawn [ -c <cgroup-slice> ]\n' : 'usage: spawn\n';
    case 'attach':
      return 'usage: attach <-p pid> <-m minor>\n';
    case 'detach':
      return 'usage: detach <-p pid> <-m minor>\n';
    case 'open':
      return xapi
        ? 'usage: open <-p pid> <-m minor> <-a type:/path/to/file> [-R readonly] ' +
            '[-e <minor> stack on existing tapdisk for the parent chain] ' +
            '[-r turn on read caching into leaf node] [-2 <path> ' +
            'use secondary image (in mirror mode if no -s)] [-s ' +
            'fail over to the secondary image on ENOSPC] ' +
            '[-t request timeout in seconds] [-D no O_DIRECT] ' +
            '[-C </path/to/logfile> insert log layer to track changed blocks] ' +
            '[-E read encryption key from stdin]\n'
        : 'usage: open <-p pid> <-m minor> <-a args>\n';
    case 'close':
      return 'usage: close <-p pid> <-m minor> [-f force]\n';
    case 'pause':
      return 'usage: pause <-p pid> <-m minor>\n';
    case 'unpause':
      return xapi
        ? 'usage: unpause <-p pid> <-m minor> [-a type:/path/to/file] [-2 secondary] ' +
            '[-c </path/to/logfile> insert log layer to track changed blocks]\n'
        : 'usage: unpause <-p pid> <-m minor> [-a args]\n';
    case 'major':
      return 'usage: major [-h]\n';
    case 'check':
      return CHECK_USAGE;
    case 'stats':
      return (
        'usage: stats <-p pid> <-m minor>\n\nPrints a Python dictionary with the VBD stats. The images are ' +
        'listed in reverse order (leaf to root)\n'
      );
  }
}

// --- libc ---------------------------------------------------------------------------------------------

/** glibc atoi(): (int)strtol(s, NULL, 10) - leading space, sign, digits; saturates at long, then truncates. */
export function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d+)/.exec(s);
  if (!m) return 0;
  let v = BigInt(m[2]);
  if (m[1] === '-') v = -v;
  const LONG_MAX = (1n << 63n) - 1n;
  const LONG_MIN = -(1n << 63n);
  if (v > LONG_MAX) v = LONG_MAX;
  if (v < LONG_MIN) v = LONG_MIN;
  return Number(BigInt.asIntN(32, v));
}

type GetoptEvent = { opt: string; arg: string | null } | { error: string };

/**
 * glibc getopt() with default permutation: walks argv left to right, skips (and keeps) operands, stops
 * at "--". Yields option events up to and including the first error, which is what every tap_cli_*
 * loop consumes (they `goto usage` on '?').
 */
function getopt(progName: string, argv: readonly string[], optstring: string): GetoptEvent[] {
  const events: GetoptEvent[] = [];
  const takesArg = (c: string): boolean | undefined => {
    if (c === ':') return undefined;
    const at = optstring.indexOf(c);
    if (at < 0) return undefined;
    return optstring[at + 1] === ':';
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') break;
    if (a.length < 2 || a[0] !== '-') continue;
    for (let j = 1; j < a.length; j++) {
      const c = a[j];
      const needs = takesArg(c);
      if (needs === undefined) {
        events.push({ error: `${progName}: invalid option -- '${c}'\n` });
        return events;
      }
      if (!needs) {
        events.push({ opt: c, arg: null });
        continue;
      }
      if (j + 1 < a.length) {
        events.push({ opt: c, arg: a.slice(j + 1) });
      } else if (i + 1 < argv.length) {
        events.push({ opt: c, arg: argv[++i] });
      } else {
        events.push({ error: `${progName}: option requires an argument -- '${c}'\n` });
        return events;
      }
      break;
    }
  }
  return events;
}

// --- main() -------------------------------------------------------------------------------------------

/**
 * Parses `tap-ctl <argv...>` (argv without the program name).
 */
export function parseTapCtlArgs(argv: readonly string[], variant: TapCtlVariant): TapCtlParse {
  if (argv.length < 1) {
    return { kind: 'exit', code: 0, stdout: tapCtlHelp(variant), stderr: '', environmentChecked: false };
  }
  const word = argv[0];
  // get_command() refuses names of 25 bytes or more before comparing; same outcome as unknown.
  const name = tapCtlCommands(variant).find((c) => c === word);
  if (!name || new TextEncoder().encode(word).length >= 25) {
    // Xen logs "invalid COMMAND" to syslog only; both then print help and exit 0.
    return { kind: 'exit', code: 0, stdout: tapCtlHelp(variant), stderr: '', environmentChecked: false };
  }
  const rest = argv.slice(1);
  const debug = rest.includes('--debug');
  const args = rest.filter((a) => a !== '--debug');
  const outcome = parseCommand(name, args, variant);
  if (outcome.kind === 'run') return { ...outcome, debug, environmentChecked: true };
  const exit: TapCtlExit = { ...outcome };
  if (variant === 'xapi' && exit.code !== 0) exit.stderr += `${strerror(exit.code)}\n`;
  if (variant === 'xen' && name === 'list') exit.onlyIfListSucceeds = true;
  return { ...exit, environmentChecked: true };
}

function strerror(code: number): string {
  return code === EINVAL
    ? 'Invalid argument'
    : code === 1
      ? 'Operation not permitted'
      : `Unknown error ${code}`;
}

type Outcome = { kind: 'run'; command: TapCtlCommand } | TapCtlExit;

function usageError(name: TapCtlCommandName, variant: TapCtlVariant, getoptMessage = ''): TapCtlExit {
  return { kind: 'exit', code: EINVAL, stdout: '', stderr: getoptMessage + tapCtlUsage(name, variant) };
}

function help(name: TapCtlCommandName, variant: TapCtlVariant): TapCtlExit {
  // attach's -h prints its usage on stderr in both sources.
  const text = tapCtlUsage(name, variant);
  return name === 'attach'
    ? { kind: 'exit', code: 0, stdout: '', stderr: text }
    : { kind: 'exit', code: 0, stdout: text, stderr: '' };
}

const OPTSTRINGS: Record<TapCtlVariant, Partial<Record<TapCtlCommandName, string>>> = {
  xen: {
    list: 'm:p:t:f:h',
    allocate: 'd:h',
    free: 'm:h',
    create: 'a:d:h',
    destroy: 'p:m:h',
    spawn: 'h',
    attach: 'p:m:h',
    detach: 'p:m:h',
    close: 'p:m:fh',
    pause: 'p:m:h',
    unpause: 'p:m:a:h',
    major: 'bch',
    open: 'a:m:p:h',
  },
  xapi: {
    list: 'm:p:t:f:h',
    allocate: 'd:h',
    free: 'm:h',
    create: 'a:c:RDd:e:r2:st:C:h',
    destroy: 'p:m:t:h',
    spawn: 'c:h',
    attach: 'p:m:h',
    detach: 'p:m:h',
    close: 'p:m:ft:h',
    pause: 'p:m:t:h',
    unpause: 'p:m:a:2:c:h',
    major: 'bch',
    open: 'a:RDm:p:e:r2:st:C:Eh',
    stats: 'p:m:h',
  },
};

function parseCommand(name: TapCtlCommandName, args: readonly string[], variant: TapCtlVariant): Outcome {
  if (name === 'check') {
    // tap_cli_check: any argument at all is a usage error (no getopt, so -h too).
    return args.length === 0 ? { kind: 'run', command: { name: 'check' } } : usageError('check', variant);
  }
  const optstring = OPTSTRINGS[variant][name];
  if (optstring === undefined) throw new Error(`tap-ctl: no option table for ${name} on ${variant}`);

  const o = {
    pid: -1,
    minor: -1,
    type: null as string | null,
    file: null as string | null,
    args: null as string | null,
    devname: null as string | null,
    force: false,
    timeout: null as number | null,
    requestTimeout: 0,
    readonly: false,
    noODirect: false,
    addLocalCache: false,
    reuseParentMinor: -1,
    secondary: null as string | null,
    standby: false,
    slice: null as string | null,
    logPath: null as string | null,
    key: false,
    chr: false,
  };

  for (const ev of getopt(name, args, optstring)) {
    if ('error' in ev) return usageError(name, variant, ev.error);
    const arg = ev.arg ?? '';
    switch (ev.opt) {
      case 'h':
        return help(name, variant);
      case 'p':
        o.pid = atoi(arg);
        break;
      case 'm':
        o.minor = atoi(arg);
        break;
      case 'a':
        o.args = arg;
        break;
      case 'd':
        o.devname = arg;
        break;
      case 'f':
        if (name === 'list') o.file = arg;
        else o.force = true;
        break;
      case 't':
        if (name === 'list') o.type = arg;
        else if (name === 'create' || name === 'open') o.requestTimeout = atoi(arg);
        // xapi pause: the 't' case has no break and falls into '?' (usage).
        else if (name === 'pause') return usageError(name, variant);
        else o.timeout = atoi(arg);
        break;
      case 'b':
        o.chr = false;
        break;
      case 'c':
        if (name === 'major') o.chr = true;
        else if (name === 'unpause') o.logPath = arg;
        else o.slice = arg;
        break;
      case 'C':
        o.logPath = arg;
        break;
      case 'R':
        o.readonly = true;
        break;
      case 'D':
        o.noODirect = true;
        break;
      case 'r':
        o.addLocalCache = true;
        break;
      case 'e':
        o.reuseParentMinor = atoi(arg);
        break;
      case '2':
        o.secondary = arg;
        break;
      case 's':
        o.standby = true;
        break;
      case 'E':
        if (o.key) return { kind: 'exit', code: 1, stdout: '', stderr: 'Only supply -E once\n' };
        o.key = true;
        break;
    }
  }

  const needPidMinor = o.pid === -1 || o.minor === -1;
  switch (name) {
    case 'list':
      return { kind: 'run', command: { name, pid: o.pid, minor: o.minor, type: o.type, file: o.file } };
    case 'allocate':
      return { kind: 'run', command: { name, devname: o.devname } };
    case 'free':
      return o.minor === -1 ? usageError(name, variant) : { kind: 'run', command: { name, minor: o.minor } };
    case 'create':
      if (o.args === null) return usageError(name, variant);
      return {
        kind: 'run',
        command: {
          name,
          args: o.args,
          devname: o.devname,
          readonly: o.readonly,
          noODirect: o.noODirect,
          addLocalCache: o.addLocalCache,
          reuseParentMinor: o.reuseParentMinor,
          secondary: o.secondary,
          standby: o.standby,
          timeoutSeconds: o.requestTimeout,
          cgroupSlice: o.slice,
          logPath: o.logPath,
        },
      };
    case 'destroy':
    case 'close':
    case 'pause': {
      if (needPidMinor) return usageError(name, variant);
      const base = { pid: o.pid, minor: o.minor, timeoutSeconds: o.timeout };
      if (name === 'close') return { kind: 'run', command: { name, ...base, force: o.force } };
      return { kind: 'run', command: { name, ...base } };
    }
    case 'spawn':
      return { kind: 'run', command: { name, cgroupSlice: o.slice } };
    case 'attach':
    case 'detach':
    case 'stats':
      return needPidMinor
        ? usageError(name, variant)
        : { kind: 'run', command: { name, pid: o.pid, minor: o.minor } };
    case 'open':
      if (needPidMinor || o.args === null) return usageError(name, variant);
      return {
        kind: 'run',
        command: {
          name,
          pid: o.pid,
          minor: o.minor,
          args: o.args,
          readonly: o.readonly,
          noODirect: o.noODirect,
          addLocalCache: o.addLocalCache,
          reuseParentMinor: o.reuseParentMinor,
          secondary: o.secondary,
          standby: o.standby,
          timeoutSeconds: o.requestTimeout,
          logPath: o.logPath,
          readKeyFromStdin: o.key,
        },
      };
    case 'unpause':
      if (needPidMinor) return usageError(name, variant);
      return {
        kind: 'run',
        command: {
          name,
          pid: o.pid,
          minor: o.minor,
          args: o.args,
          secondary: o.secondary,
          logPath: o.logPath,
        },
      };
    case 'major':
      return { kind: 'run', command: { name, charDevice: o.chr } };
  }
}
