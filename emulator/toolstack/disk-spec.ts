/**
 * The xl disk specification parser (docs/misc/xl-disk-configuration.txt), reimplemented from the flex
 * scanner in Xen's `tools/libxl/libxlu_disk_l.l` and the driver `xlu_disk_parse` in `libxlu_disk.c`
 * (the 4.7+ rule set, with COLO keywords).
 *
 * The scanner is emulated rule by rule: at each position every rule is tried, the longest match wins
 * (trailing context counts towards the length but is not consumed), ties go to the earlier rule. That
 * is what makes `tap:aio:/p` strip both prefixes, `foo:bar` a target but `foo:/bar` an error, and an
 * unknown `key=value` report only `key=v` (its rule takes a single value character).
 *
 * Error lines are xlu's, byte for byte (`<file>: config parsing error in disk specification: ...`);
 * each error also carries the offending token and its 1-based column in the spec.
 */

export type DiskBackend = 'unknown' | 'phy' | 'tap' | 'qdisk';
export type DiskFormat = 'unknown' | 'qcow' | 'qcow2' | 'vhd' | 'raw' | 'empty' | 'qed';

/** The fields of libxl_device_disk the parser fills. */
export interface LibxlDeviceDisk {
  backendDomname: string | null;
  pdevPath: string | null;
  vdev: string | null;
  backend: DiskBackend;
  format: DiskFormat;
  script: string | null;
  removable: boolean;
  readwrite: boolean;
  isCdrom: boolean;
  directIoSafe: boolean;
  /** libxl_defbool: null = default. */
  discardEnable: boolean | null;
  coloEnable: boolean | null;
  coloHost: string | null;
  coloPort: number;
  coloExport: string | null;
  activeDisk: string | null;
  hiddenDisk: string | null;
}

export interface DiskSpecError {
  /** The xlu line, without its newline. */
  line: string;
  /** xlu's message part: "unknown value for format", "no vdev specified", ... */
  reason: string;
  /** The `near` text, or null for errors about the spec as a whole. */
  token: string | null;
  /** 1-based column of the token in `spec`, or null. */
  column: number | null;
  spec: string;
}

export type DiskSpecResult =
  | { ok: true; disk: LibxlDeviceDisk }
  | { ok: false; errno: number; errors: DiskSpecError[]; disk: LibxlDeviceDisk };

export const EINVAL = 22;

export function emptyDisk(): LibxlDeviceDisk {
  return {
    backendDomname: null,
    pdevPath: null,
    vdev: null,
    backend: 'unknown',
    format: 'unknown',
    script: null,
    removable: false,
    readwrite: false,
    isCdrom: false,
    directIoSafe: false,
    discardEnable: null,
    coloEnable: null,
    coloHost: null,
    coloPort: 0,
    coloExport: null,
    activeDisk: null,
    hiddenDisk: null,
  };
}

interface Context {
  filename: string;
  spec: string;
  disk: LibxlDeviceDisk;
  errors: DiskSpecError[];
  hadDeprPrefix: boolean;
  accessSet: boolean;
  /** Column of the token being handled (1-based). */
  column: number;
}

function err(ctx: Context, token: string | null, reason: string, column: number | null = ctx.column): void {
  const near = token !== null ? `: near \`${token}'` : '';
  ctx.errors.push({
    line: `${ctx.filename}: config parsing error in disk specification: ${reason}${near} in \`${ctx.spec}'`,
    reason,
    token,
    column: token !== null ? column : null,
    spec: ctx.spec,
  });
}

type StringField =
  | 'pdevPath'
  | 'vdev'
  | 'script'
  | 'backendDomname'
  | 'coloHost'
  | 'coloExport'
  | 'activeDisk'
  | 'hiddenDisk';

