/**
 * udev rules (udev(7)): one rule a line of comma-separated KEY op "value" pairs; match keys (==, !=)
 * against the event, assignments (=, +=, :=) applied when every match of the line holds, in file order.
 * What the model needs from it: ACTION, KERNEL, SUBSYSTEM, DEVPATH and ENV{x} matches with shell glob
 * patterns (*, ?, [...], and |-alternatives), ENV{x} and RUN assignments, and the $env{x}/%E{x},
 * $kernel/%k, $devpath/%p substitutions in RUN. NAME, MODE, OWNER, GROUP and SYMLINK are accepted and
 * not applied (simplification: device nodes are made by the drivers, not by udev).
 *
 * The rule files are Xen's tools/hotplug/Linux/xen-backend.rules of each era: up to 4.1 the vbd rule
 * runs the block script unconditionally; from 4.2 the rules set UDEV_CALL=1 and the scripts exit at
 * once when libxl wrote libxl/disable_udev (libxl runs them itself, libxl__device_hotplug).
 */

export type RuleOp = '==' | '!=' | '=' | '+=' | ':=';

export interface RuleKey {
  /** ACTION, KERNEL, SUBSYSTEM, DEVPATH, ENV, RUN, NAME, ... */
  readonly key: string;
  /** The {attribute} of ENV{UDEV_CALL}. */
  readonly attr?: string;
  readonly op: RuleOp;
  readonly value: string;
}

export interface UdevRule {
  readonly file: string;
  readonly line: number;
  readonly keys: readonly RuleKey[];
}

/** The event as the rules see it: its properties (ACTION, DEVPATH, SUBSYSTEM, the bus's variables). */
export interface RuleEvent {
  readonly env: ReadonlyMap<string, string>;
}

/** What the rules decided for one event: the final environment and the programs to run. */
export interface RuleResult {
  readonly env: ReadonlyMap<string, string>;
  /** Command lines after substitution, in order. */
  readonly run: readonly string[];
  /** "file:line" of each rule that matched. */
  readonly matched: readonly string[];
}

const MATCH_KEYS = new Set(['ACTION', 'KERNEL', 'SUBSYSTEM', 'DEVPATH', 'ENV', 'DRIVER']);
const ASSIGN_KEYS = new Set(['RUN', 'ENV', 'NAME', 'MODE', 'OWNER', 'GROUP', 'SYMLINK']);
const KEY_WITH_ATTR = new Set(['ENV']);

/** Parses a rules file; throws RangeError naming file:line and the offending text. */
export function parseRules(file: string, text: string): UdevRule[] {
  const rules: UdevRule[] = [];
  const lines = text.replace(/\\\n/g, '').split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    rules.push({ file, line: i + 1, keys: parseLine(`${file}:${i + 1}`, line) });
  }
  return rules;
}

function parseLine(where: string, line: string): RuleKey[] {
  const keys: RuleKey[] = [];
  let rest = line;
  while (rest.length > 0) {
    const m = /^([A-Z_]+)(?:\{([^}]*)\})?\s*(==|!=|\+=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,\s*)?/.exec(rest);
    if (m === null) throw new RangeError(`${where}: cannot parse ${JSON.stringify(rest)}`);
    const [all, key, attr, op, value, comma] = m as unknown as [
      string,
      string,
      string | undefined,
      RuleOp,
      string,
      string?,
    ];
    const isMatch = op === '==' || op === '!=';
    if (isMatch ? !MATCH_KEYS.has(key) : !ASSIGN_KEYS.has(key))
      throw new RangeError(`${where}: key ${key} does not take ${op}`);
    if (KEY_WITH_ATTR.has(key) !== (attr !== undefined))
      throw new RangeError(`${where}: key ${key} ${attr === undefined ? 'needs' : 'takes no'} {attribute}`);
    keys.push({ key, op, value, ...(attr === undefined ? {} : { attr }) });
    rest = rest.slice(all.length);
    if (rest.length > 0 && comma === undefined)
      throw new RangeError(`${where}: expected "," before ${JSON.stringify(rest)}`);
  }
  return keys;
}

