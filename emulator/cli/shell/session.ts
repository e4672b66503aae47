/**
 * A shell session: one machine (from a scenario's host, domains and versions, or the default host),
 * the scenario's step cursor, and the lines entered so far. `execute(line)` parses one line, runs it
 * and returns what to print; it never throws for a bad line (the error is in `err`, `ok` is false).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Pattern, parsePattern } from '../../guest/pattern.js';
import { ScenarioError } from '../../scenario/errors.js';
import type { Scenario } from '../../scenario/model.js';
import { loadRunnableScenario } from '../../scenario/run-demo.js';
import { splitCommand } from '../../scenario/run-steps.js';
import { fixHint } from '../../scenario/suggest.js';
import { parseDuration, parseSize } from '../../scenario/units.js';
import { ringwatchLines } from '../../trace/ringwatch.js';
import { renderStall, renderTimeline } from '../../trace/timeline.js';
import { vbdDeviceId } from '../../xenstored/layout.js';
import type { SessionBackend } from './backend.js';
import { defaultHost } from './default-host.js';
import type { CommandOutput, EngineCommand } from './engine-command.js';
import { allEvtchnLines, evtchnLines } from './evtchn.js';
import { allGrantLines, grantLines } from './grants.js';
import { ALIASES, COMMANDS, helpLines } from './help.js';
import { resolveDomain } from './machine-buffers.js';
import { SimBackend } from './sim-backend.js';
import { ThreadsBackend } from './threads-backend.js';

export interface SessionOptions {
  engine: 'sim' | 'threads';
  /** sim: the seed (default: the scenario's, else 1). */
  seed?: number;
  /** threads: virtual ms per real ms is 1/timeScale (default 0.01). */
  timeScale?: number;
  /** chalk colour level for timelines and stalls (0: plain). */
  colorLevel?: 0 | 1 | 2 | 3;
}

export interface LineResult extends CommandOutput {
  /** The session should end (quit, exit). */
  quit?: boolean;
}

const DEFAULT_DD_LENGTH = 64 * 1024;

class UsageError extends Error {}

function usage(name: string, problem: string): never {
  throw new UsageError(`${name}: ${problem} (usage: ${COMMANDS[name].usage})`);
}

function ok(out: string[] = []): LineResult {
  return { out, err: [], ok: true };
}

export class ShellSession {
  private backend!: SessionBackend;
  private scenario!: Scenario;
  private cursor = 0;
  private workDir = '';
  readonly lines: string[] = [];

  private constructor(private readonly options: SessionOptions) {}

  /** A session on the host of `file` (a scenario; its steps are not run), or on the default host. */
  static async open(file: string | undefined, options: SessionOptions): Promise<ShellSession> {
    const s = new ShellSession(options);
    await s.load(file === undefined ? defaultHost() : loadScenario(file));
    return s;
  }

  get engine(): 'sim' | 'threads' {
    return this.backend.engine;
  }

  get scenarioName(): string {
    return this.scenario.name;
  }

  private async load(scenario: Scenario): Promise<void> {
    const old = this.backend;
    const oldDir = this.workDir;
    const workDir = mkdtempSync(join(tmpdir(), `xenpv-shell-${scenario.name}-`));
    try {
      this.backend =
        this.options.engine === 'sim'
          ? await SimBackend.start(scenario, workDir, this.options.seed ?? scenario.seed ?? 1)
          : await ThreadsBackend.start(scenario, workDir, { timeScale: this.options.timeScale ?? 0.01 });
    } catch (e) {
      rmSync(workDir, { recursive: true, force: true });
      throw e;
    }
    this.scenario = scenario;
    this.cursor = 0;
    this.workDir = workDir;
    if (old !== undefined) {
      await old.close();
      rmSync(oldDir, { recursive: true, force: true });
    }
  }

  async close(): Promise<void> {
    await this.backend.close();
    rmSync(this.workDir, { recursive: true, force: true });
  }

  /** Runs one input line. Blank lines and # comments do nothing. */
  async execute(line: string): Promise<LineResult> {
    this.lines.push(line);
    const text = line.trim();
    if (text === '' || text.startsWith('#')) return ok();
    let words: string[];
    try {
      words = splitCommand(text);
    } catch (e) {
      return { out: [], err: [(e as Error).message], ok: false };
    }
    const [word, ...args] = words;
    const name = ALIASES[word] ?? word;
    if (COMMANDS[name] === undefined) {
      return {
        out: [],
        err: [`unknown command "${word}"${fixHint(word, Object.keys(COMMANDS))} (help lists the commands)`],
        ok: false,
      };
    }
    try {
      return await this.dispatch(name, args);
    } catch (e) {
      const text = e instanceof ScenarioError ? e.format() : (e as Error).message;
      return { out: [], err: text.split('\n'), ok: false };
    }
  }

