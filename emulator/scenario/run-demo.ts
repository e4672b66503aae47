/**
 * The runner's one extension to the scenario language (the model in model.ts has no place for it): a
 * top-level `demo:` block naming a built-in demonstration that runs before the steps.
 *
 *   demo:
 *     kind: hello-grant   # two guests share a page through a grant and an event channel
 *     messages: 10        # 1..100000, default 10
 *
 * The block is taken out of the text before the loader sees it (blanked character for character, so
 * every line:column the loader reports stays right).
 */
import { readFileSync } from 'node:fs';
import { isMap, isScalar, LineCounter, parseDocument } from 'yaml';
import { ScenarioError, type ScenarioIssue } from './errors.js';
import { loadScenarioFile, parseScenario } from './load.js';
import type { Scenario } from './model.js';

export const DEMO_KINDS = ['hello-grant'] as const;
export type DemoKind = (typeof DEMO_KINDS)[number];

export interface DemoSpec {
  kind: DemoKind;
  messages: number;
}

export const DEMO_MESSAGES_MAX = 100_000;

export interface RunnableScenario {
  scenario: Scenario;
  demo?: DemoSpec;
}

/** Parses scenario text with an optional `demo:` block. */
export function parseRunnableScenario(text: string, fileName: string): RunnableScenario {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: false, prettyErrors: false, merge: false });
  if (doc.errors.length > 0 || !isMap(doc.contents)) return { scenario: parseScenario(text, fileName) };
  const pair = doc.contents.items.find((p) => isScalar(p.key) && p.key.value === 'demo');
  if (pair === undefined) return { scenario: parseScenario(text, fileName) };
  const issues: ScenarioIssue[] = [];
  const at = (node: unknown): { line: number; column: number } => {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    const { line, col } = lineCounter.linePos(range?.[0] ?? 0);
    return { line, column: col };
  };
  const issue = (node: unknown, path: string, message: string) =>
    issues.push({ file: fileName, ...at(node), path, message });
  const value = pair.value;
  let demo: DemoSpec | undefined;
  if (!isMap(value)) {
    issue(value ?? pair.key, 'demo', 'must be a map like { kind: hello-grant, messages: 10 }');
  } else {
    const kindNode = value.get('kind', true);
    const kind: unknown = isScalar(kindNode) ? kindNode.value : undefined;
    let messages = 10;
    for (const item of value.items) {
      const key = isScalar(item.key) ? String(item.key.value) : '';
      if (key !== 'kind' && key !== 'messages') {
        issue(item.key, `demo.${key}`, 'unknown key; demo takes kind and messages');
      }
    }
    if (!(DEMO_KINDS as readonly unknown[]).includes(kind)) {
      issue(
        kindNode ?? value,
        'demo.kind',
        `must be one of ${DEMO_KINDS.join(', ')}, got ${JSON.stringify(kind ?? null)}`,
      );
    }
    const mNode = value.get('messages', true);
    if (mNode !== undefined) {
      const m = isScalar(mNode) ? mNode.value : undefined;
      if (typeof m !== 'number' || !Number.isInteger(m) || m < 1 || m > DEMO_MESSAGES_MAX) {
        issue(
          mNode,
          'demo.messages',
          `must be an integer in 1..${DEMO_MESSAGES_MAX}, got ${JSON.stringify(m ?? null)}`,
        );
      } else messages = m;
    }
    demo = { kind: kind as DemoKind, messages };
  }
  // Blank the demo block so the loader neither sees nor misplaces anything.
  const start = (pair.key as { range: [number, number, number] }).range[0];
  const end = (value as { range?: [number, number, number] } | null)?.range?.[2] ?? start;
  const blanked = text.slice(0, start) + text.slice(start, end).replace(/[^\n]/g, ' ') + text.slice(end);
  let scenario: Scenario;
  try {
    scenario = parseScenario(blanked, fileName);
  } catch (e) {
    if (e instanceof ScenarioError) throw new ScenarioError([...e.issues, ...issues]);
    throw e;
  }
  if (issues.length > 0) throw new ScenarioError(issues);
  return { scenario, demo };
}

/** Reads a file with an optional `demo:` block; the same errors as loadScenarioFile. */
export function loadRunnableScenario(path: string): RunnableScenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    // The loader words a missing or unreadable file precisely.
    return { scenario: loadScenarioFile(path) };
  }
  return parseRunnableScenario(text, path);
}
