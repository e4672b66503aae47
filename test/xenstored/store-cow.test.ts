import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { XsPerm } from '../../emulator/xenstored/perms.js';
import { NodeStore, walkSubtree } from '../../emulator/xenstored/store.js';

/** A plain deep-copied model of one store: path -> node, children in creation order. */
interface ModelNode {
  value: string;
  owner: number;
  generation: number;
  children: string[];
}
type Model = Map<string, ModelNode>;

const clone = (m: Model): Model => new Map([...m].map(([p, n]) => [p, { ...n, children: [...n.children] }]));
const parentOf = (p: string) => (p.lastIndexOf('/') <= 0 ? '/' : p.slice(0, p.lastIndexOf('/')));
const join = (parent: string, name: string) => (parent === '/' ? `/${name}` : `${parent}/${name}`);
const bytes = (s: string) => new Uint8Array([...s].map((c) => c.charCodeAt(0)));
const text = (b: Uint8Array) => String.fromCharCode(...b);
const perms = (owner: number): XsPerm[] => [{ id: owner, perm: 'n' }];

function dump(s: NodeStore): string[] {
  const out: string[] = [];
  walkSubtree(s.root, '/', (n, p) =>
    out.push(
      `${p}=${text(n.value)} o${n.perms[0].id} g${n.generation} [${[...n.children.keys()]}] ${n.childBytes}`,
    ),
  );
  return out;
}

function dumpModel(m: Model): string[] {
  const out: string[] = [];
  const visit = (p: string) => {
    const n = m.get(p)!;
    const childBytes = n.children.reduce((k, c) => k + c.length + 1, 0);
    out.push(`${p}=${n.value} o${n.owner} g${n.generation} [${n.children}] ${childBytes}`);
    for (const c of n.children) visit(join(p, c));
  };
  visit('/');
  return out;
}

function counts(m: Model): Map<number, number> {
  const c = new Map<number, number>([[0, 2]]); // the two special nodes
  for (const n of m.values()) c.set(n.owner, (c.get(n.owner) ?? 0) + 1);
  return c;
}

type Step =
  | { k: 'create'; store: number; at: number; name: string; owner: number; value: string }
  | { k: 'update'; store: number; at: number; value: string; owner: number }
  | { k: 'remove'; store: number; at: number }
  | { k: 'fork'; store: number }
  | { k: 'adopt'; store: number; from: number };

const idx = fc.nat(50);
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    k: fc.constant('create' as const),
    store: idx,
    at: idx,
    name: fc.constantFrom('a', 'b', 'c', 'dd'),
    owner: fc.constantFrom(0, 1, 2),
    value: fc.stringMatching(/^[a-z]{0,2}$/),
  }),
  fc.record({
    k: fc.constant('update' as const),
    store: idx,
    at: idx,
    value: fc.stringMatching(/^[a-z]{0,2}$/),
    owner: fc.constantFrom(0, 1, 2),
  }),
  fc.record({ k: fc.constant('remove' as const), store: idx, at: idx }),
  fc.record({ k: fc.constant('fork' as const), store: idx }),
  fc.record({ k: fc.constant('adopt' as const), store: idx, from: idx }),
);

describe('NodeStore copy-on-write', () => {
  it('forks stay isolated while every side changes nodes in place (fast-check against deep copies)', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
        let gen = 0;
        const first = NodeStore.initial(() => ++gen);
        const initial: Model = new Map();
        for (const line of dump(first)) {
          const [p] = line.split('=');
          const n = first.get(p)!;
          initial.set(p, { value: '', owner: 0, generation: n.generation, children: [...n.children.keys()] });
        }
        const stores: { s: NodeStore; m: Model }[] = [{ s: first, m: initial }];
        for (const st of steps) {
          const pair = stores[st.store % stores.length];
          const paths = [...pair.m.keys()];
          const path = paths[('at' in st ? st.at : 0) % paths.length];
          if (st.k === 'create') {
            const child = join(path, st.name);
            if (pair.m.has(child)) continue;
            const g = ++gen;
            const pg = ++gen;
            pair.s.create(
              path,
              st.name,
              { value: bytes(st.value), perms: perms(st.owner), generation: g },
              pg,
            );
            pair.m.set(child, { value: st.value, owner: st.owner, generation: g, children: [] });
            const parent = pair.m.get(path)!;
            parent.children.push(st.name);
            parent.generation = pg;
          } else if (st.k === 'update') {
            const g = ++gen;
            pair.s.update(path, { value: bytes(st.value), perms: perms(st.owner), generation: g });
            Object.assign(pair.m.get(path)!, { value: st.value, owner: st.owner, generation: g });
          } else if (st.k === 'remove') {
            if (path === '/') continue;
            const g = ++gen;
            const parent = parentOf(path);
            const name = path.slice(path.lastIndexOf('/') + 1);
            pair.s.remove(parent, name, g);
            for (const p of paths) if (p === path || p.startsWith(`${path}/`)) pair.m.delete(p);
            const pm = pair.m.get(parent)!;
            pm.children = pm.children.filter((c) => c !== name);
            pm.generation = g;
          } else if (st.k === 'fork') {
            stores.push({ s: pair.s.fork(), m: clone(pair.m) });
          } else {
            const from = stores[st.from % stores.length];
            if (from === pair) continue;
            // The adopted fork is not used again.
            pair.s.adopt(from.s);
            pair.m = clone(from.m);
            stores.splice(stores.indexOf(from), 1);
          }
          for (const { s, m } of stores) {
            expect(dump(s)).toEqual(dumpModel(m));
            for (const [domid, n] of counts(m)) expect(s.ownedBy(domid)).toBe(n);
            // Lookups find exactly the model's nodes, and nothing where the model has none.
            for (const [p, n] of m) {
              const got = s.get(p);
              expect(got && `${text(got.value)} o${got.perms[0].id} g${got.generation}`, p).toBe(
                `${n.value} o${n.owner} g${n.generation}`,
              );
              expect(s.get(join(p, 'zz')), `${p}/zz`).toBeUndefined();
            }
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses to change a missing node by name', () => {
    const s = NodeStore.initial(() => 1);
    expect(() => s.update('/nope', { generation: 2 })).toThrow('/nope');
    expect(() =>
      s.create('/nope', 'x', { value: new Uint8Array(0), perms: perms(0), generation: 2 }, 3),
    ).toThrow('/nope');
    expect(() => s.remove('/tool', 'nope', 2)).toThrow('/tool/nope');
    expect(() =>
      s.create('/tool', 'xenstored', { value: new Uint8Array(0), perms: perms(0), generation: 2 }, 3),
    ).toThrow('exists already');
    expect(dump(s)).toEqual([
      '/= o0 g1 [tool] 5',
      '/tool= o0 g1 [xenstored] 10',
      '/tool/xenstored= o0 g1 [] 0',
    ]);
  });
});
