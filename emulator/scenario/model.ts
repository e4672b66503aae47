/**
 * The typed scenario model: what `loadScenarioFile`, `parseScenario` and `scenario()` return after
 * validation. Sizes are bytes, durations are milliseconds (`Millis`), defaults are filled in.
 *
 * The file language is in the project's scenario brief; where it was silent these choices hold:
 * - Required top-level keys: `name` ([a-z0-9-]+), `description` (non-empty) and `steps` (at least one).
 *   `host`, `domains`, `versions` and `expect` may be left out.
 * - Version values may be written unquoted; the text as written is used, so `libxl: 4.1` is "4.1"
 *   (not the number 4.1) and `blkback: 2012` is "2012".
 * - Names: domains match [A-Za-z0-9_.-]+ and may not be `dom0` or `Domain-0` (dom0 always exists and
 *   is named `dom0` where a domain may be dom0: `fault.lose-event.domain`, `expect.log[].domain`).
 *   Images are relative file names without `..` segments. Both are unique; so are step labels.
 * - Guest disk offsets, lengths, `fio.bs` and `fio.size` are multiples of 512 (blkif addresses sectors);
 *   memory sizes are multiples of 4KiB (pages).
 * - Patterns are defined in pattern.ts; `fill: random` means `random:0`; image `fill` takes any pattern.
 * - `fio`: `rw` is one of fio's read, write, randread, randwrite, rw, randrw; at most one of `count`
 *   (number of I/Os) and `duration`; with neither it does one pass over `size` (size / bs I/Os).
 *   `verify` defaults to false; `iodepth` to 1 (1..1024).
 * - Actions that take no disk (`shutdown`, `crash`) accept `{}`, nothing (`shutdown:`), or their options.
 * - `wait` takes exactly one of `time`, `xenstore` (with `value` = wait for that value, `absent: true` =
 *   wait until the node is gone, neither = wait until it exists), `domain` + `state`, or `guest` with
 *   one of `device` (a vdev: the guest's gendisk for it exists, as a program waits for udev's
 *   /dev/xvda; blkfront adds it last, once connected) and `no-device` (its xenbus device has been
 *   unregistered to the end, including the final switch to Closed its xenwatch runs, and its gendisk is
 *   gone; a barrier before re-creating a frontend directory). Without `timeout` a wait has none; if
 *   nothing can progress the run reports a stall.
 * - xenstore paths are absolute, made of [A-Za-z0-9_@-] segments (xenstored's rule), at most 3072 chars.
 *   Values written or expected may be numbers in the file; their text as written is used.
 * - `fault`: `kill-tapdisk.signal` is a signal name with or without SIG (default KILL); `kill-tapdisk.minor`
 *   picks the tapdisk serving that minor (default: every tapdisk). `fail-image.error` is an errno name
 *   (default EIO) and `after` the number of I/Os that succeed first (default 0). `lose-event.count`
 *   defaults to 1; without `port` the next `count` notifications to the domain are lost.
 *   `slow-hotplug.delay`: the next `block add` hotplug run sleeps this long before it writes
 *   `physical-device` (a loaded dom0, a slow losetup); one run only, whichever device it is for.
 * - Text matchers (`expect.stall.chain`, `expect.stall.broken-by`, `expect.log[].contains`) are
 *   substrings, or regular expressions when written `/source/flags`.
 * - `expect.stall: none` means no stall at all; a stall map means "count stalls (default: at least one)
 *   whose chain holders match the entries in order". `expect.domains.<state>` is the exact set of guests
 *   in that state at the end; states left out are not checked.
 * - `domains[].on-poweroff` / `on-crash` are xl.cfg's on_poweroff / on_crash: destroy (xl's default),
 *   preserve (the domain stays shut down until an `xl destroy` step) or restart (xl builds it again).
 * - `domains[].blkfront` holds the guest kernel's xen_blkfront module parameters, as its command line
 *   would set them (`xen_blkfront.feature_persistent=0`): `feature-persistent` (true/false, default
 *   true), `max-indirect-segments` (0..4096, 0 = direct requests only; default 32) and
 *   `max-ring-page-order` (0..4, default 0). Keys left out keep the driver's default.
 * - A step may not carry both `expect-error` (it must fail) and `may-fail` (it may fail).
 * - `host: shutdown` powers dom0 off: device_shutdown of its buses (C23). The halt itself is not
 *   modelled, so later steps and the end-state checks still run.
 * - `expect.loop-devices` lists dom0's bound loop devices at the end as `losetup -a` prints them
 *   (`/dev/loop0: (/path/disk.img)`), each exact or a whole-row `/regex/`; `[]` means none is bound.
 * - YAML: one document per file; aliases are allowed (expanded); merge keys (`<<`) are not; duplicate
 *   keys are errors. When the YAML does not parse, only syntax errors are reported (the tree is unsure).
 */

