/**
 * The xl domain configuration files of a machine: one `/etc/xen/<name>.cfg` per guest of the host
 * config (name, memory in MiB, the disk specs as the scenario wrote them), so a scenario runs
 * `xl create /etc/xen/guest1.cfg` as a user would (on_poweroff / on_crash when the scenario sets them).
 * The scenario's images live in the run's work dir:
 * a relative disk target (`target=disk.img`) is made absolute there, as if xl ran in that directory.
 */
import { isAbsolute, join } from 'node:path';
import { parseDiskSpec } from '../toolstack/disk-spec.js';
import type { MachineConfig, MachineGuest } from './config.js';

const MiB = 1024 * 1024;

/** Where the config of guest `name` lives. */
export function xlConfigPath(name: string): string {
  return `/etc/xen/${name}.cfg`;
}

/**
 * The spec with its target made absolute under `workDir` (unchanged when it already is, or when the
 * spec does not parse: xl reports that with its own message at create time).
 */
export function resolveDiskTarget(spec: string, workDir: string | undefined): string {
  if (workDir === undefined) return spec;
  const parsed = parseDiskSpec(spec);
  const target = parsed.disk.pdevPath;
  if (!parsed.ok || target === null || target === '' || isAbsolute(target)) return spec;
  // The target is the last occurrence of its text that stands as a whole value (after `,`, `:`, `=`
  // or at the start, and before `,` or the end).
  const escaped = target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`(^|[,:=])${escaped}(?=,|$)`, 'g');
  let last: RegExpExecArray | undefined;
  for (let m = re.exec(spec); m !== null; m = re.exec(spec)) last = m;
  if (last === undefined) {
    throw new Error(`xl config: cannot locate disk target "${target}" in spec "${spec}"`);
  }
  const at = last.index + last[1].length;
  const out = `${spec.slice(0, at)}${join(workDir, target)}${spec.slice(at + target.length)}`;
  const check = parseDiskSpec(out);
  if (!check.ok || check.disk.pdevPath !== join(workDir, target)) {
    throw new Error(`xl config: resolving disk target "${target}" of "${spec}" under ${workDir} failed`);
  }
  return out;
}

/** libxlu's quoting: single quotes unless the text holds one. */
function quote(text: string): string {
  if (!text.includes("'")) return `'${text}'`;
  if (!text.includes('"')) return `"${text}"`;
  throw new Error(`xl config: ${text} holds both quote characters; libxlu cannot express it`);
}

export function xlConfigText(guest: MachineGuest, workDir: string | undefined): string {
  const lines = [
    `# ${guest.name}: generated from the scenario's domains: entry`,
    `name = ${quote(guest.name)}`,
    `memory = ${Math.max(1, Math.ceil(guest.memory / MiB))}`,
  ];
  if (guest.onPoweroff !== undefined) lines.push(`on_poweroff = ${quote(guest.onPoweroff)}`);
  if (guest.onCrash !== undefined) lines.push(`on_crash = ${quote(guest.onCrash)}`);
  if (guest.disks.length > 0) {
    const disks = guest.disks.map((d) => quote(resolveDiskTarget(d, workDir)));
    lines.push(`disk = [ ${disks.join(', ')} ]`);
  }
  return `${lines.join('\n')}\n`;
}

/** Path -> text of every guest's config. */
export function xlConfigFiles(machine: MachineConfig): Map<string, string> {
  return new Map(machine.guests.map((g) => [xlConfigPath(g.name), xlConfigText(g, machine.workDir)]));
}
