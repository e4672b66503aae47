/**
 * Entry points: load a scenario file, parse scenario text, or build a scenario in TypeScript. All three
 * check the same way and throw a ScenarioError listing every problem, sorted by position.
 */

import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, type YAMLError } from 'yaml';
import { IssueList, ScenarioError, type SourcePos } from './errors.js';
import type { DomainAbi, DomainAction, ImageFormat, Scenario, VersionsInput } from './model.js';
import { indexPath, keyPath, type SNode, treeFromPlain, treeFromYaml } from './tree.js';
import { validateScenario } from './validate.js';

/** Reads and checks `path`; errors name the file as given (`scenarios/x.yaml:12:5: ...`). */
export function loadScenarioFile(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ScenarioError([{ file: path, path: '', message: `cannot read the scenario file (${code})` }]);
  }
  return parseScenario(text, path);
}

/** Hints for the YAML errors users meet most; others keep the parser's words. */
const YAML_HINTS: Record<string, string> = {
  TAB_AS_INDENT: 'tabs are not allowed as indentation; indent with spaces',
  MULTIPLE_DOCS: 'a scenario file holds one YAML document; remove the extra ---',
  BAD_INDENT: 'bad indentation',
};

function yamlIssue(issues: IssueList, error: YAMLError, lineCounter: LineCounter): SourcePos {
  const { line, col } = lineCounter.linePos(error.pos[0]);
  const base = YAML_HINTS[error.code] ?? error.message.replace(/\.$/, '');
  const hint = error.code === 'BAD_INDENT' ? `${base}: ${lowerFirst(error.message)}` : lowerFirst(base);
  issues.add('', { line, column: col }, `YAML syntax: ${hint}`);
  return { line, column: col };
}

function lowerFirst(text: string): string {
  return text.length > 0 ? text[0].toLowerCase() + text.slice(1) : text;
}

/** Parses and checks scenario text; `fileName` is used in messages. */
export function parseScenario(text: string, fileName: string): Scenario {
  const lineCounter = new LineCounter();
  const issues = new IssueList(fileName);
  const doc = parseDocument(text, { lineCounter, uniqueKeys: false, prettyErrors: false, merge: false });
  // One mistake often yields a cascade of parser errors on the same line; the first says the most.
  const reportedLines = new Set<number>();
  for (const error of [...doc.errors, ...doc.warnings]) {
    const { line } = lineCounter.linePos(error.pos[0]);
    if (reportedLines.has(line)) continue;
    reportedLines.add(line);
    yamlIssue(issues, error, lineCounter);
  }
  if (doc.errors.length > 0) throw new ScenarioError(issues.items);
  const tree = treeFromYaml(doc, lineCounter, issues);
  const model = validateScenario(tree, issues, { file: fileName });
  if (!issues.empty) throw new ScenarioError(issues.items);
  if (tree !== undefined) collectPositions(tree, '', model.source.positions);
  return model;
}

function collectPositions(node: SNode, path: string, out: Record<string, SourcePos>): void {
  if (node.pos !== undefined && path !== '') out[path] = node.pos;
  if (node.kind === 'map') {
    for (const e of node.entries) collectPositions(e.value, keyPath(path, e.key), out);
  } else if (node.kind === 'seq') {
    for (let i = 0; i < node.items.length; i++) collectPositions(node.items[i], indexPath(path, i), out);
  }
}

type Size = string | number;
type Duration = string | number;

/**
 * The file language as a TypeScript shape: keys and values as in YAML (`'blktap-kernel'`, `'16MiB'`).
 * Steps and expectations are checked at run time like a file's; their keys are those of the file.
 */
export interface ScenarioInput {
  name: string;
  description: string;
  cites?: string;
  seed?: number;
  versions?: VersionsInput;
  host?: {
    memory?: Size;
    images?: { name: string; size: Size; format?: ImageFormat; fill?: string }[];
  };
  domains?: {
    name: string;
    memory?: Size;
    abi?: DomainAbi;
    disks?: string[];
    'on-poweroff'?: DomainAction;
    'on-crash'?: DomainAction;
    /** Guest blkfront module parameters (xen_blkfront.feature_persistent=0 ...). */
    blkfront?: {
      'feature-persistent'?: boolean;
      'max-indirect-segments'?: number;
      'max-ring-page-order'?: number;
    };
  }[];
  steps: StepInput[];
  expect?: Record<string, unknown>;
}

export interface StepInput {
  label?: string;
  reorderable?: boolean;
  'expect-elapsed'?: { 'at-least'?: Duration; 'at-most'?: Duration };
  'expect-error'?: string;
  'may-fail'?: boolean;
  [kind: string]: unknown;
}

/**
 * Builds a scenario from a plain object shaped like the file; throws a ScenarioError whose issues name
 * the field path (there is no file, so no line and column).
 */
export function scenario(input: ScenarioInput): Scenario {
  const issues = new IssueList(undefined);
  const tree = treeFromPlain(input, issues);
  const model = validateScenario(tree, issues, {});
  if (!issues.empty) throw new ScenarioError(issues.items);
  return model;
}