import type { Pattern } from '../guest/pattern.js';
import type { Millis } from '../runtime/engine.js';
import type { SourcePos } from './errors.js';

export type { Pattern } from '../guest/pattern.js';
export type { SourcePos } from './errors.js';

/**
 * One row per behaviour switch that existed in real history (teardown.md §3.6-3.8, §4, §6): the key
 * written under `versions:`, the model field, the values allowed (first is the oldest behaviour), the
 * default (today's behaviour), what the value names in error messages, and the history it encodes.
 * Validation, formatting, `xenpv scenarios` and the machine defaults are all derived from this table;
 * adding a switch is one row here plus the component that reads `versions.<field>`.
 */
export const VERSION_SWITCHES = [
  {
    key: 'libxl',
    field: 'libxl',
    values: ['4.1', '4.2-pre', '4.2', 'xend'],
    default: '4.2',
    what: 'libxl version',
    history:
      'teardown order: 4.1 destroys tapdisk before xs_rm, 4.2-pre before waiting for Closed (before 4f6dda6a14), 4.2 fixed, xend waits for the backend (§3)',
  },
  {
    key: 'blktap-kernel',
    field: 'blktapKernel',
    values: ['2010-06', '2010-08'],
    default: '2010-08',
    what: 'blktap-kernel version',
    history: 'blktap2 gendisk destroy: 2010-06 fails with EBUSY, 2010-08 (546b11c) blocks in ring release',
  },
  {
    key: 'tapdisk',
    field: 'tapdisk',
    values: ['xen-4.1', 'xapi'],
    default: 'xen-4.1',
    what: 'tapdisk version',
    history:
      'DETACH: the xen-4.1 tapdisk2 goes straight to munmap, xapi loops on REMOVE_DEVICE (fa28881, 2010-06)',
  },
  {
    key: 'tapdisk-reply-before-teardown',
    field: 'tapdiskReplyBeforeTeardown',
    values: [false, true],
    default: false,
    what: 'tapdisk reply order',
    history: 'true: tapdisk replies to DETACH before tearing the VBD down (§3.7)',
  },
  {
    key: 'blkback',
    field: 'blkback',
    values: ['2012', '2013', '2014', '2017'],
    default: '2017',
    what: 'blkback version',
    history:
      'fe Closing/Closed: 2012 disconnects on Closing and waits in xenwatch, 2013 (6f5986bce558, C7), 2014 defers the free (C8), 2017 inflight/EBUSY (C9)',
  },
  {
    key: 'blkfront',
    field: 'blkfront',
    values: ['2012', '2016'],
    default: '2016',
    what: 'blkfront version',
    history:
      'be Closing with the disk open: 2012 refuses to close until the last release, 2016 marks the disk dead',
  },
  {
    key: 'blkfront-grant-revoke',
    field: 'blkfrontGrantRevoke',
    values: ['query-then-end', 'try-end'],
    default: 'try-end',
    what: 'blkfront grant revocation',
    history: 'C11 (XSA-396, abf1fd5919d6, 2022): query-then-end before the fix, try-end after',
  },
  {
    key: 'blkfront-connect',
    field: 'blkfrontConnect',
    values: ['direct', 'handshake-first'],
    default: 'handshake-first',
    what: 'blkfront connect behaviour',
    history:
      'C14 (c31ecf6c126d, 2016): be Connected goes straight to connect before the fix, handshake first after',
  },
  {
    key: 'blkback-reconnect',
    field: 'blkbackReconnect',
    values: ['2.6.18', 'ef9e715c419c'],
    default: 'ef9e715c419c',
    what: 'blkback reconnect behaviour',
    history:
      'C6 (legacy linux-2.6.18-xen ef9e715c419c): no teardown before (re)connect, or the idempotent disconnect first',
  },
  {
    key: 'blkback-kthread-stop',
    field: 'blkbackKthreadStop',
    values: ['xsa-350', '1c728719a4da'],
    default: '1c728719a4da',
    what: 'blkback kthread_stop behaviour',
    history: 'C10 (XSA-350, 1c728719a4da, 2020-12-14): ring->xenblkd left set after kthread_stop, or cleared',
  },
  {
    key: 'blkback-persistent-negotiation',
    field: 'blkbackPersistentNegotiation',
    values: ['aac8a70db24b', 'fc9be616bb8f'],
    default: 'fc9be616bb8f',
    what: 'blkback persistent-grant negotiation',
    history:
      'C16 (fc9be616bb8f, July 2022): xen_vbd_create (physical-device) overwrites what connect_ring negotiated, or negotiation at connect only',
  },
  {
    key: 'tapdisk-open-failure',
    field: 'tapdiskOpenFailure',
    values: ['2011-06', 'e403288'],
    default: 'e403288',
    what: 'tapdisk OPEN failure path',
    history:
      "C18 (blktap e403288): a failed OPEN frees the VBD tap-ctl's rollback then detaches, or keeps it",
  },
  {
    key: 'tapdisk-control-exit',
    field: 'tapdiskControlExit',
    values: ['2012-07', '2132029'],
    default: '2132029',
    what: 'tapdisk control exit drain',
    history:
      'C17 (blktap 2132029, CA-86426): the xapi control asserts every connection answered at exit, or drops them',
  },
  {
    key: 'xenbus-backend-shutdown',
    field: 'xenbusBackendShutdown',
    values: ['xenbus_dev_shutdown', 'frontend-only'],
    default: 'frontend-only',
    what: 'backend bus shutdown hook',
    history:
      'C23 (Paul Durrant, Dec 2019): the backend bus still runs xenbus_dev_shutdown at power-off (5 s per device), or not',
  },
  {
    key: 'hotplug-block',
    field: 'hotplugBlock',
    values: ['2009-pre', '92e6cb5673'],
    default: '92e6cb5673',
    what: 'block hotplug script version',
    history:
      "C21 (92e6cb5673, 2009): the block script's loop-file add/remove without the lock and re-check, or with",
  },
  {
    key: 'tap-ctl',
    field: 'tapCtl',
    values: ['xen', 'xapi'],
    default: 'xen',
    what: 'tap-ctl version',
    history:
      "tap-ctl command set: Xen's in-tree tools/blktap2/control, or xapi's with its later additions (§5)",
  },
] as const satisfies readonly VersionSwitchRow[];

