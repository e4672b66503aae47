import { describe, expect, it } from 'vitest';
import {
  GNTTAB_LIST_END,
  type GrantFreeCallback,
  GrantRefHead,
  GrantTable,
} from '../../drivers/grant-table.js';
import {
  ENOSPC,
  GNTST_okay,
  GTF_permit_access,
  GTF_reading,
  GTF_readonly,
  GTF_writing,
} from '../../hypervisor/index.js';
import { makeHost } from '../hypervisor/fixture.js';

function setup(maxGrantFrames = 2) {
  const host = makeHost({ frames: 1024 });
  const fe = host.guest({ maxGrantFrames });
  const gt = new GrantTable(fe.hc);
  const pages = fe.hc.allocPages(4);
  return { host, fe, gt, pages };
}

describe('guest grant table: entries', () => {
  it('grants writable and read-only access that dom0 can map', () => {
    const { host, fe, gt, pages } = setup();
    const rw = gt.grantForeignAccess(0, pages[0], false);
    const ro = gt.grantForeignAccess(0, pages[1], true);
    expect([rw, ro]).toEqual([8, 9]);
    expect(gt.entryFlags(rw)).toBe(GTF_permit_access);
    expect(gt.entryFlags(ro)).toBe(GTF_permit_access | GTF_readonly);
    expect(host.d0.mapGrant(fe.domid, rw).status).toBe(GNTST_okay);
    expect(host.d0.mapGrant(fe.domid, ro).status).not.toBe(GNTST_okay);
    expect(host.d0.mapGrant(fe.domid, ro, { readonly: true }).status).toBe(GNTST_okay);
  });

  it.each([
    { name: 'unused entry', mapped: 'none', ends: true, flagsAfter: 0 },
    { name: 'mapped read-only', mapped: 'ro', ends: false, flagsAfter: GTF_permit_access | GTF_reading },
    {
      name: 'mapped writable',
      mapped: 'rw',
      ends: false,
      flagsAfter: GTF_permit_access | GTF_reading | GTF_writing,
    },
  ])('end_foreign_access_ref on an $name', ({ mapped, ends, flagsAfter }) => {
    const { host, fe, gt, pages } = setup();
    const ref = gt.grantForeignAccess(0, pages[0], false);
    let handle = -1;
    if (mapped !== 'none') handle = host.d0.mapGrant(fe.domid, ref, { readonly: mapped === 'ro' }).handle;
    expect(gt.queryForeignAccess(ref) !== 0).toBe(mapped !== 'none');
    expect(gt.endForeignAccessRef(ref)).toBe(ends);
    expect(gt.entryFlags(ref)).toBe(flagsAfter);
    if (handle >= 0) {
      host.d0.unmapGrant(handle);
      expect(gt.endForeignAccessRef(ref)).toBe(true);
      expect(gt.entryFlags(ref)).toBe(0);
      // Revoked: the backend can no longer map it.
      expect(host.d0.mapGrant(fe.domid, ref).status).not.toBe(GNTST_okay);
    }
  });

  it('try_end frees the ref only on success', () => {
    const { host, fe, gt, pages } = setup();
    const before = gt.freeCount;
    const ref = gt.grantForeignAccess(0, pages[0], false);
    const m = host.d0.mapGrant(fe.domid, ref);
    expect(gt.tryEndForeignAccess(ref)).toBe(false);
    expect(gt.freeCount).toBe(before - 1);
    host.d0.unmapGrant(m.handle);
    expect(gt.tryEndForeignAccess(ref)).toBe(true);
    expect(gt.freeCount).toBe(before);
  });

  it('end_foreign_access defers while mapped, keeps the page, and frees both once unmapped', () => {
    const { host, fe, gt, pages } = setup();
    const ref = gt.grantForeignAccess(0, pages[0], false);
    const m = host.d0.mapGrant(fe.domid, ref);
    gt.endForeignAccess(ref, pages[0]);
    expect(gt.deferredCount).toBe(1);
    expect(fe.hc.page(pages[0])).toHaveLength(4096); // still ours
    expect(gt.processDeferred()).toBe(1);
    host.d0.unmapGrant(m.handle);
    expect(gt.processDeferred()).toBe(0);
    expect(() => fe.hc.page(pages[0])).toThrow();
    expect(gt.allocGrantReference()).toBe(ref);
  });

  it('writable -> read-only only while not mapped writable', () => {
    const { host, fe, gt, pages } = setup();
    const ref = gt.grantForeignAccess(0, pages[0], false);
    const m = host.d0.mapGrant(fe.domid, ref);
    expect(gt.setReadonly(ref, true)).toBe(false);
    host.d0.unmapGrant(m.handle);
    expect(gt.setReadonly(ref, true)).toBe(true);
    expect(host.d0.mapGrant(fe.domid, ref).status).not.toBe(GNTST_okay);
    expect(gt.setReadonly(ref, false)).toBe(true);
    expect(host.d0.mapGrant(fe.domid, ref).status).toBe(GNTST_okay);
  });

  it.each([
    { name: 'reserved ref', ref: 3 },
    { name: 'beyond the table', ref: 512 },
    { name: 'negative', ref: -1 },
  ])('rejects $name', ({ ref }) => {
    const { gt } = setup();
    expect(() => gt.grantForeignAccessRef(ref, 0, 1, false)).toThrow(RangeError);
  });
});

