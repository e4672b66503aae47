/**
 * Typed readers over the scenario tree: each reads one field, and on a problem records an issue naming
 * the field, the value and a valid example, then returns undefined so checking goes on.
 */

import type { IssueList, SourcePos } from './errors.js';
import { fixHint, suggest } from './suggest.js';
import { describeNode, indexPath, keyPath, type SEntry, type SMap, type SNode } from './tree.js';
import { DURATION_EXAMPLE, formatSize, parseDuration, parseSize, SIZE_EXAMPLE } from './units.js';

export class Checker {
  constructor(readonly issues: IssueList) {}

  fail(path: string, at: SNode | SourcePos | undefined, message: string): undefined {
    // A broken node was reported where it broke; a second message about it would only add noise.
    if (at !== undefined && 'kind' in at && at.kind === 'scalar' && at.broken) return undefined;
    const pos = at === undefined ? undefined : 'kind' in at ? at.pos : at;
    this.issues.add(path, pos, message);
    return undefined;
  }

  map(node: SNode, path: string, example: string): SMap | undefined {
    if (node.kind === 'map') return node;
    return this.fail(path, node, `expected a map like ${example}, got ${describeNode(node)}`);
  }

  /** A map that may be written as nothing (`shutdown:`), which reads as an empty map. */
  optionalMap(node: SNode, path: string, example: string): SMap | undefined {
    if (node.kind === 'scalar' && node.value === null) return { kind: 'map', pos: node.pos, entries: [] };
    return this.map(node, path, example);
  }

  /**
   * The entries of `map` by key, after reporting keys not in `allowed` (with a suggestion) and
   * `required` keys that are missing. `examples` gives a sample `key: value` for missing-key messages.
   */
  fields(
    map: SMap,
    path: string,
    allowed: readonly string[],
    required: readonly string[] = [],
    examples: Readonly<Record<string, string>> = {},
    what = 'key',
  ): Map<string, SEntry> {
    const found = new Map<string, SEntry>();
    const suggested = new Set<string>();
    for (const entry of map.entries) {
      if (allowed.includes(entry.key)) {
        found.set(entry.key, entry);
        continue;
      }
      const close = suggest(entry.key, allowed);
      if (close !== undefined) suggested.add(close);
      this.fail(
        keyPath(path, entry.key),
        entry.keyPos,
        `unknown ${what} "${entry.key}"${fixHint(entry.key, allowed)}`,
      );
    }
    for (const key of required) {
      // A misspelt key already says what is missing.
      if (!found.has(key) && !suggested.has(key)) {
        const example = examples[key];
        this.fail(path, map, `missing "${key}"${example === undefined ? '' : ` (e.g. ${example})`}`);
      }
    }
    return found;
  }

  list(node: SNode, path: string, example: string): SNode[] | undefined {
    if (node.kind === 'seq') return node.items;
    return this.fail(path, node, `expected a list like ${example}, got ${describeNode(node)}`);
  }

  string(node: SNode, path: string, example: string): string | undefined {
    if (node.kind === 'scalar' && typeof node.value === 'string') {
      if (node.value.trim() === '') return this.fail(path, node, `must not be empty; e.g. ${example}`);
      return node.value;
    }
    return this.fail(path, node, `expected text like ${example}, got ${describeNode(node)}`);
  }

  /** A string matching `re`; `rule` says in words what is allowed. */
  word(node: SNode, path: string, re: RegExp, rule: string, example: string): string | undefined {
    const value = this.string(node, path, example);
    if (value === undefined) return undefined;
    if (!re.test(value)) return this.fail(path, node, `bad value "${value}": ${rule}; e.g. ${example}`);
    return value;
  }

  /** Scalar text as written: numbers and booleans keep their spelling (`libxl: 4.10` is "4.10"). */
  text(node: SNode, path: string, example: string): string | undefined {
    if (node.kind === 'scalar' && node.value !== null) {
      if (typeof node.value === 'string') return node.value;
      return node.text ?? String(node.value);
    }
    return this.fail(path, node, `expected a value like ${example}, got ${describeNode(node)}`);
  }

