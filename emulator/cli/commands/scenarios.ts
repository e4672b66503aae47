/**
 * `xenpv scenarios [--dir DIR] [--json]`: the catalogue of scenario files, one entry per `*.yaml` in
 * name order: the scenario name, the first sentence of its description, its `cites:` and the versions
 * it sets itself (defaults left out). Exit 0; 2 when the directory is missing or a file is invalid
 * (the others are still listed, the invalid one with its first problem).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { ScenarioError } from '../../scenario/errors.js';
import { VERSION_SWITCHES } from '../../scenario/model.js';
import { loadRunnableScenario } from '../../scenario/run-demo.js';
import { makeChalk } from '../../trace/timeline.js';
import { type CommandIo, consoleIo } from './console-io.js';

export interface CatalogueEntry {
  file: string;
  name?: string;
  /** First sentence of `description`. */
  summary?: string;
  cites?: string;
  /** Versions the file sets, by file key (`blktap-kernel`), as written. */
  versions: Record<string, string>;
  /** Set when the file does not load: its first problem. */
  error?: string;
}

/** The repository's scenarios/ (from emulator/cli/commands/ in source, dist/emulator/... when built). */
export function defaultScenarioDir(): string {
  const depth = import.meta.url.includes('/dist/') ? '../../../../' : '../../../';
  return fileURLToPath(new URL(`${depth}scenarios/`, import.meta.url));
}

/** The first sentence: up to the first `.`, `!` or `?` followed by white space or the end. */
export function firstSentence(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  const m = /^(.*?[.!?])(\s|$)/.exec(flat);
  return (m === null ? flat : m[1]).replace(/\.$/, '');
}

export function catalogue(dir: string): CatalogueEntry[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort();
  return files.map((f) => {
    const path = join(dir, f);
    try {
      const { scenario: s } = loadRunnableScenario(path);
      const versions: Record<string, string> = {};
      for (const { key, field } of VERSION_SWITCHES) {
        if (s.source.positions[`versions.${key}`] !== undefined) versions[key] = String(s.versions[field]);
      }
      return {
        file: f,
        name: s.name,
        summary: firstSentence(s.description),
        ...(s.cites !== undefined ? { cites: s.cites } : {}),
        versions,
      };
    } catch (e) {
      const msg = e instanceof ScenarioError ? e.format().split('\n')[0] : (e as Error).message;
      return { file: f, versions: {}, error: msg };
    }
  });
}

export type ScenariosCommandIo = CommandIo;

export function scenariosCommand(args: { dir?: string; json: boolean }, io: ScenariosCommandIo): number {
  const dir = args.dir ?? defaultScenarioDir();
  let entries: CatalogueEntry[];
  try {
    entries = catalogue(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    io.err(`xenpv scenarios: cannot list ${dir} (${code}); give a directory of scenario files with --dir`);
    return 2;
  }
  if (args.json) io.out(JSON.stringify(entries, null, 2));
  else {
    const c = makeChalk(io.colorLevel);
    if (entries.length === 0) io.out(c.dim(`no scenario files (*.yaml) in ${dir}`));
    for (const e of entries) {
      if (e.error !== undefined) {
        io.out(`${c.red(e.file)}  ${c.red(`invalid: ${e.error}`)}`);
        continue;
      }
      io.out(`${c.bold(e.name ?? e.file)}  ${e.summary}`);
      io.out(c.dim(`    file: ${e.file}`));
      if (e.cites !== undefined) io.out(c.dim(`    cites: ${e.cites}`));
      const v = Object.entries(e.versions);
      io.out(
        c.dim(`    versions: ${v.length === 0 ? '(defaults)' : v.map(([k, x]) => `${k} ${x}`).join(', ')}`),
      );
    }
  }
  return entries.some((e) => e.error !== undefined) ? 2 : 0;
}

interface ScenariosArgs {
  dir?: string;
  json: boolean;
}

export const scenariosCommandModule: CommandModule<object, ScenariosArgs> = {
  command: 'scenarios',
  describe: 'List the scenario catalogue: names, one-line descriptions, citations and versions set',
  builder: (y: Argv) =>
    y
      .option('dir', {
        type: 'string',
        describe: 'Directory of scenario files (default: the scenarios/ of xenpv)',
      })
      .option('json', {
        type: 'boolean',
        default: false,
        describe: 'Print [{file, name, summary, cites, versions}]',
      })
      .example('$0 scenarios', 'what there is to run')
      .example('$0 scenarios --json', 'for scripts') as unknown as Argv<ScenariosArgs>,
  handler: (argv: ArgumentsCamelCase<ScenariosArgs>) => {
    process.exitCode = scenariosCommand(
      { ...(argv.dir !== undefined ? { dir: argv.dir } : {}), json: argv.json },
      consoleIo(),
    );
  },
};

export default scenariosCommandModule;