describe('guest grant table: reference allocator', () => {
  it('hands out refs from 8, grows the table up to the maximum, then -ENOSPC', () => {
    const { fe, gt } = setup(2);
    expect(gt.freeCount).toBe(512 - 8);
    const refs: number[] = [];
    for (;;) {
      const r = gt.allocGrantReference();
      if (r < 0) {
        expect(r).toBe(-ENOSPC);
        break;
      }
      refs.push(r);
    }
    expect(refs[0]).toBe(8);
    expect(refs).toHaveLength(1024 - 8);
    expect(new Set(refs).size).toBe(refs.length);
    expect(gt.nrGrantFrames).toBe(2);
    expect(fe.hc.querySize().nrFrames).toBe(2);
  });

  it('private chains: alloc, claim, release, free', () => {
    const { gt } = setup(1);
    const head = new GrantRefHead();
    expect(gt.allocGrantReferences(3, head)).toBe(0);
    expect(gt.freeCount).toBe(504 - 3);
    const a = gt.claimGrantReference(head);
    const b = gt.claimGrantReference(head);
    const c = gt.claimGrantReference(head);
    expect([a, b, c]).toEqual([8, 9, 10]);
    expect(gt.claimGrantReference(head)).toBe(-ENOSPC);
    expect(gt.emptyGrantReferences(head)).toBe(true);
    gt.releaseGrantReference(head, b);
    expect(gt.claimGrantReference(head)).toBe(b);
    gt.releaseGrantReference(head, b);
    gt.releaseGrantReference(head, a);
    gt.freeGrantReferences(head);
    expect(head.head).toBe(GNTTAB_LIST_END);
    expect(gt.freeCount).toBe(504 - 1);
    expect(gt.allocGrantReferences(600, new GrantRefHead())).toBe(-ENOSPC);
    expect(gt.freeCount).toBe(503);
  });

  it('free callbacks run when enough refs come back, once, and can be cancelled', () => {
    const { gt } = setup(1);
    const head = new GrantRefHead();
    expect(gt.allocGrantReferences(gt.freeCount, head)).toBe(0);
    const calls: string[] = [];
    const cb1: GrantFreeCallback = { fn: () => {}, count: 0 };
    const cb2: GrantFreeCallback = { fn: () => {}, count: 0 };
    const cb3: GrantFreeCallback = { fn: () => {}, count: 0 };
    gt.requestFreeCallback(cb1, () => calls.push('one'), 1);
    gt.requestFreeCallback(cb1, () => calls.push('dup'), 1); // already queued: ignored
    gt.requestFreeCallback(cb2, () => calls.push('two'), 2);
    gt.requestFreeCallback(cb3, () => calls.push('three'), 1);
    gt.cancelFreeCallback(cb3);
    gt.freeGrantReference(gt.claimGrantReference(head));
    expect(calls).toEqual(['one']);
    gt.freeGrantReference(gt.claimGrantReference(head));
    expect(calls).toEqual(['one', 'two']);
    gt.freeGrantReference(gt.claimGrantReference(head));
    expect(calls).toEqual(['one', 'two']);
    // Satisfied at request time: runs at once.
    gt.requestFreeCallback(cb3, () => calls.push('now'), 1);
    expect(calls).toEqual(['one', 'two', 'now']);
  });

  it('a callback that frees and re-requests does not nest', () => {
    const { gt } = setup(1);
    const head = new GrantRefHead();
    gt.allocGrantReferences(gt.freeCount, head);
    const order: string[] = [];
    const cb: GrantFreeCallback = { fn: () => {}, count: 0 };
    let depth = 0;
    const fn = () => {
      depth++;
      order.push(`run depth ${depth}`);
      if (order.length < 3) {
        gt.requestFreeCallback(cb, fn, 1);
        gt.freeGrantReference(gt.claimGrantReference(head));
      }
      depth--;
    };
    gt.requestFreeCallback(cb, fn, 1);
    gt.freeGrantReference(gt.claimGrantReference(head));
    expect(order).toEqual(['run depth 1', 'run depth 1', 'run depth 1']);
  });
});
