/**
 * xl domain configuration files (libxlu_cfg: `key = value` settings; values are numbers, quoted
 * strings or bracketed lists of strings; `#` comments; lists may span lines), and the xl_cmdimpl.c
 * parse_config_data step that turns them into a domain spec. Errors name the file and line as libxlu
 * does ("<file>:<line>: config parsing error near `<token>': <reason>").
 */
import { parseDiskSpec } from '../disk-spec.js';
import { type DiskRequest, specWantsTap } from '../libxl/device-disk.js';
import type { DomainAction, DomainSpec } from '../libxl/domain.js';

export type CfgValue =
  | { kind: 'string'; value: string; line: number }
  | { kind: 'list'; items: string[]; line: number };

export class XlConfigError extends Error {}

/** Parses the settings of a config file; later settings of a key replace earlier ones. */
export function parseXlConfig(text: string, filename: string): Map<string, CfgValue> {
  const out = new Map<string, CfgValue>();
  let i = 0;
  let line = 1;
  const err = (near: string, reason: string) =>
    new XlConfigError(`${filename}:${line}: config parsing error near \`${near}': ${reason}`);
  const skipBlank = (newlines: boolean) => {
    for (;;) {
      const c = text[i];
      if (c === '#') {
        while (i < text.length && text[i] !== '\n') i++;
      } else if (c === ' ' || c === '\t' || c === '\r') i++;
      else if (c === '\n' && newlines) {
        line++;
        i++;
      } else return;
    }
  };
  const atom = (): string => {
    const c = text[i];
    if (c === '"' || c === "'") {
      const end = text.indexOf(c, i + 1);
      const nl = text.indexOf('\n', i + 1);
      if (end < 0 || (nl >= 0 && nl < end))
        throw err(text.slice(i, nl < 0 ? undefined : nl), 'unterminated string');
      const s = text.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    const m = /^[0-9A-Za-z_.+-]+/.exec(text.slice(i));
    if (!m) throw err(text.slice(i, i + 8).split('\n')[0] ?? '', 'syntax error');
    i += m[0].length;
    return m[0];
  };
  for (;;) {
    skipBlank(true);
    if (i >= text.length) break;
    if (text[i] === ';') {
      i++;
      continue;
    }
    const km = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (!km) throw err(text.slice(i, i + 8).split('\n')[0] ?? '', 'syntax error');
    const key = km[0];
    i += key.length;
    const keyLine = line;
    skipBlank(false);
    if (text[i] !== '=') throw err(key, 'syntax error');
    i++;
    skipBlank(false);
    if (text[i] === '[') {
      i++;
      const items: string[] = [];
      for (;;) {
        skipBlank(true);
        if (text[i] === ']') {
          i++;
          break;
        }
        if (i >= text.length) throw err(key, 'unterminated list');
        items.push(atom());
        skipBlank(true);
        if (text[i] === ',') i++;
        else if (text[i] !== ']') throw err(text.slice(i, i + 8).split('\n')[0] ?? '', 'syntax error');
      }
      out.set(key, { kind: 'list', items, line: keyLine });
    } else {
      out.set(key, { kind: 'string', value: atom(), line: keyLine });
    }
    skipBlank(false);
    if (i < text.length && text[i] !== '\n' && text[i] !== ';')
      throw err(text.slice(i, i + 8).split('\n')[0] ?? '', 'syntax error');
  }
  return out;
}

const ACTIONS: readonly DomainAction[] = ['destroy', 'restart', 'preserve', 'rename-restart'];

/** parse_config_data for the keys the model uses; unknown keys are ignored as xl does. */
export function domainSpecFromConfig(cfg: Map<string, CfgValue>, filename: string): DomainSpec {
  const str = (key: string): string | undefined => {
    const v = cfg.get(key);
    if (v === undefined) return undefined;
    if (v.kind !== 'string')
      throw new XlConfigError(`${filename}:${v.line}: ${key} must be a single value, not a list`);
    return v.value;
  };
  const num = (key: string, dflt: number): number => {
    const s = str(key);
    if (s === undefined) return dflt;
    if (!/^[0-9]+$/.test(s))
      throw new XlConfigError(`${filename}:${cfg.get(key)!.line}: ${key} = "${s}" is not a number`);
    return Number(s);
  };
  const action = (key: string, dflt: DomainAction): DomainAction => {
    const s = str(key);
    if (s === undefined) return dflt;
    if (!(ACTIONS as readonly string[]).includes(s)) {
      throw new XlConfigError(`Unknown ${key} action "${s}" specified`);
    }
    return s as DomainAction;
  };
  const name = str('name');
  if (name === undefined || name === '') throw new XlConfigError('Domain name must be specified.');
  const disks: DiskRequest[] = [];
  const d = cfg.get('disk');
  if (d !== undefined) {
    const items = d.kind === 'list' ? d.items : [d.value];
    for (const spec of items) {
      const r = parseDiskSpec(spec, filename);
      if (!r.ok) throw new XlConfigError(r.errors.map((e) => e.line).join('\n'));
      disks.push({ disk: r.disk, tap: specWantsTap(spec, r.disk), spec });
    }
  }
  return {
    name,
    memoryMb: num('memory', 128),
    vcpus: num('vcpus', 1),
    ...(str('uuid') !== undefined ? { uuid: str('uuid')! } : {}),
    extra: str('extra') ?? '',
    disks,
    onPoweroff: action('on_poweroff', 'destroy'),
    onReboot: action('on_reboot', 'restart'),
    onCrash: action('on_crash', 'destroy'),
  };
}
