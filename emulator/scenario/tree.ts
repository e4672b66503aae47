/**
 * A scenario's shape before validation, with positions: built from a YAML document (every node knows
 * its line and column) or from a plain object (no positions). The validator reads only this tree, so
 * files and the TypeScript builder are checked by the same code.
 */

import { type Document, isAlias, isMap, isScalar, isSeq, type LineCounter, type Node } from 'yaml';
import type { IssueList, SourcePos } from './errors.js';

export interface SMap {
  kind: 'map';
  pos?: SourcePos;
  entries: SEntry[];
}

export interface SEntry {
  key: string;
  keyPos?: SourcePos;
  value: SNode;
}

export interface SSeq {
  kind: 'seq';
  pos?: SourcePos;
  items: SNode[];
}

export interface SScalar {
  kind: 'scalar';
  pos?: SourcePos;
  value: string | number | boolean | null;
  /** The text as written, for plain (unquoted) YAML scalars and for numbers given in TypeScript. */
  text?: string;
  /** Stands for something already reported (a bad alias, an unsupported value); checks skip it. */
  broken?: true;
}

export type SNode = SMap | SSeq | SScalar;

/** Field path of a key under `path`: `versions.libxl`, or `expect.xenstore["/local/domain"]` for odd keys. */
export function keyPath(path: string, key: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}

export function indexPath(path: string, index: number): string {
  return `${path}[${index}]`;
}

/** Aliases expand in place; this bounds the work a hostile file can cause ("billion laughs"). */
const MAX_NODES = 200_000;

/** Converts a parsed YAML document; reports duplicate keys, odd keys and bad aliases into `issues`. */
export function treeFromYaml(doc: Document, lineCounter: LineCounter, issues: IssueList): SNode | undefined {
  let budget = MAX_NODES;
  const posOf = (node: Node | null | undefined): SourcePos | undefined => {
    const offset = node?.range?.[0];
    if (offset === undefined) return undefined;
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };

  const convert = (node: unknown, path: string, fallback: SourcePos | undefined, depth: number): SNode => {
    if (--budget < 0) {
      if (budget === -1) issues.add(path, fallback, 'too many nodes (aliases expand to more than 200000)');
      return { kind: 'scalar', value: null, pos: fallback, broken: true };
    }
    if (node === null || node === undefined) return { kind: 'scalar', value: null, pos: fallback };
    if (isAlias(node)) {
      const target = node.resolve(doc);
      if (target === undefined) {
        issues.add(path, posOf(node), `unknown alias *${node.source}; define it first with &${node.source}`);
        return { kind: 'scalar', value: null, pos: posOf(node), broken: true };
      }
      if (depth > 64) {
        issues.add(path, posOf(node), `alias *${node.source} nests too deeply`);
        return { kind: 'scalar', value: null, pos: posOf(node), broken: true };
      }
      const expanded = convert(target, path, posOf(node), depth + 1);
      // Errors inside an expanded alias point at the alias where it is used.
      return relocate(expanded, posOf(node));
    }
    if (isMap(node)) {
      const map: SMap = { kind: 'map', pos: posOf(node) ?? fallback, entries: [] };
      const seen = new Map<string, SourcePos | undefined>();
      for (const pair of node.items) {
        const keyNode = pair.key as Node | null;
        const keyPos = posOf(keyNode) ?? map.pos;
        let key: string;
        if (isScalar(keyNode) && keyNode.value !== null && typeof keyNode.value !== 'object') {
          key = String(keyNode.value);
        } else {
          issues.add(path, keyPos, 'keys must be plain words like name or steps');
          continue;
        }
        const at = keyPath(path, key);
        if (seen.has(key)) {
          const first = seen.get(key);
          const where = first === undefined ? '' : ` (first at line ${first.line})`;
          issues.add(at, keyPos, `duplicate key "${key}"${where}; remove one of them`);
          continue;
        }
        seen.set(key, keyPos);
        map.entries.push({ key, keyPos, value: convert(pair.value, at, keyPos, depth) });
      }
      return map;
    }
    if (isSeq(node)) {
      const seq: SSeq = { kind: 'seq', pos: posOf(node) ?? fallback, items: [] };
      node.items.forEach((item, index) => {
        seq.items.push(convert(item, indexPath(path, index), seq.pos, depth));
      });
      return seq;
    }
    if (isScalar(node)) {
      const pos = posOf(node) ?? fallback;
      const value = node.value;
      if (
        value === null ||
        typeof value === 'string' ||
        typeof value === 'number' ||
        typeof value === 'boolean'
      ) {
        const scalar: SScalar = { kind: 'scalar', pos, value };
        if (node.type === 'PLAIN' && typeof node.source === 'string') scalar.text = node.source;
        return scalar;
      }
      issues.add(path, pos, `unsupported value ${String(value)}`);
      return { kind: 'scalar', value: null, pos, broken: true };
    }
    issues.add(path, fallback, 'unsupported YAML node');
    return { kind: 'scalar', value: null, pos: fallback, broken: true };
  };

  if (doc.contents === null) return undefined;
  return convert(doc.contents, '', { line: 1, column: 1 }, 0);
}

/** A copy of `node` in which every position is `pos`. */
function relocate(node: SNode, pos: SourcePos | undefined): SNode {
  switch (node.kind) {
    case 'scalar':
      return { ...node, pos };
    case 'seq':
      return { kind: 'seq', pos, items: node.items.map((item) => relocate(item, pos)) };
    case 'map':
      return {
        kind: 'map',
        pos,
        entries: node.entries.map((entry) => ({
          key: entry.key,
          keyPos: pos,
          value: relocate(entry.value, pos),
        })),
      };
  }
}

/** Converts a plain object given to the TypeScript builder. `undefined` values count as absent keys. */
export function treeFromPlain(value: unknown, issues: IssueList): SNode {
  const seen = new Set<unknown>();
  const convert = (node: unknown, path: string): SNode => {
    if (node === null || typeof node === 'string' || typeof node === 'boolean') {
      return { kind: 'scalar', value: node };
    }
    if (typeof node === 'number') return { kind: 'scalar', value: node, text: String(node) };
    if (typeof node === 'object') {
      if (seen.has(node)) {
        issues.add(path, undefined, 'the object refers to itself (a cycle)');
        return { kind: 'scalar', value: null, broken: true };
      }
      seen.add(node);
      try {
        if (Array.isArray(node)) {
          return { kind: 'seq', items: node.map((item, index) => convert(item, indexPath(path, index))) };
        }
        const proto = Object.getPrototypeOf(node);
        if (proto === Object.prototype || proto === null) {
          const entries: SEntry[] = [];
          for (const [key, item] of Object.entries(node)) {
            if (item === undefined) continue;
            entries.push({ key, value: convert(item, keyPath(path, key)) });
          }
          return { kind: 'map', entries };
        }
      } finally {
        seen.delete(node);
      }
    }
    issues.add(
      path,
      undefined,
      `unsupported value of type ${describeJsType(node)}; use strings, numbers, booleans, arrays and plain objects`,
    );
    return { kind: 'scalar', value: null, broken: true };
  };
  return convert(value, '');
}

function describeJsType(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'object' && value !== null) return value.constructor?.name ?? 'object';
  return typeof value;
}

/** How a node reads in an error message: `a list`, `"text"`, `12`. */
export function describeNode(node: SNode): string {
  if (node.kind === 'map') return 'a map';
  if (node.kind === 'seq') return 'a list';
  if (node.value === null) return 'nothing';
  if (typeof node.value === 'string') return JSON.stringify(node.value);
  return String(node.value);
}
