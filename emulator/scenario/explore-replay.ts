/**
 * The command that replays one explored run with `xenpv run`, exactly (same trace):
 * - seeds: `xenpv run FILE --seed S` (a seed alone fixes every scheduling choice);
 * - systematic: `xenpv run FILE --seed S --replay 0,2,1,...` with every choice the run took (after a
 *   replay list ends the seed's PRNG picks, so the list is never cut short); lists longer than
 *   INLINE_CHOICES are written to a file and passed as `--replay "$(cat FILE)"` (run splits the list
 *   on commas and white space);
 * - orderings: the reordered scenario is written as a file (formatScenario, plus the demo block) and
 *   the command is `xenpv run THATFILE --seed S`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExploreClass, ExploreMode } from './explore.js';

export const INLINE_CHOICES = 64;

/** Quotes a word for a POSIX shell when it needs it. */
export function shellWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

export interface ReplayTarget {
  /** The scenario file as the user named it. */
  file: string;
  scenarioName: string;
  mode: ExploreMode;
  /** Where generated files go (created when first needed). */
  outDir: string;
}

export interface ReplayCommand {
  command: string;
  /** Files written for it. */
  files: string[];
}

export function replayCommand(t: ReplayTarget, c: ExploreClass, index: number): ReplayCommand {
  const ref = c.representative;
  const files: string[] = [];
  const write = (name: string, text: string): string => {
    mkdirSync(t.outDir, { recursive: true });
    const path = join(t.outDir, name);
    writeFileSync(path, text);
    files.push(path);
    return path;
  };
  if (t.mode === 'orderings') {
    if (ref.scenarioText === undefined)
      throw new Error('replayCommand: an ordering run without its scenario text');
    const path = write(`${t.scenarioName}.class${index + 1}.yaml`, ref.scenarioText);
    return { command: `xenpv run ${shellWord(path)} --seed ${ref.seed}`, files };
  }
  const base = `xenpv run ${shellWord(t.file)} --seed ${ref.seed}`;
  if (t.mode === 'seeds') return { command: base, files };
  if (ref.choices.length <= INLINE_CHOICES) {
    return { command: `${base} --replay ${ref.choices.join(',') || "''"}`, files };
  }
  const path = write(`${t.scenarioName}.class${index + 1}.replay`, `${ref.choices.join(',')}\n`);
  return { command: `${base} --replay "$(cat ${shellWord(path)})"`, files };
}