/** savestring(): refuses to overwrite a non-empty value, silently replaces an empty one. */
function saveString(ctx: Context, what: string, field: StringField, value: string): void {
  const current = ctx.disk[field];
  if (current) {
    err(ctx, value, `${what} respecified`);
    return;
  }
  ctx.disk[field] = value;
}

/** DSET(): an enum may be set again only to the same value. */
function dset<K extends 'format' | 'backend'>(
  ctx: Context,
  member: K,
  value: LibxlDeviceDisk[K],
  str: string,
): void {
  if (ctx.disk[member] !== 'unknown' && ctx.disk[member] !== value) {
    err(ctx, str, `${member} respecified`);
  } else {
    ctx.disk[member] = value;
  }
}

function setAccess(ctx: Context, str: string): void {
  if (str === 'r' || str === 'ro') ctx.disk.readwrite = false;
  else if (str === 'rw' || str === 'w' || str === '') ctx.disk.readwrite = true;
  else err(ctx, str, 'unknown value for access');
}

const FORMATS: Readonly<Record<string, DiskFormat>> = {
  '': 'raw',
  raw: 'raw',
  qcow: 'qcow',
  qcow2: 'qcow2',
  vhd: 'vhd',
  empty: 'empty',
  qed: 'qed',
};

function setFormat(ctx: Context, str: string): void {
  const f = Object.hasOwn(FORMATS, str) ? FORMATS[str] : undefined;
  if (f) dset(ctx, 'format', f, str);
  else err(ctx, str, 'unknown value for format');
}

function setBackendType(ctx: Context, str: string): void {
  if (str === 'phy' || str === 'tap' || str === 'qdisk') dset(ctx, 'backend', str, str);
  else err(ctx, str, 'unknown value for backendtype');
}

/** atoi() */
function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(s);
  return m ? Number(BigInt.asIntN(32, BigInt(m[1]))) : 0;
}

/** vdev_and_devtype(): `<vdev>:<devtype>` split at the last colon. Returns false if no colon. */
function vdevAndDevtype(ctx: Context, str: string): boolean {
  const colon = str.lastIndexOf(':');
  if (colon < 0) return false;
  saveString(ctx, 'vdev', 'vdev', str.slice(0, colon));
  const type = str.slice(colon + 1);
  if (type === 'cdrom') ctx.disk.isCdrom = true;
  else if (type === 'disk') ctx.disk.isCdrom = false;
  else err(ctx, type, 'unknown deprecated type', ctx.column + colon + 1);
  return true;
}

/** STRIP(delim) */
function strip(text: string, delim: string): string {
  return text.endsWith(delim) ? text.slice(0, -1) : text;
}

/** FROMEQUALS */
function fromEquals(text: string): string {
  return text.slice(text.indexOf('=') + 1);
}

/** What an action asks of the scanner. */
type Next = 'continue' | 'stop' | 'lexerr';

interface Rule {
  /** Sticky regex; group 1, when present, is the head (yytext) and the rest trailing context. */
  re: RegExp;
  action: (ctx: Context, yytext: string) => Next;
}

const kw = (re: RegExp, action: (ctx: Context, value: string, yytext: string) => void): Rule => ({
  re,
  action: (ctx, yytext) => {
    action(ctx, fromEquals(strip(yytext, ',')), yytext);
    return 'continue';
  },
});
const flag = (re: RegExp, action: (ctx: Context) => void): Rule => ({
  re,
  action: (ctx) => {
    action(ctx);
    return 'continue';
  },
});