  private async engineCommand(cmd: EngineCommand): Promise<LineResult> {
    const r = await this.backend.exec(cmd);
    const out = [...r.out];
    for (const s of r.stalls) out.push(...renderStall(s, { colorLevel: this.options.colorLevel ?? 0 }));
    const err = [...r.warnings, ...r.err];
    if (r.ended !== undefined)
      err.push(`${r.ended}; the machine cannot run more commands (run FILE starts afresh)`);
    return { out, err, ok: r.ok };
  }

  private async dispatch(name: string, args: string[]): Promise<LineResult> {
    switch (name) {
      case 'help':
        if (args.length > 1) usage('help', 'at most one command name');
        return ok(helpLines(args[0]));
      case 'quit':
        return { ...ok(), quit: true };
      case 'history':
        return ok(this.lines.map((l, i) => `${String(i + 1).padStart(5)}  ${l}`));
      case 'xl':
      case 'tap-ctl':
        if (args.length === 0) usage(name, 'name a subcommand');
        return this.engineCommand({ kind: name, argv: args });
      case 'xenstore-ls':
        if (args.length > 1) usage(name, 'at most one path');
        return this.engineCommand({ kind: 'xenstore-ls', path: checkPath(name, args[0] ?? '/') });
      case 'xenstore-read':
        if (args.length === 0) usage(name, 'name a path');
        return this.engineCommand({ kind: 'xenstore-read', paths: args.map((p) => checkPath(name, p)) });
      case 'xenstore-rm':
        if (args.length === 0) usage(name, 'name a path');
        return this.engineCommand({ kind: 'xenstore-rm', paths: args.map((p) => checkPath(name, p)) });
      case 'xenstore-write': {
        if (args.length === 0 || args.length % 2 !== 0) usage(name, 'give PATH VALUE pairs');
        const pairs: [string, string][] = [];
        for (let i = 0; i < args.length; i += 2) pairs.push([checkPath(name, args[i]), args[i + 1]]);
        return this.engineCommand({ kind: 'xenstore-write', pairs });
      }
      case 'dd':
        return this.engineCommand(this.parseDd(args));
      case 'ps':
        if (args.length > 0) usage('ps', 'takes no arguments');
        return this.engineCommand({ kind: 'ps' });
      case 'sleep': {
        if (args.length !== 1) usage('sleep', 'give one duration');
        const d = parseDuration(args[0]);
        if (!d.ok) usage('sleep', d.message);
        return this.engineCommand({ kind: 'sleep', ms: d.value });
      }
      case 'step': {
        if (args.length > 1) usage('step', 'at most one count');
        const n = args[0] === undefined ? 1 : Number(args[0]);
        if (!Number.isSafeInteger(n) || n < 1)
          usage('step', `N must be a positive integer, got "${args[0]}"`);
        return this.runSteps(n);
      }
      case 'continue':
        if (args.length > 0) usage('continue', 'takes no arguments');
        return this.runSteps(Number.POSITIVE_INFINITY);
      case 'run': {
        if (args.length !== 1) usage('run', 'give one scenario file');
        await this.load(loadScenario(args[0]));
        const head = `${this.scenario.name}: ${this.scenario.steps.length} step(s) on a fresh machine (${this.backend.engine})`;
        const r = await this.runSteps(Number.POSITIVE_INFINITY);
        return { ...r, out: [head, ...r.out] };
      }
      case 'grants':
      case 'evtchn': {
        if (args.length > 1) usage(name, 'at most one domain');
        const view = this.backend.view();
        if (args[0] === undefined) return ok(name === 'grants' ? allGrantLines(view) : allEvtchnLines(view));
        const domid = resolveDomain(view, args[0]);
        return ok(name === 'grants' ? grantLines(view, domid) : evtchnLines(view, domid));
      }
      case 'dmesg': {
        if (args.length !== 1) usage('dmesg', 'name one domain (Domain-0 or a guest)');
        const a = args[0];
        const engineDom =
          a === 'Domain-0' || a === 'dom0' || a === '0' ? 0 : this.backend.machine.engineDomainOf(a);
        return ok([...((await this.backend.progress()).dmesg[engineDom] ?? [])]);
      }
      case 'ring':
        return ok(await this.ringLines(args));
      case 'timeline': {
        let since = 0;
        if (args.length > 0) {
          if (args[0] !== '--since' || args.length !== 2) usage('timeline', 'the only option is --since T');
          const d = parseDuration(args[1]);
          if (!d.ok) usage('timeline', d.message);
          since = d.value;
        }
        const events = (await this.backend.progress()).trace.filter((e) => e.t >= since);
        return ok(
          renderTimeline(events, {
            colorLevel: this.options.colorLevel ?? 0,
            verbosity: 'normal',
            domainNames: this.backend.machine.domainNames,
          }),
        );
      }
      case 'stalls': {
        if (args.length > 0) usage('stalls', 'takes no arguments');
        const { stalls } = await this.backend.progress();
        if (stalls.length === 0) return ok(['no stalls']);
        return ok(stalls.flatMap((s) => renderStall(s, { colorLevel: this.options.colorLevel ?? 0 })));
      }
      default:
        throw new Error(`not implemented: shell command ${name}`);
    }
  }