/** The shape every row of VERSION_SWITCHES has. */
export interface VersionSwitchRow {
  /** Key under `versions:` in a scenario file. */
  key: string;
  /** Field of `Versions`. */
  field: string;
  values: readonly (string | boolean)[];
  default: string | boolean;
  /** What a value is, for error messages: "libxl version". */
  what: string;
  /** The history the switch encodes (commit, date, catalogue entry). */
  history: string;
}

export type VersionSwitch = (typeof VERSION_SWITCHES)[number];
export type VersionField = VersionSwitch['field'];

/** Behaviour switches, one field per row of VERSION_SWITCHES, typed by the row's values. */
export type Versions = { -readonly [S in VersionSwitch as S['field']]: S['values'][number] };

/** `versions:` as written in a file (or passed to `scenario()`): file keys, each optional, checked when loaded. */
export type VersionsInput = {
  [S in VersionSwitch as S['key']]?: S['default'] extends boolean ? boolean : string;
};

export const DEFAULT_VERSIONS: Readonly<Versions> = Object.freeze(
  Object.fromEntries(VERSION_SWITCHES.map((s) => [s.field, s.default])) as unknown as Versions,
);

export const IMAGE_FORMATS = ['raw', 'vhd', 'qcow2'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

export interface ImageSpec {
  /** File name relative to the run's work dir. */
  name: string;
  size: number;
  format: ImageFormat;
  fill: Pattern;
}

export interface HostSpec {
  memory: number;
  images: ImageSpec[];
}

export const DOMAIN_ABIS = ['x86_64', 'x86_32'] as const;
export type DomainAbi = (typeof DOMAIN_ABIS)[number];

/** What xl create's daemon does when the guest powers off or crashes (xl.cfg on_poweroff, on_crash). */
export const DOMAIN_ACTIONS = ['destroy', 'preserve', 'restart'] as const;
export type DomainAction = (typeof DOMAIN_ACTIONS)[number];

export interface DomainDecl {
  name: string;
  memory: number;
  abi: DomainAbi;
  /** xl disk specs as written; the xl disk parser checks them when the domain is created. */
  disks: string[];
  /** `on-poweroff`: left out means xl's default, destroy. */
  onPoweroff?: DomainAction;
  /** `on-crash`: left out means xl's default, destroy. */
  onCrash?: DomainAction;
  /** `blkfront`: the guest kernel's xen_blkfront module parameters; left out, the driver's defaults. */
  blkfront?: BlkfrontParams;
}

/** xen_blkfront module parameters a guest kernel command line can set; absent keys keep the default. */
export interface BlkfrontParams {
  /** `feature-persistent` (feature_persistent): offer persistent grants to the backend. */
  featurePersistent?: boolean;
  /** `max-indirect-segments` (max_indirect_segments): 0 means direct requests only. */
  maxIndirectSegments?: number;
  /** `max-ring-page-order` (max_ring_page_order): ring size as a power of two of pages. */
  maxRingPageOrder?: number;
}

/** File key -> BlkfrontParams field, in the order the formatter writes them. */
export const BLKFRONT_PARAM_KEYS = {
  'feature-persistent': 'featurePersistent',
  'max-indirect-segments': 'maxIndirectSegments',
  'max-ring-page-order': 'maxRingPageOrder',
} as const satisfies Record<string, keyof BlkfrontParams>;

/** Where a step came from: its field path (`steps[2].steps[0]`) and, for files, its position. */
export interface StepOrigin {
  path: string;
  file?: string;
  line?: number;
  column?: number;
}

export interface TimeBounds {
  atLeast?: Millis;
  atMost?: Millis;
}

/** Keys any step may carry. */
export interface StepCommon {
  at: StepOrigin;
  label?: string;
  reorderable: boolean;
  expectElapsed?: TimeBounds;
  expectError?: string;
  mayFail: boolean;
}

export const FIO_RW = ['read', 'write', 'randread', 'randwrite', 'rw', 'randrw'] as const;
export type FioRw = (typeof FIO_RW)[number];

export type GuestAction =
  | { kind: 'write'; disk: string; offset: number; length: number; pattern: Pattern }
  | { kind: 'read'; disk: string; offset: number; length: number; verify?: Pattern }
  | { kind: 'flush'; disk: string }
  | { kind: 'discard'; disk: string; offset: number; length: number }
  | {
      kind: 'fio';
      disk: string;
      rw: FioRw;
      bs: number;
      iodepth: number;
      size: number;
      count?: number;
      duration?: Millis;
      verify: boolean;
    }
  | { kind: 'open'; disk: string }
  | { kind: 'close'; disk: string }
  | { kind: 'shutdown'; timeout?: Millis }
  | { kind: 'crash' };

export type GuestActionKind = GuestAction['kind'];
export const GUEST_ACTIONS: readonly GuestActionKind[] = [
  'write',
  'read',
  'flush',
  'discard',
  'fio',
  'open',
  'close',
  'shutdown',
  'crash',
];

export const DOMAIN_STATES = ['running', 'shutdown', 'dying', 'dead'] as const;
export type DomainState = (typeof DOMAIN_STATES)[number];

export type WaitCondition =
  | { kind: 'time'; time: Millis }
  | { kind: 'xenstore'; path: string; value?: string; absent: boolean; timeout?: Millis }
  | { kind: 'domain'; domain: string; state: DomainState; timeout?: Millis }
  /**
   * present: the guest has a live gendisk `device`; absent: it has none and no xenbus device for it
   * (unregistered to the end).
   */
  | { kind: 'guest'; guest: string; device: string; present: boolean; timeout?: Millis };

export type Fault =
  | { kind: 'kill-tapdisk'; signal: string; minor?: number }
  | { kind: 'stall-xenwatch'; for: Millis }
  | { kind: 'slow-image'; image: string; delay: Millis }
  | { kind: 'fail-image'; image: string; error: string; after: number }
  | { kind: 'lose-event'; domain: string; port?: number; count: number }
  | { kind: 'crash-domain'; domain: string }
  /** The next `block add` hotplug run sleeps `delay` before it writes physical-device. */
  | { kind: 'slow-hotplug'; delay: Millis };

export type FaultKind = Fault['kind'];
export const FAULT_KINDS: readonly FaultKind[] = [
  'kill-tapdisk',
  'stall-xenwatch',
  'slow-image',
  'fail-image',
  'lose-event',
  'crash-domain',
  'slow-hotplug',
];

export interface XlStep extends StepCommon {
  kind: 'xl';
  command: string;
}
export interface TapCtlStep extends StepCommon {
  kind: 'tap-ctl';
  command: string;
}
export interface GuestStep extends StepCommon {
  kind: 'guest';
  guest: string;
  action: GuestAction;
}
export interface XenstoreWriteStep extends StepCommon {
  kind: 'xenstore-write';
  path: string;
  value: string;
}
export interface XenstoreReadStep extends StepCommon {
  kind: 'xenstore-read';
  path: string;
  expect?: string;
}
export interface XenstoreRmStep extends StepCommon {
  kind: 'xenstore-rm';
  path: string;
}
export interface WaitStep extends StepCommon {
  kind: 'wait';
  wait: WaitCondition;
}
export interface FaultStep extends StepCommon {
  kind: 'fault';
  fault: Fault;
}
export interface RepeatStep extends StepCommon {
  kind: 'repeat';
  count: number;
  steps: Step[];
}
export interface ParallelStep extends StepCommon {
  kind: 'parallel';
  steps: Step[];
}
/** Host-wide actions; `shutdown` powers dom0 off (device_shutdown of its buses, then halt). */
export const HOST_ACTIONS = ['shutdown'] as const;
export type HostAction = (typeof HOST_ACTIONS)[number];
export interface HostStep extends StepCommon {
  kind: 'host';
  action: HostAction;
}

export type Step =
  | XlStep
  | TapCtlStep
  | GuestStep
  | XenstoreWriteStep
  | XenstoreReadStep
  | XenstoreRmStep
  | WaitStep
  | FaultStep
  | RepeatStep
  | ParallelStep
  | HostStep;

export type StepKind = Step['kind'];
export const STEP_KINDS: readonly StepKind[] = [
  'xl',
  'tap-ctl',
  'guest',
  'xenstore-write',
  'xenstore-read',
  'xenstore-rm',
  'wait',
  'fault',
  'repeat',
  'parallel',
  'host',
];

export const REPEAT_MIN = 1;
export const REPEAT_MAX = 1000;

/** A substring, or a regular expression when the scenario wrote `/source/flags`. */
export type TextMatcher =
  | { kind: 'substring'; text: string }
  | { kind: 'regex'; source: string; flags: string };

export type StallExpectation =
  | { kind: 'none' }
  | { kind: 'chain'; chain: TextMatcher[]; brokenBy?: TextMatcher; count?: number };

export type LogExpectation =
  | { domain: string; contains: TextMatcher }
  | { domain: string; notContains: TextMatcher };

export interface DataExpectation {
  image: string;
  offset: number;
  length: number;
  pattern: Pattern;
}

export interface Expectations {
  stall?: StallExpectation;
  deadlock?: boolean;
  /** `tap-ctl list` rows (piped format) at the end: exact text, or `/regex/` matching a whole row. */
  tapCtlList?: string[];
  xenstoreAbsent?: string[];
  /** path -> value. */
  xenstore?: Record<string, string>;
  /** state -> exact set of guests in it. */
  domains?: Partial<Record<DomainState, string[]>>;
  data?: DataExpectation[];
  log?: LogExpectation[];
  elapsed?: TimeBounds;
  /**
   * The run ends with a kernel oops (a "BUG: ..." report) whose message matches: that ending is then
   * the expected outcome, not a run error. Without it any oops fails the run.
   */
  oops?: TextMatcher;
  /** dom0's bound loop devices at the end, rows as `losetup -a` prints them (exact text or `/regex/`). */
  loopDevices?: string[];
}

export interface Scenario {
  name: string;
  description: string;
  cites?: string;
  seed?: number;
  versions: Versions;
  host: HostSpec;
  domains: DomainDecl[];
  steps: Step[];
  expect: Expectations;
  /** Positions of every field, keyed by field path ("steps[3].guest"); empty for scenarios built in TS. */
  source: { file?: string; positions: Record<string, SourcePos> };
}

/** The name dom0 goes by wherever a step or expectation may name it. */
export const DOM0_NAME = 'dom0';
export const RESERVED_DOMAIN_NAMES = ['dom0', 'Domain-0'] as const;