/** The rules of libxlu_disk_l.l, in file order. `.` in flex never matches a newline. */
const RULES: readonly Rule[] = [
  // whitespace before a parameter (the trailing context makes it win against everything else)
  { re: /([ \t\n]+)(?:[^ \t\n][^\n]*)?/y, action: () => 'continue' },
  kw(/format=[^,]*,?/y, (ctx, v) => setFormat(ctx, v)),
  flag(/cdrom,?/y, (ctx) => {
    ctx.disk.isCdrom = true;
  }),
  flag(/devtype=cdrom,?/y, (ctx) => {
    ctx.disk.isCdrom = true;
  }),
  flag(/devtype=disk,?/y, (ctx) => {
    ctx.disk.isCdrom = false;
  }),
  {
    re: /devtype=[^,]*,?/y,
    action: (ctx, yytext) => {
      err(ctx, yytext, 'unknown value for type');
      return 'continue';
    },
  },
  kw(/access=[^,]*,?/y, (ctx, v) => setAccess(ctx, v)),
  kw(/backend=[^,]*,?/y, (ctx, v) => saveString(ctx, 'backend', 'backendDomname', v)),
  kw(/backendtype=[^,]*,?/y, (ctx, v) => setBackendType(ctx, v)),
  kw(/vdev=[^,]*,?/y, (ctx, v) => saveString(ctx, 'vdev', 'vdev', v)),
  kw(/script=[^,]*,?/y, (ctx, v) => saveString(ctx, 'script', 'script', v)),
  flag(/direct-io-safe,?/y, (ctx) => {
    ctx.disk.directIoSafe = true;
  }),
  flag(/discard,?/y, (ctx) => {
    ctx.disk.discardEnable = true;
  }),
  flag(/no-discard,?/y, (ctx) => {
    ctx.disk.discardEnable = false;
  }),
  flag(/colo,?/y, (ctx) => {
    ctx.disk.coloEnable = true;
  }),
  flag(/no-colo,?/y, (ctx) => {
    ctx.disk.coloEnable = false;
  }),
  kw(/colo-host=[^,]*,?/y, (ctx, v) => saveString(ctx, 'colo-host', 'coloHost', v)),
  kw(/colo-port=[^,]*,?/y, (ctx, v) => {
    const port = atoi(v);
    if (port) ctx.disk.coloPort = port;
    else err(ctx, v, 'unknown value for colo_port');
  }),
  kw(/colo-export=[^,]*,?/y, (ctx, v) => saveString(ctx, 'colo-export', 'coloExport', v)),
  kw(/active-disk=[^,]*,?/y, (ctx, v) => saveString(ctx, 'active-disk', 'activeDisk', v)),
  kw(/hidden-disk=[^,]*,?/y, (ctx, v) => saveString(ctx, 'hidden-disk', 'hiddenDisk', v)),
  // target= eats the rest of the spec, commas and all
  kw(/target=[^\n]*/y, (ctx, v) => saveString(ctx, 'target', 'pdevPath', v)),
  {
    re: /[a-z][-a-z0-9]*=[^,],?/y,
    action: (ctx, yytext) => {
      err(ctx, yytext, 'unknown parameter');
      return 'continue';
    },
  },
  // deprecated prefixes: the trailing `/.*` makes them count as matching the whole rest
  {
    re: /((?:raw|qcow2?|vhd):)[^\n]*/y,
    action: (ctx, yytext) => {
      ctx.hadDeprPrefix = true;
      setFormat(ctx, strip(yytext, ':'));
      return 'continue';
    },
  },
  {
    re: /((?:iscsi|e?nbd|drbd):)[^\n]*/y,
    action: (ctx, yytext) => {
      ctx.hadDeprPrefix = true;
      saveString(ctx, 'script', 'script', `block-${strip(yytext, ':')}`);
      return 'continue';
    },
  },
  ...[
    /(tapdisk:)[^\n]*/y,
    /(tap2?:)[^\n]*/y,
    /(aio:)[^\n]*/y,
    /(ioemu:)[^\n]*/y,
    /(file:)[^\n]*/y,
    /(phy:)[^\n]*/y,
  ].map(
    (re): Rule => ({
      re,
      action: (ctx) => {
        ctx.hadDeprPrefix = true;
        return 'continue';
      },
    }),
  ),
  {
    re: /([a-z][a-z0-9]*:)(?:[^a-z0-9][^\n]*)?/y,
    action: (ctx, yytext) => {
      err(ctx, yytext, 'unknown deprecated disk prefix');
      return 'stop';
    },
  },
  // positional parameters
  { re: /[^=,]*,|[^=,]+,?/y, action: positional },
  // anything else: switch to LEXERR, which reports the rest of the line
  { re: /[^\n]/y, action: () => 'lexerr' },
];

