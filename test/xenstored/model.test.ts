import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { latin1String } from '../../drivers/xenbus/xs-wire.js';
import { XsClient } from '../../emulator/xenstored/client.js';
import { XenstoreDaemon } from '../../emulator/xenstored/daemon.js';
import { XsError } from '../../emulator/xenstored/errors.js';
import { formatPerm, parsePerm } from '../../emulator/xenstored/perms.js';
import {
  cloneModel,
  dumpModel,
  initialModel,
  type ModelTree,
  modelDirectory,
  modelRead,
  modelRm,
  modelSetPerms,
  modelWrite,
} from './reference-model.js';

const DOMS = [0, 1, 2];
const paths = fc.constantFrom(
  '/local/domain/1/a',
  '/local/domain/1/a/b',
  '/local/domain/1/c',
  '/local/domain/2/a',
  '/local/domain/2/a/b',
  '/shared',
  '/shared/x',
);
const permLists = fc.constantFrom(
  ['n1'],
  ['n1', 'r2'],
  ['n2'],
  ['b2'],
  ['n2', 'b1'],
  ['r0'],
  ['n0', 'r1', 'w2'],
);

type NodeOp =
  | { k: 'write'; dom: number; path: string; value: string; tx: boolean }
  | { k: 'mkdir' | 'read' | 'rm' | 'dir'; dom: number; path: string; tx: boolean }
  | { k: 'perms'; dom: number; path: string; perms: string[]; tx: boolean };
type TxControl = { k: 'start' | 'commit' | 'abort'; dom: number };
type Op = NodeOp | TxControl;

const op = fc.oneof(
  fc.record({
    k: fc.constant('write' as const),
    dom: fc.constantFrom(...DOMS),
    path: paths,
    value: fc.stringMatching(/^[a-z]{0,3}$/),
    tx: fc.boolean(),
  }),
  fc.record({
    k: fc.constantFrom('mkdir' as const, 'read' as const, 'rm' as const, 'dir' as const),
    dom: fc.constantFrom(...DOMS),
    path: paths,
    tx: fc.boolean(),
  }),
  fc.record({
    k: fc.constant('perms' as const),
    dom: fc.constantFrom(...DOMS),
    path: paths,
    perms: permLists,
    tx: fc.boolean(),
  }),
  fc.record({
    k: fc.constantFrom('start' as const, 'commit' as const, 'abort' as const),
    dom: fc.constantFrom(...DOMS),
  }),
) as fc.Arbitrary<Op>;

function attempt(f: () => unknown): string {
  try {
    const r = f();
    return typeof r === 'string' ? r : 'OK';
  } catch (e) {
    if (e instanceof XsError) return e.errno;
    throw e;
  }
}

interface OpenTx {
  id: number;
  snapshot: ModelTree;
  /** Model version of the live tree when the transaction started. */
  startVersion: number;
  ops: NodeOp[];
}

describe('xenstored agrees with a reference model (fast-check)', () => {
  it('random operations from dom0 and two guests, with and without transactions', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const xs = new XenstoreDaemon();
        const clients = new Map(
          DOMS.map((d) => [d, new XsClient(xs.connect({ domid: d, send: () => true }))]),
        );
        const live = initialModel();
        let version = 0;
        const setup = clients.get(0)!;
        for (const d of [1, 2]) {
          setup.mkdir(`/local/domain/${d}`);
          setup.setPerms(`/local/domain/${d}`, [parsePerm(`n${d}`)]);
          modelWrite(live, `/local/domain/${d}`, undefined, 0);
          modelSetPerms(live, `/local/domain/${d}`, [`n${d}`], 0);
        }
        const open = new Map<number, OpenTx>();
        const apply = (t: ModelTree, o: NodeOp): string => {
          if (o.k === 'write') return modelWrite(t, o.path, o.value, o.dom);
          if (o.k === 'mkdir') return modelWrite(t, o.path, undefined, o.dom);
          if (o.k === 'read') return modelRead(t, o.path, o.dom);
          if (o.k === 'dir') return modelDirectory(t, o.path, o.dom);
          if (o.k === 'rm') return modelRm(t, o.path, o.dom);
          if (o.k === 'perms') return modelSetPerms(t, o.path, o.perms, o.dom);
          throw new Error(`unknown op ${o.k}`);
        };
        for (const step of ops) {
          const c = clients.get(step.dom)!;
          const o = step as NodeOp;
          const txo = open.get(o.dom);
          if (step.k === 'start') {
            if (txo) continue;
            const id = c.transactionStart();
            open.set(o.dom, { id, snapshot: cloneModel(live), startVersion: version, ops: [] });
            continue;
          }
          if (step.k === 'commit' || step.k === 'abort') {
            if (!txo) continue;
            open.delete(o.dom);
            const got = attempt(() => c.transactionEnd(txo.id, step.k === 'commit'));
            if (step.k === 'abort') {
              expect(got).toBe('OK');
              continue;
            }
            if (version === txo.startVersion)
              expect(got, 'nothing changed outside: commit must succeed').toBe('OK');
            else expect(['OK', 'EAGAIN']).toContain(got);
            if (got === 'OK') {
              const before = dumpModel(live).join('\n');
              let wrote = false;
              for (const t of txo.ops)
                wrote = (apply(live, t) === 'OK' && (t.k === 'write' || t.k === 'perms')) || wrote;
              if (wrote || dumpModel(live).join('\n') !== before) version++;
            }
            continue;
          }
          const inTx = o.tx && txo !== undefined;
          const tx = inTx ? txo.id : 0;
          const got = attempt(() => {
            if (o.k === 'write') return c.write(o.path, o.value, tx);
            if (o.k === 'mkdir') return c.mkdir(o.path, tx);
            if (o.k === 'read') return c.read(o.path, tx);
            if (o.k === 'dir') return c.directory(o.path, tx).join(',');
            if (o.k === 'rm') return c.rm(o.path, tx);
            if (o.k === 'perms') return c.setPerms(o.path, o.perms.map(parsePerm), tx);
            throw new Error(`unknown op ${o.k}`);
          });
          if (inTx) {
            expect(got, `${JSON.stringify(o)} in transaction`).toBe(apply(txo.snapshot, o));
            txo.ops.push(o);
          } else {
            const before = dumpModel(live).join('\n');
            expect(got, JSON.stringify(o)).toBe(apply(live, o));
            // A successful write or SET_PERMS bumps generations even when nothing visible changes.
            const wrote = got === 'OK' && (o.k === 'write' || o.k === 'perms');
            if (wrote || dumpModel(live).join('\n') !== before) version++;
          }
        }
        const real = xs
          .snapshot()
          .map((e) => `${e.path}=${latin1String(e.value)} ${e.perms.map(formatPerm).join(',')}`);
        expect(real.sort()).toEqual(dumpModel(live));
        xs.checkStore();
      }),
      { numRuns: 500 },
    );
  });
});
