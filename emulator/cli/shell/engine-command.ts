/**
 * Shell commands that run inside the engine as the controller: each goes to the program that does it
 * in the real system (xl and tap-ctl to dom0's user space, dd to the guest's kernel, xenstore to dom0's
 * client), as scenario steps do. Commands are plain data so the sim backend can run them again.
 */

import { formatPattern, type Pattern } from '../../guest/pattern.js';
import type { Machine } from '../../machine/machine.js';
import type { Controller } from '../../runtime/engine.js';
import type { GuestAction, Scenario } from '../../scenario/model.js';
import { runStep, type StepRecord } from '../../scenario/run-steps.js';
import { formatDuration } from '../../scenario/units.js';

export type EngineCommand =
  | { kind: 'xl'; argv: string[] }
  | { kind: 'tap-ctl'; argv: string[] }
  | { kind: 'xenstore-ls'; path: string }
  | { kind: 'xenstore-read'; paths: string[] }
  | { kind: 'xenstore-write'; pairs: [string, string][] }
  | { kind: 'xenstore-rm'; paths: string[] }
  | { kind: 'dd'; guest: string; action: GuestAction & { kind: 'read' | 'write' }; verify?: Pattern }
  | { kind: 'ps' }
  | { kind: 'sleep'; ms: number }
  | { kind: 'scenario-steps'; from: number; count: number };

export interface CommandOutput {
  out: string[];
  err: string[];
  ok: boolean;
}

interface ProgramResult {
  exitCode: number;
  stdout: string[];
  stderr: string[];
}

interface XsEntry {
  path: string;
  value: Uint8Array | string;
}

