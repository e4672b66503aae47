/**
 * The wait-for graph as both engines report it: from a blocked party, follow the first holder of each
 * wait until a holder that is not blocked (the chain ends) or one already in the chain (a cycle).
 * Pure: sim walks live Holder objects, threads walks label-keyed snapshots published by workers.
 */
import type { Holder, HolderDirectory, Millis, StallLink, WaitFor } from './engine.js';

/** A wait in a form both engines can give: what, when it times out, and the labels of its holders. */
export interface WaitNode {
  what: string;
  deadline?: Millis;
  timeoutName?: string;
  holders: readonly string[];
}

export interface Chain {
  chain: StallLink[];
  cycle: boolean;
}

/** A party found by label: its canonical label (a task's full label) and its current wait, if blocked. */
export interface Resolved {
  label: string;
  wait: WaitNode | undefined;
}

/**
 * Follow the graph from `start`. `resolve(label)` finds the party a label names (labels may be
 * references such as "dom2/worker" for the only live task of that name) or undefined if unknown.
 */
export function followChain(start: string, resolve: (label: string) => Resolved | undefined): Chain {
  const chain: StallLink[] = [];
  const seen = new Set<string>();
  let label: string | undefined = start;
  while (label !== undefined) {
    const party = resolve(label);
    if (party === undefined) break;
    const prev = chain[chain.length - 1];
    if (prev !== undefined) prev.heldBy = party.label;
    if (seen.has(party.label)) return { chain, cycle: true };
    const wait = party.wait;
    if (wait === undefined) break;
    seen.add(party.label);
    const link: StallLink = { holder: party.label, waitsFor: wait.what };
    if (wait.deadline !== undefined) link.deadline = wait.deadline;
    const next: string | undefined = wait.holders[0];
    if (next !== undefined) link.heldBy = next;
    chain.push(link);
    label = next;
  }
  return { chain, cycle: false };
}

/** A holder that stands for another one found by label (cross-domain references). */
export interface HolderRef extends Holder {
  target(): Holder | undefined;
}

export function isRef(h: Holder): h is HolderRef {
  return typeof (h as Partial<HolderRef>).target === 'function';
}

/** The same walk over live Holder objects (sim): holders are evaluated lazily, once per visited party. */
export function chainFromHolder(start: Holder): Chain {
  const byLabel = new Map<string, Holder>([[start.label, start]]);
  return followChain(start.label, (label) => {
    let holder = byLabel.get(label);
    while (holder !== undefined && isRef(holder)) holder = holder.target();
    if (holder === undefined) return undefined;
    const wait = holder.blockedOn();
    if (wait === undefined) return { label: holder.label, wait: undefined };
    const holders = wait.holders?.() ?? [];
    for (const h of holders) if (!byLabel.has(h.label)) byLabel.set(h.label, h);
    return { label: holder.label, wait: toWaitNode(wait, holders) };
  });
}

export function toWaitNode(wait: WaitFor, holders: readonly Holder[]): WaitNode {
  const node: WaitNode = { what: wait.what, holders: holders.map((h) => h.label) };
  if (wait.deadline !== undefined) node.deadline = wait.deadline;
  if (wait.timeoutName !== undefined) node.timeoutName = wait.timeoutName;
  return node;
}

/**
 * Task labels are "dom<N>/<name>#<id>" (unique across domains); ids differ between engines and runs,
 * so compare verdicts with the ids stripped. Labels that carry no id (mutexes, published holders) stay.
 */
export function labelWithoutIds(label: string): string {
  return label.replace(/#\d+$/, '');
}

/** A stall chain in a form that compares equal across engines (ids and times left out). */
export function chainVerdict(c: Chain): { links: { holder: string; waitsFor: string }[]; cycle: boolean } {
  return {
    links: c.chain.map((l) => ({ holder: labelWithoutIds(l.holder), waitsFor: l.waitsFor })),
    cycle: c.cycle,
  };
}

/**
 * A holder directory over `published` (labels this domain's code published) and the engine's `live`
 * tasks (sim: every domain's; threads: this worker's). A reference resolves to the published holder of
 * that label, else the task with exactly that label, else the only live task whose label without its id
 * is the label ("dom2/worker"); an ambiguous name resolves to nothing.
 */
export function holderDirectory(published: Map<string, Holder>, live: Iterable<Holder>): HolderDirectory {
  const resolve = (label: string): Holder | undefined => {
    const h = published.get(label);
    if (h !== undefined) return h;
    let byName: Holder | undefined;
    let count = 0;
    for (const t of live) {
      if (t.label === label) return t;
      if (labelWithoutIds(t.label) === label) {
        byName = t;
        count++;
      }
    }
    return count === 1 ? byName : undefined;
  };
  return {
    publish: (h) => {
      const old = published.get(h.label);
      if (old !== undefined && old !== h)
        throw new Error(`holders.publish: label "${h.label}" is already taken`);
      published.set(h.label, h);
      return () => {
        if (published.get(h.label) === h) published.delete(h.label);
      };
    },
    ref: (label): HolderRef => ({
      label,
      target: () => resolve(label),
      blockedOn: () => resolve(label)?.blockedOn(),
    }),
  };
}