  private parseDd(args: string[]): EngineCommand {
    const [guest, disk, op, ...rest] = args;
    if (op === undefined) usage('dd', 'give GUEST DISK and write or read');
    const guests = this.scenario.domains.map((d) => d.name);
    if (!guests.includes(guest)) usage('dd', `no guest "${guest}"${fixHint(guest, guests)}`);
    try {
      vbdDeviceId(disk);
    } catch (e) {
      usage('dd', `bad disk "${disk}": ${(e as Error).message}`);
    }
    if (op !== 'write' && op !== 'read')
      usage('dd', `the operation is write or read, got "${op}"${fixHint(op, ['write', 'read'])}`);
    let offset = 0;
    let length = DEFAULT_DD_LENGTH;
    let pattern: Pattern | undefined;
    let verify: Pattern | undefined;
    const keys = op === 'write' ? ['offset', 'len', 'pattern'] : ['offset', 'len', 'verify'];
    for (const a of rest) {
      const eq = a.indexOf('=');
      const key = eq < 0 ? a : a.slice(0, eq);
      const value = a.slice(eq + 1);
      if (eq < 0 || !keys.includes(key)) usage('dd', `unknown operand "${a}" for ${op}${fixHint(key, keys)}`);
      if (key === 'offset' || key === 'len') {
        const s = parseSize(value);
        if (!s.ok) usage('dd', `${key}: ${s.message}`);
        if (key === 'offset') offset = s.value;
        else length = s.value;
      } else {
        const p = parsePattern(value);
        if (!p.ok) usage('dd', `${key}: ${p.message}`);
        if (key === 'pattern') pattern = p.value;
        else verify = p.value;
      }
    }
    if (length <= 0) usage('dd', 'len must be at least one byte');
    if (op === 'write') {
      return {
        kind: 'dd',
        guest,
        action: { kind: 'write', disk, offset, length, pattern: pattern ?? { kind: 'seq' } },
      };
    }
    return {
      kind: 'dd',
      guest,
      action: { kind: 'read', disk, offset, length, ...(verify ? { verify } : {}) },
      ...(verify ? { verify } : {}),
    };
  }

  private async ringLines(args: string[]): Promise<string[]> {
    if (args.length > 2) usage('ring', 'at most a guest and a disk');
    let domid: number | undefined;
    let devid: number | undefined;
    if (args[0] !== undefined) domid = resolveDomain(this.backend.view(), args[0]);
    if (args[1] !== undefined) devid = vbdDeviceId(args[1]);
    const events = (await this.backend.progress()).trace.filter((e) => {
      if (e.kind !== 'ring') return false;
      const m = /^vbd-(\d+)-(\d+)/.exec(String(e.fields?.ring ?? ''));
      if (domid !== undefined && (m === null || Number(m[1]) !== domid)) return false;
      if (devid !== undefined && (m === null || Number(m[2]) !== devid)) return false;
      return true;
    });
    const lines = ringwatchLines(events, { domainNames: this.backend.machine.domainNames });
    return lines.length > 0 ? lines : ['no ring snapshots (no blkback ring has been connected yet)'];
  }

  private async runSteps(count: number): Promise<LineResult> {
    const total = this.scenario.steps.length;
    if (total === 0) {
      throw new Error(
        'not implemented: step/continue without scenario steps (single scheduler steps need an engine hook the controller does not have); load a scenario with `run FILE` or start the shell with one, or let time pass with `sleep`',
      );
    }
    if (this.cursor >= total) throw new Error(`all ${total} step(s) of ${this.scenario.name} have run`);
    const n = Math.min(count, total - this.cursor);
    const from = this.cursor;
    this.cursor += n;
    return this.engineCommand({ kind: 'scenario-steps', from, count: n });
  }
}

function checkPath(cmd: string, path: string): string {
  if (!path.startsWith('/')) usage(cmd, `give an absolute path (starting with /), got "${path}"`);
  return path;
}

function loadScenario(file: string): Scenario {
  const loaded = loadRunnableScenario(file);
  if (loaded.demo !== undefined) {
    throw new Error(
      `not implemented: ${file} has a demo: block; the shell runs scenario steps only (use xenpv run)`,
    );
  }
  return loaded.scenario;
}