/** xenstore-ls's value quoting: printable ASCII as is, `"` and `\` escaped, the rest as \xNN. */
export function xenstoreValueText(value: Uint8Array | string): string {
  const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value;
  let out = '';
  for (const b of bytes) {
    if (b === 0x22 || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** xenstore-ls lines: `name = "value"`, one space of indent per level below `root`. */
export function xenstoreLsLines(root: string, entries: readonly XsEntry[]): string[] {
  const base = root === '/' ? '' : root.replace(/\/+$/, '');
  const lines: string[] = [];
  for (const e of entries) {
    if (e.path === base || e.path === root) continue;
    if (!e.path.startsWith(`${base}/`)) continue;
    const rel = e.path.slice(base.length + 1).split('/');
    lines.push(`${' '.repeat(rel.length - 1)}${rel[rel.length - 1]} = "${xenstoreValueText(e.value)}"`);
  }
  return lines;
}

/** dd's summary line: bytes, decimal and binary sizes, elapsed (virtual) time, rate. */
export function ddSummary(bytes: number, ms: number): string {
  const dec = (n: number) =>
    n >= 1e9
      ? `${(n / 1e9).toFixed(1)} GB`
      : n >= 1e6
        ? `${(n / 1e6).toFixed(1)} MB`
        : `${(n / 1e3).toFixed(1)} kB`;
  const bin = (n: number) =>
    n >= 2 ** 30
      ? `${(n / 2 ** 30).toFixed(1)} GiB`
      : n >= 2 ** 20
        ? `${(n / 2 ** 20).toFixed(1)} MiB`
        : `${(n / 1024).toFixed(1)} KiB`;
  const s = ms / 1000;
  const rate = s > 0 ? `, ${dec(bytes / s)}/s` : '';
  return `${bytes} bytes (${dec(bytes)}, ${bin(bytes)}) copied, ${s.toFixed(6)} s${rate}`;
}

/** Runs one command as the controller; failures of the command itself come back as `ok: false`. */
export async function executeEngineCommand(
  ctl: Controller,
  machine: Machine,
  scenario: Scenario | undefined,
  cmd: EngineCommand,
): Promise<CommandOutput> {
  const out: string[] = [];
  const err: string[] = [];
  try {
    switch (cmd.kind) {
      case 'xl':
      case 'tap-ctl': {
        const r = (await ctl.call(0, cmd.kind === 'xl' ? 'xl' : 'tapCtl', cmd.argv)) as ProgramResult;
        out.push(...r.stdout);
        err.push(...r.stderr);
        if (r.exitCode !== 0) err.push(`${cmd.kind}: exit status ${r.exitCode}`);
        return { out, err, ok: r.exitCode === 0 };
      }
      case 'xenstore-ls': {
        const exists = await ctl.call(0, 'xenstoreRead', cmd.path);
        if (exists === undefined && cmd.path !== '/') {
          return { out, err: [`xenstore-ls: could not access path ${cmd.path}`], ok: false };
        }
        const entries = (await ctl.call(0, 'xenstoreSnapshot', cmd.path)) as XsEntry[];
        out.push(...xenstoreLsLines(cmd.path, entries));
        return { out, err, ok: true };
      }
      case 'xenstore-read': {
        let ok = true;
        for (const p of cmd.paths) {
          const v = (await ctl.call(0, 'xenstoreRead', p)) as string | undefined;
          if (v === undefined) {
            err.push(`xenstore-read: couldn't read path ${p}`);
            ok = false;
            break;
          }
          out.push(v);
        }
        return { out, err, ok };
      }
      case 'xenstore-write':
        for (const [p, v] of cmd.pairs) await ctl.call(0, 'xenstoreWrite', p, v);
        return { out, err, ok: true };
      case 'xenstore-rm':
        for (const p of cmd.paths) await ctl.call(0, 'xenstoreRm', p);
        return { out, err, ok: true };
      case 'dd': {
        const t0 = ctl.env.now();
        await ctl.call(machine.engineDomainOf(cmd.guest), cmd.action.kind, cmd.action);
        out.push(ddSummary(cmd.action.length, ctl.env.now() - t0));
        if (cmd.verify !== undefined)
          out.push(`verify=${formatPattern(cmd.verify)}: ${cmd.action.length} bytes match`);
        return { out, err, ok: true };
      }
      case 'ps': {
        const rows = (await ctl.call(0, 'ps')) as {
          pid: number;
          ppid: number;
          state: string;
          name: string;
          args: readonly string[];
          wchan?: string;
        }[];
        out.push('  PID  PPID S COMMAND');
        for (const r of rows) {
          const cmdline = [r.name, ...r.args].join(' ');
          const wchan = r.wchan !== undefined ? `    [waits for ${r.wchan}]` : '';
          out.push(
            `${String(r.pid).padStart(5)} ${String(r.ppid).padStart(5)} ${r.state} ${cmdline}${wchan}`,
          );
        }
        return { out, err, ok: true };
      }
      case 'sleep':
        await ctl.env.sleep(cmd.ms, { what: `the shell's sleep ${formatDuration(cmd.ms)}` });
        return { out, err, ok: true };
      case 'scenario-steps': {
        if (scenario === undefined) throw new Error('no scenario is loaded');
        let ok = true;
        for (const step of scenario.steps.slice(cmd.from, cmd.from + cmd.count)) {
          const records: StepRecord[] = [];
          await runStep(ctl, machine, step, records);
          for (const r of records) {
            const where = r.line !== undefined ? ` (line ${r.line})` : '';
            const took = formatDuration(r.end - r.start);
            const head = `[${(r.start / 1000).toFixed(6)}] ${r.path}${where}: ${r.description}`;
            if (r.status === 'failed') {
              ok = false;
              out.push(`${head}: FAILED after ${took}`);
              err.push(`${r.path}${where}: ${r.error}`);
            } else {
              out.push(`${head}: ${r.status}${r.error ? ` (${r.error})` : ''}, ${took}`);
            }
            for (const l of r.stdout ?? []) out.push(`    ${l}`);
          }
        }
        return { out, err, ok };
      }
    }
  } catch (e) {
    err.push((e as Error).message);
    return { out, err, ok: false };
  }
}
