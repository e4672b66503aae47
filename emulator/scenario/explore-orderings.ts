/**
 * Step orderings for `xenpv explore --orderings`.
 *
 * The rule: in every list of steps (the top-level `steps`, and the `steps` of each `repeat` and
 * `parallel`, in document order), each maximal run of two or more *adjacent* steps marked
 * `reorderable: true` is a group. A group's steps are permuted among themselves; steps outside groups,
 * and a reorderable step with no reorderable neighbour, stay where they are. The orderings explored
 * are every combination of one permutation per group (the product of the groups' factorials), the
 * order as written first, then lexicographic per group with the last group varying fastest.
 */
import type { Scenario, Step } from './model.js';

export interface ReorderGroup {
  /** Field path of the list the group sits in (`steps`, `steps[4].steps`). */
  list: string;
  /** Index of the group's first step in that list. */
  start: number;
  /** How each step is named in reports: its label, else its field path. */
  names: string[];
}

/** One permutation per group: `perm[g][i]` is the index (in the written order) of the i-th step run. */
export type Ordering = number[][];

function stepName(s: Step): string {
  return s.label ?? s.at.path;
}

/** Visits every step list in document order (the order `reorderableGroups` numbers groups in). */
function forEachList(steps: Step[], path: string, visit: (steps: Step[], path: string) => void): void {
  visit(steps, path);
  for (const s of steps) {
    if (s.kind === 'repeat' || s.kind === 'parallel') forEachList(s.steps, `${s.at.path}.steps`, visit);
  }
}

function groupsOf(steps: Step[]): { start: number; length: number }[] {
  const out: { start: number; length: number }[] = [];
  let i = 0;
  while (i < steps.length) {
    if (!steps[i].reorderable) {
      i++;
      continue;
    }
    let j = i;
    while (j < steps.length && steps[j].reorderable) j++;
    if (j - i >= 2) out.push({ start: i, length: j - i });
    i = j;
  }
  return out;
}

export function reorderableGroups(s: Scenario): ReorderGroup[] {
  const out: ReorderGroup[] = [];
  forEachList(s.steps, 'steps', (steps, list) => {
    for (const g of groupsOf(steps)) {
      out.push({ list, start: g.start, names: steps.slice(g.start, g.start + g.length).map(stepName) });
    }
  });
  return out;
}

function factorial(n: number): number {
  let f = 1;
  for (let i = 2; i <= n; i++) f *= i;
  return f;
}

/** How many orderings `orderings(groups)` yields (may exceed 2^53 for absurd groups: then Infinity). */
export function countOrderings(groups: readonly ReorderGroup[]): number {
  let n = 1;
  for (const g of groups) n *= factorial(g.names.length);
  return Number.isFinite(n) ? n : Number.POSITIVE_INFINITY;
}

/** Next permutation in lexicographic order, in place; false after the last one. */
function nextPermutation(a: number[]): boolean {
  let i = a.length - 2;
  while (i >= 0 && a[i] >= a[i + 1]) i--;
  if (i < 0) return false;
  let j = a.length - 1;
  while (a[j] <= a[i]) j--;
  [a[i], a[j]] = [a[j], a[i]];
  for (let l = i + 1, r = a.length - 1; l < r; l++, r--) [a[l], a[r]] = [a[r], a[l]];
  return true;
}

/** Every ordering, the written one first; lazily, so a cap stops the enumeration early. */
export function* orderings(groups: readonly ReorderGroup[]): Generator<Ordering> {
  const perms = groups.map((g) => g.names.map((_, i) => i));
  for (;;) {
    yield perms.map((p) => [...p]);
    // Odometer: advance the last group; when it wraps, reset it and carry into the one before.
    let g = perms.length - 1;
    while (g >= 0 && !nextPermutation(perms[g])) {
      perms[g] = perms[g].map((_, i) => i);
      g--;
    }
    if (g < 0) return;
  }
}

export function isWrittenOrder(o: Ordering): boolean {
  return o.every((p) => p.every((v, i) => v === i));
}

/** `a > b > c` per group, groups separated by `; `. */
export function describeOrdering(groups: readonly ReorderGroup[], o: Ordering): string {
  return groups.map((g, k) => o[k].map((i) => g.names[i]).join(' > ')).join('; ');
}

/** The scenario with each group's steps in the given order (a new model; `s` is not changed). */
export function applyOrdering(s: Scenario, o: Ordering): Scenario {
  if (o.length !== reorderableGroups(s).length) {
    throw new Error(`applyOrdering: ${o.length} permutation(s) for ${reorderableGroups(s).length} group(s)`);
  }
  let k = 0;
  const rebuild = (steps: Step[]): Step[] => {
    const groups = groupsOf(steps);
    const perms = groups.map(() => o[k++]);
    // Nested lists are numbered after their parent list, depth first in written order (as forEachList).
    const base = steps.map((st) =>
      st.kind === 'repeat' || st.kind === 'parallel' ? { ...st, steps: rebuild(st.steps) } : st,
    );
    const out = [...base];
    groups.forEach((g, gi) => {
      const perm = perms[gi];
      if (perm.length !== g.length || [...perm].sort((a, b) => a - b).some((v, i) => v !== i)) {
        throw new Error(`applyOrdering: group at ${g.start} needs a permutation of 0..${g.length - 1}`);
      }
      for (let i = 0; i < g.length; i++) out[g.start + i] = base[g.start + perm[i]];
    });
    return out;
  };
  return { ...s, steps: rebuild(s.steps) };
}