  bool(node: SNode, path: string): boolean | undefined {
    if (node.kind === 'scalar' && typeof node.value === 'boolean') return node.value;
    return this.fail(path, node, `expected true or false, got ${describeNode(node)}`);
  }

  int(node: SNode, path: string, min: number, max: number): number | undefined {
    if (node.kind !== 'scalar' || typeof node.value !== 'number' || !Number.isInteger(node.value)) {
      return this.fail(
        path,
        node,
        `expected a whole number from ${min} to ${max}, got ${describeNode(node)}`,
      );
    }
    if (node.value < min || node.value > max) {
      return this.fail(path, node, `${node.value} is out of range; expected ${min} to ${max}`);
    }
    return node.value;
  }

  /** One of `choices`; `what` names the set in the message ("libxl version"). */
  oneOf<T extends string>(node: SNode, path: string, choices: readonly T[], what: string): T | undefined {
    const value =
      node.kind === 'scalar' && node.value !== null ? this.text(node, path, `"${choices[0]}"`) : undefined;
    const listed = choices.map((c) => `"${c}"`).join(', ');
    if (value === undefined) {
      return this.fail(path, node, `expected a ${what}, one of ${listed}; got ${describeNode(node)}`);
    }
    if ((choices as readonly string[]).includes(value)) return value as T;
    const close = suggest(value, choices);
    const hint = close === undefined ? `use one of ${listed}` : `did you mean "${close}"? (one of ${listed})`;
    return this.fail(path, node, `"${value}" is not a ${what}; ${hint}`);
  }

  size(
    node: SNode,
    path: string,
    limits: { min: number; max: number; align?: number; alignWhy?: string },
  ): number | undefined {
    if (node.kind !== 'scalar' || (typeof node.value !== 'string' && typeof node.value !== 'number')) {
      return this.fail(path, node, `expected a size ${SIZE_EXAMPLE}, got ${describeNode(node)}`);
    }
    const result = parseSize(node.value);
    if (!result.ok) return this.fail(path, node, result.message);
    const shown = typeof node.value === 'number' ? String(node.value) : `"${node.value}"`;
    if (result.value < limits.min || result.value > limits.max) {
      return this.fail(
        path,
        node,
        `size ${shown} is out of range; expected ${formatSize(limits.min)} to ${formatSize(limits.max)}`,
      );
    }
    if (limits.align !== undefined && result.value % limits.align !== 0) {
      return this.fail(
        path,
        node,
        `size ${shown} is not a multiple of ${formatSize(limits.align)}${limits.alignWhy ? ` (${limits.alignWhy})` : ''}`,
      );
    }
    return result.value;
  }

  duration(node: SNode, path: string, limits: { min?: number; max?: number } = {}): number | undefined {
    if (node.kind !== 'scalar' || (typeof node.value !== 'string' && typeof node.value !== 'number')) {
      return this.fail(path, node, `expected a duration ${DURATION_EXAMPLE}, got ${describeNode(node)}`);
    }
    const result = parseDuration(node.value);
    if (!result.ok) return this.fail(path, node, result.message);
    const min = limits.min ?? 0;
    const max = limits.max ?? 365 * 24 * 3_600_000;
    if (result.value < min || result.value > max) {
      const shown = typeof node.value === 'number' ? String(node.value) : `"${node.value}"`;
      return this.fail(path, node, `duration ${shown} is out of range; expected ${min} ms to ${max} ms`);
    }
    return result.value;
  }

  /** Each item of a list through `read`; undefined when the node is not a list. */
  each<T>(
    node: SNode,
    path: string,
    example: string,
    read: (item: SNode, path: string) => T | undefined,
  ): T[] | undefined {
    const items = this.list(node, path, example);
    if (items === undefined) return undefined;
    const out: T[] = [];
    items.forEach((item, index) => {
      const value = read(item, indexPath(path, index));
      if (value !== undefined) out.push(value);
    });
    return out;
  }
}