/** fnmatch(3) without flags, plus udev's "a|b" alternatives. */
export function globMatch(pattern: string, text: string): boolean {
  return pattern.split('|').some((p) => globToRegExp(p).test(text));
}

function globToRegExp(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, close);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      i = close;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`, 's');
}

/** The kernel name of a device: the last component of DEVPATH. */
export function kernelName(devpath: string): string {
  return devpath.slice(devpath.lastIndexOf('/') + 1);
}

function matchValue(k: RuleKey, env: ReadonlyMap<string, string>): string {
  switch (k.key) {
    case 'KERNEL':
      return kernelName(env.get('DEVPATH') ?? '');
    case 'ENV':
      return env.get(k.attr!) ?? '';
    default:
      return env.get(k.key) ?? '';
  }
}

/** udev_event_apply_format: $env{x} %E{x} $kernel %k $devpath %p $$ %%. Unknown ones stay as text. */
export function substitute(format: string, env: ReadonlyMap<string, string>): string {
  return format.replace(
    /\$env\{([^}]*)\}|%E\{([^}]*)\}|\$kernel|%k|\$devpath|%p|\$\$|%%/g,
    (tok: string, a?: string, b?: string) => {
      const name = a ?? b;
      if (name !== undefined) return env.get(name) ?? '';
      if (tok === '$kernel' || tok === '%k') return kernelName(env.get('DEVPATH') ?? '');
      if (tok === '$devpath' || tok === '%p') return env.get('DEVPATH') ?? '';
      return tok[0]!;
    },
  );
}

/** Runs the rules over an event, in order, as udev_rules_apply_to_event does. */
export function applyRules(rules: readonly UdevRule[], event: RuleEvent): RuleResult {
  const env = new Map(event.env);
  let run: string[] = [];
  const matched: string[] = [];
  for (const rule of rules) {
    const ok = rule.keys.every((k) => {
      if (k.op !== '==' && k.op !== '!=') return true;
      const hit = globMatch(k.value, matchValue(k, env));
      return k.op === '==' ? hit : !hit;
    });
    if (!ok) continue;
    matched.push(`${rule.file}:${rule.line}`);
    for (const k of rule.keys) {
      if (k.key === 'ENV' && (k.op === '=' || k.op === ':=' || k.op === '+=')) {
        const v = substitute(k.value, env);
        env.set(k.attr!, k.op === '+=' && env.get(k.attr!) ? `${env.get(k.attr!)} ${v}` : v);
      } else if (k.key === 'RUN') {
        // Substituted when the programs run, after every rule applied (udev_event_execute_run).
        if (k.op === '+=') run.push(k.value);
        else if (k.op === '=' || k.op === ':=') run = [k.value];
      }
    }
  }
  return { env, run: run.map((r) => substitute(r, env)), matched };
}

/**
 * The vbd lines of xen-backend.rules as Xen 4.0/4.1 installed it: udev runs the block script for every
 * vbd event and the cleanup script for every removal. (The file's lines for other device classes and
 * device-node names are left out: the model has none of those devices.)
 */
export const XEN_BACKEND_RULES_41 = [
  'SUBSYSTEM=="xen-backend", KERNEL=="vbd*", RUN+="/etc/xen/scripts/block $env{ACTION}"',
  'SUBSYSTEM=="xen-backend", ACTION=="remove", RUN+="/etc/xen/scripts/xen-hotplug-cleanup"',
  '',
].join('\n');

/** The same lines from 4.2 (xen-backend.rules.in): UDEV_CALL=1 lets the scripts defer to libxl. */
export const XEN_BACKEND_RULES_42 = [
  'SUBSYSTEM=="xen-backend", KERNEL=="vbd*", ENV{UDEV_CALL}="1", RUN+="/etc/xen/scripts/block $env{ACTION}"',
  'SUBSYSTEM=="xen-backend", ACTION=="remove", ENV{UDEV_CALL}="1", RUN+="/etc/xen/scripts/xen-hotplug-cleanup"',
  '',
].join('\n');

/** Where the rules are installed. */
export const XEN_BACKEND_RULES_PATH = '/etc/udev/rules.d/xen-backend.rules';