function positional(ctx: Context, yytext: string): Next {
  const text = strip(yytext, ',');
  const d = ctx.disk;
  if (ctx.errors.length > 0) {
    // previous errors may just lead to subsequent ones
  } else if (d.pdevPath === null) {
    saveString(ctx, 'target', 'pdevPath', text);
  } else if (!ctx.hadDeprPrefix && d.format === 'unknown') {
    if (d.pdevPath === '' && vdevAndDevtype(ctx, text)) d.format = 'empty';
    else setFormat(ctx, text);
  } else if (d.vdev === null) {
    if (!vdevAndDevtype(ctx, text)) saveString(ctx, 'vdev', 'vdev', text);
  } else if (!ctx.accessSet) {
    ctx.accessSet = true;
    setAccess(ctx, text);
  } else {
    err(ctx, text, 'too many positional parameters');
    return 'stop';
  }
  return 'continue';
}

/** xlu__disk_yylex over one spec. */
function scan(ctx: Context): void {
  const s = ctx.spec;
  let pos = 0;
  while (pos < s.length) {
    let best: { rule: Rule; total: number; head: number } | undefined;
    for (const rule of RULES) {
      rule.re.lastIndex = pos;
      const m = rule.re.exec(s);
      if (!m) continue;
      const total = m[0].length;
      const head = m[1] !== undefined ? m[1].length : total;
      // Longest wins; on a tie the earlier rule keeps it. Zero-length matches never win.
      if (total > 0 && (!best || total > best.total)) best = { rule, total, head };
    }
    if (!best) throw new Error(`disk spec scanner jammed at column ${pos + 1} of '${s}'`);
    const yytext = s.slice(pos, pos + best.head);
    ctx.column = pos + 1;
    const next = best.rule.action(ctx, yytext);
    if (next === 'stop') return;
    if (next === 'lexerr') {
      // <LEXERR>.* with yymore(): the offending character plus the rest of the line
      const end = s.indexOf('\n', pos + 1);
      err(ctx, s.slice(pos, end < 0 ? s.length : end), 'bad disk syntax');
      return;
    }
    pos += best.head;
  }
}

/**
 * xlu_disk_parse(): every spec is scanned into the same disk (xl block-attach passes its arguments as
 * separate specs), then defaults and the vdev/target checks apply. `filename` is the config file name
 * xlu prints in its messages.
 */
export function parseDiskSpec(specs: string | readonly string[], filename = 'command line'): DiskSpecResult {
  const list = typeof specs === 'string' ? [specs] : [...specs];
  const disk = emptyDisk();
  disk.readwrite = true;
  const ctx: Context = {
    filename,
    spec: '',
    disk,
    errors: [],
    hadDeprPrefix: false,
    accessSet: false,
    column: 1,
  };
  for (const spec of list) {
    ctx.spec = spec;
    scan(ctx);
    if (ctx.errors.length > 0) return { ok: false, errno: EINVAL, errors: ctx.errors, disk };
  }
  if (disk.format === 'unknown') disk.format = 'raw';
  if (disk.isCdrom) {
    disk.removable = true;
    disk.readwrite = false;
  }
  if (disk.vdev === null) {
    err(ctx, null, 'no vdev specified');
  } else if (disk.pdevPath === null && !disk.removable) {
    err(ctx, null, 'no target specified (and device not removable)');
  }
  if (ctx.errors.length > 0) return { ok: false, errno: EINVAL, errors: ctx.errors, disk };
  return { ok: true, disk };
}
