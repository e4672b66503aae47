import { describe, expect, it } from 'vitest';
import {
  DOMID_SELF,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTMAP_device_map,
  GNTMAP_host_map,
  GNTMAP_readonly,
  GNTST_bad_copy_arg,
  GNTST_bad_dev_addr,
  GNTST_bad_domain,
  GNTST_bad_gntref,
  GNTST_bad_handle,
  GNTST_bad_page,
  GNTST_general_error,
  GNTST_no_space,
  GNTST_okay,
  GNTST_permission_denied,
  GNTTABOP_copy,
  GNTTABOP_map_grant_ref,
  GNTTABOP_transfer,
  type GnttabCopy,
  type GnttabMapGrantRef,
  type GnttabUnmapGrantRef,
  GTF_PWT,
  GTF_permit_access,
  GTF_reading,
  GTF_readonly,
  GTF_writing,
  ReadOnlyPage,
} from '../../hypervisor/index.js';
import { makeHost, RawGrants } from './fixture.js';

function setup() {
  const host = makeHost();
  const a = host.guest({ maxGrantFrames: 4 });
  const b = host.guest({ maxMaptrackFrames: 1 });
  const raw = new RawGrants(a.hc);
  const [page] = a.hc.allocPages(1);
  const [other] = b.hc.allocPages(1);
  return { host, a, b, raw, page, other };
}

describe('GNTTABOP_map_grant_ref', () => {
  type Case = {
    name: string;
    prepare: (x: ReturnType<typeof setup>) => Partial<GnttabMapGrantRef>;
    status: number;
  };
  const cases: Case[] = [
    {
      name: 'writable host map of a writable grant',
      prepare: (x) => {
        x.raw.grant(8, x.b.domid, x.page);
        return {};
      },
      status: GNTST_okay,
    },
    {
      name: 'read-only map of a read-only grant',
      prepare: (x) => {
        x.raw.grant(8, x.b.domid, x.page, true);
        return { flags: GNTMAP_host_map | GNTMAP_readonly };
      },
      status: GNTST_okay,
    },
    {
      name: 'device-only map',
      prepare: (x) => {
        x.raw.grant(8, x.b.domid, x.page);
        return { flags: GNTMAP_device_map };
      },
      status: GNTST_okay,
    },
    {
      name: 'neither host_map nor device_map',
      prepare: (x) => {
        x.raw.grant(8, x.b.domid, x.page);
        return { flags: GNTMAP_readonly };
      },
      status: GNTST_bad_gntref,
    },
    { name: 'unknown granting domain', prepare: () => ({ dom: 77 }), status: GNTST_bad_domain },
    {
      name: 'DOMID_SELF is not a granting domain',
      prepare: () => ({ dom: DOMID_SELF }),
      status: GNTST_bad_domain,
    },
    { name: 'ref beyond the table', prepare: () => ({ ref: 512 }), status: GNTST_bad_gntref },
    { name: 'entry not permit_access', prepare: () => ({}), status: GNTST_general_error },
    {
      name: 'entry granted to another domain',
      prepare: (x) => {
        x.raw.grant(8, 0, x.page);
        return {};
      },
      status: GNTST_general_error,
    },
    {
      name: 'write map of a read-only grant',
      prepare: (x) => {
        x.raw.grant(8, x.b.domid, x.page, true);
        return {};
      },
      status: GNTST_general_error,
    },
    {
      name: 'sub_page entry (type mismatch)',
      prepare: (x) => {
        x.raw.grant(8, x.b.domid, x.page);
        x.raw.setFlags(8, GTF_permit_access | 0x100 | 2);
        return {};
      },
      status: GNTST_general_error,
    },
    {
      name: 'frame not owned by the granter',
      prepare: (x) => {
        x.raw.grant(8, x.b.domid, x.other);
        return {};
      },
      status: GNTST_bad_page,
    },
    {
      name: 'frame beyond machine memory',
      prepare: (x) => {
        x.raw.grant(8, x.b.domid, 0xfffff);
        return {};
      },
      status: GNTST_bad_page,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const x = setup();
      const over = c.prepare(x);
      const op: GnttabMapGrantRef = {
        hostAddr: 0x1000,
        flags: GNTMAP_host_map,
        ref: 8,
        dom: x.a.domid,
        ...over,
      };
      expect(x.b.hc.grantTableOp(GNTTABOP_map_grant_ref, [op])).toBe(0);
      expect(op.status).toBe(c.status);
      if (c.status === GNTST_okay) {
        expect(op.handle).toBe(0);
        expect(op.devBusAddr).toBe(x.page * 4096);
        const ro = (op.flags & GNTMAP_readonly) !== 0;
        expect(x.raw.flags(8) & (GTF_reading | GTF_writing)).toBe(
          ro ? GTF_reading : GTF_reading | GTF_writing,
        );
        expect(op.page instanceof ReadOnlyPage).toBe(ro);
      } else {
        expect(op.handle).toBeUndefined();
        // A failed map leaves no pin and no maptrack entry behind.
        if (op.dom === x.a.domid && op.ref === 8)
          expect(x.raw.flags(8) & (GTF_reading | GTF_writing)).toBe(0);
        expect(x.host.hv.domainInfo(x.b.domid)?.mappedForeignGrants).toBe(0);
      }
    });
  }

  it('maptrack exhaustion gives no_space (limit 1 frame = 256 handles)', () => {
    const x = setup();
    for (const ref of [8, 9, 10]) x.raw.grant(ref, x.b.domid, x.page, true);
    const handles: number[] = [];
    for (let i = 0; i < 256; i++) {
      // 128 pins per ref: the pin counters stay below their overflow bit.
      const r = x.b.hc.mapGrant(x.a.domid, i < 128 ? 8 : 9, { readonly: true });
      expect(r.status).toBe(GNTST_okay);
      handles.push(r.handle);
    }
    expect(new Set(handles).size).toBe(256);
    expect(x.b.hc.mapGrant(x.a.domid, 10, { readonly: true }).status).toBe(GNTST_no_space);
    expect(x.raw.flags(10) & GTF_reading).toBe(0);
    for (const h of handles) expect(x.b.hc.unmapGrant(h)).toBe(GNTST_okay);
    expect(x.raw.flags(8) & (GTF_reading | GTF_writing)).toBe(0);
    expect(x.b.hc.mapGrant(x.a.domid, 10, { readonly: true }).status).toBe(GNTST_okay);
  });

  it('pin counter overflow: once a counter reaches 128 every further pin fails', () => {
    const x = setup();
    x.raw.grant(8, x.b.domid, x.page, true);
    for (let i = 0; i < 128; i++)
      expect(x.b.hc.mapGrant(x.a.domid, 8, { readonly: true }).status).toBe(GNTST_okay);
    expect(x.b.hc.mapGrant(x.a.domid, 8, { readonly: true }).status).toBe(GNTST_general_error);
    // Xen tests the whole pin word (pin & 0x80808080), so a device pin is refused too.
    expect(x.b.hc.mapGrant(x.a.domid, 8, { readonly: true, host: false, device: true }).status).toBe(
      GNTST_general_error,
    );
    expect(x.b.hc.unmapGrant(0)).toBe(GNTST_okay);
    expect(x.b.hc.mapGrant(x.a.domid, 8, { readonly: true, host: false, device: true }).status).toBe(
      GNTST_okay,
    );
  });

  it('an entry pinned by one domain cannot be mapped by another', () => {
    const x = setup();
    const c = x.host.guest();
    x.raw.grant(8, x.b.domid, x.page);
    expect(x.b.hc.mapGrant(x.a.domid, 8).status).toBe(GNTST_okay);
    x.raw.grant(8, c.domid, x.page); // guest re-aims the live entry
    expect(c.hc.mapGrant(x.a.domid, 8).status).toBe(GNTST_general_error);
  });

  it('a read pin does not recheck the entry; a later write pin re-validates readonly', () => {
    const x = setup();
    x.raw.grant(8, x.b.domid, x.page);
    expect(x.b.hc.mapGrant(x.a.domid, 8, { readonly: true }).status).toBe(GNTST_okay);
    // The guest zeroes the entry behind Xen's back: further read pins still work (active entry).
    x.raw.setFlags(8, GTF_reading);
    expect(x.b.hc.mapGrant(x.a.domid, 8, { readonly: true }).status).toBe(GNTST_okay);
    x.raw.setFlags(8, GTF_permit_access | GTF_readonly | GTF_reading);
    expect(x.b.hc.mapGrant(x.a.domid, 8).status).toBe(GNTST_general_error);
  });

  it('gives up after 5 CMPXCHG attempts on an entry the guest keeps changing', () => {
    const x = setup();
    x.raw.grant(8, x.b.domid, x.page);
    const { array, index } = x.raw.flagsIndex(8);
    const real = Atomics.compareExchange;
    let calls = 0;
    const racing = (tries: number) =>
      ((arr: Uint16Array, i: number, expected: number, value: number) => {
        if (arr.buffer === array.buffer && i === (array.byteOffset >> 1) + index && calls++ < tries) {
          Atomics.xor(arr, i, GTF_PWT); // the guest flips a cache bit just before Xen's CMPXCHG
        }
        return real(arr, i, expected, value);
      }) as typeof Atomics.compareExchange;
    try {
      Atomics.compareExchange = racing(5);
      expect(x.b.hc.mapGrant(x.a.domid, 8).status).toBe(GNTST_general_error);
      expect(calls).toBe(5);
      calls = 0;
      Atomics.compareExchange = racing(4);
      expect(x.b.hc.mapGrant(x.a.domid, 8).status).toBe(GNTST_okay);
    } finally {
      Atomics.compareExchange = real;
    }
  });

  it('writable map hands out the real shared bytes; read-only has no write path', () => {
    const x = setup();
    const mine = x.a.hc.page(x.page);
    mine[100] = 7;
    x.raw.grant(8, x.b.domid, x.page);
    x.raw.grant(9, x.b.domid, x.page, true);
    const w = x.b.hc.mapGrant(x.a.domid, 8);
    const r = x.b.hc.mapGrant(x.a.domid, 9, { readonly: true });
    const wp = w.page as Uint8Array;
    expect(wp.length).toBe(4096);
    expect(wp[100]).toBe(7);
    wp[200] = 9;
    expect(mine[200]).toBe(9);
    const rp = r.page as ReadOnlyPage;
    expect(rp.at(200)).toBe(9);
    mine[201] = 5; // granter's later writes are visible, not a snapshot
    expect(rp.at(201)).toBe(5);
    expect((rp as unknown as Record<string, unknown>).set).toBeUndefined();
    expect(() => rp.at(4096)).toThrow(RangeError);
  });

  it('rejects unrepresentable arguments before doing anything', () => {
    const x = setup();
    x.raw.grant(8, x.b.domid, x.page);
    const good: GnttabMapGrantRef = { hostAddr: 0, flags: GNTMAP_host_map, ref: 8, dom: x.a.domid };
    const bad = { hostAddr: 0, flags: GNTMAP_host_map, ref: -1, dom: x.a.domid };
    expect(() => x.b.hc.grantTableOp(GNTTABOP_map_grant_ref, [good, bad])).toThrow(/ops\[1\]\.ref/);
    expect(good.status).toBeUndefined();
    expect(x.raw.flags(8) & GTF_reading).toBe(0);
    expect(x.b.hc.grantTableOp(GNTTABOP_transfer, [])).toBe(-38);
  });
});

describe('GNTTABOP_unmap_grant_ref', () => {
  it.each([
    {
      name: 'host mapping with host_addr',
      flags: GNTMAP_host_map,
      host: 1,
      dev: 0,
      status: GNTST_okay,
      freed: true,
    },
    {
      name: 'host mapping without host_addr does nothing',
      flags: GNTMAP_host_map,
      host: 0,
      dev: 0,
      status: GNTST_okay,
      freed: false,
    },
    {
      name: 'device mapping with matching bus address',
      flags: GNTMAP_device_map,
      host: 0,
      dev: 'bus',
      status: GNTST_okay,
      freed: true,
    },
    {
      name: 'device mapping with wrong bus address',
      flags: GNTMAP_device_map,
      host: 0,
      dev: 4096 * 3,
      status: GNTST_bad_dev_addr,
      freed: false,
    },
    {
      name: 'host+device, only host removed',
      flags: GNTMAP_device_map | GNTMAP_host_map,
      host: 1,
      dev: 0,
      status: GNTST_okay,
      freed: false,
    },
    {
      name: 'host+device, both removed',
      flags: GNTMAP_device_map | GNTMAP_host_map,
      host: 1,
      dev: 'bus',
      status: GNTST_okay,
      freed: true,
    },
  ])('$name', ({ flags, host, dev, status, freed }) => {
    const x = setup();
    x.raw.grant(8, x.b.domid, x.page);
    const m = x.b.hc.mapGrantRef({ hostAddr: 0x5000, flags, ref: 8, dom: x.a.domid });
    expect(m.status).toBe(GNTST_okay);
    const op: GnttabUnmapGrantRef = {
      hostAddr: host,
      devBusAddr: dev === 'bus' ? (m.devBusAddr as number) : (dev as number),
      handle: m.handle as number,
    };
    x.b.hc.unmapGrantRef(op);
    expect(op.status).toBe(status);
    expect(x.host.hv.domainInfo(x.b.domid)?.mappedForeignGrants).toBe(freed ? 0 : 1);
    expect(x.raw.flags(8) & (GTF_reading | GTF_writing)).toBe(freed ? 0 : GTF_reading | GTF_writing);
  });

  it.each([
    { name: 'handle beyond the maptrack limit', handle: 4096 },
    { name: 'handle never used', handle: 5 },
  ])('$name -> bad_handle', ({ handle }) => {
    const x = setup();
    x.raw.grant(8, x.b.domid, x.page);
    x.b.hc.mapGrant(x.a.domid, 8); // grows the maptrack to one frame
    expect(x.b.hc.unmapGrantRef({ hostAddr: 1, devBusAddr: 0, handle }).status).toBe(GNTST_bad_handle);
  });

  it('double unmap of the same handle -> bad_handle', () => {
    const x = setup();
    x.raw.grant(8, x.b.domid, x.page);
    const m = x.b.hc.mapGrant(x.a.domid, 8);
    expect(x.b.hc.unmapGrant(m.handle)).toBe(GNTST_okay);
    expect(x.b.hc.unmapGrant(m.handle)).toBe(GNTST_bad_handle);
  });

  it('GTF_writing goes with the last writable pin, GTF_reading with the last pin', () => {
    const x = setup();
    x.raw.grant(8, x.b.domid, x.page);
    const w = x.b.hc.mapGrant(x.a.domid, 8);
    const r = x.b.hc.mapGrant(x.a.domid, 8, { readonly: true });
    expect(x.raw.flags(8) & (GTF_reading | GTF_writing)).toBe(GTF_reading | GTF_writing);
    x.b.hc.unmapGrant(w.handle);
    expect(x.raw.flags(8) & (GTF_reading | GTF_writing)).toBe(GTF_reading);
    x.b.hc.unmapGrant(r.handle);
    expect(x.raw.flags(8)).toBe(GTF_permit_access);
  });

  it('keeps a mapping alive when the granter zeroes the flags, and clears the Xen bits at unmap', () => {
    const x = setup();
    x.a.hc.page(x.page)[0] = 0xaa;
    x.raw.grant(8, x.b.domid, x.page);
    const m = x.b.hc.mapGrant(x.a.domid, 8);
    x.raw.setFlags(8, GTF_reading | GTF_writing); // guest clobbers its entry while mapped
    expect((m.page as Uint8Array)[0]).toBe(0xaa);
    expect(x.b.hc.unmapGrant(m.handle)).toBe(GNTST_okay);
    expect(x.raw.flags(8)).toBe(0);
  });
});

describe('GNTTABOP_copy', () => {
  function copyOp(
    over: Partial<GnttabCopy> & { src?: Partial<GnttabCopy['source']>; dst?: Partial<GnttabCopy['dest']> },
    x: ReturnType<typeof setup>,
  ): GnttabCopy {
    return {
      source: { ref: 8, domid: x.a.domid, offset: 0, ...over.src },
      dest: { gmfn: x.other, domid: DOMID_SELF, offset: 0, ...over.dst },
      len: over.len ?? 16,
      flags: over.flags ?? GNTCOPY_source_gref,
    };
  }
  const cases: {
    name: string;
    grant?: 'rw' | 'ro' | 'none';
    op: Partial<GnttabCopy> & { src?: Partial<GnttabCopy['source']>; dst?: Partial<GnttabCopy['dest']> };
    status: number;
  }[] = [
    { name: 'gref source (read-only grant) into own frame', grant: 'ro', op: {}, status: GNTST_okay },
    {
      name: 'own frame into a writable gref dest',
      grant: 'rw',
      op: {
        flags: GNTCOPY_dest_gref,
        src: { ref: undefined, gmfn: -1, domid: DOMID_SELF },
        dst: { ref: 8, gmfn: undefined, domid: -2 },
      },
      status: GNTST_okay,
    },
    {
      name: 'gref dest must be writable',
      grant: 'ro',
      op: {
        flags: GNTCOPY_dest_gref,
        src: { ref: undefined, gmfn: -1, domid: DOMID_SELF },
        dst: { ref: 8, gmfn: undefined, domid: -2 },
      },
      status: GNTST_general_error,
    },
    {
      name: 'source offset + len beyond the page',
      grant: 'ro',
      op: { src: { offset: 4090 }, len: 16 },
      status: GNTST_bad_copy_arg,
    },
    {
      name: 'dest offset + len beyond the page',
      grant: 'ro',
      op: { dst: { offset: 4095 }, len: 2 },
      status: GNTST_bad_copy_arg,
    },
    {
      name: 'exactly to the end of the page',
      grant: 'ro',
      op: { src: { offset: 4080 }, dst: { offset: 4080 }, len: 16 },
      status: GNTST_okay,
    },
    { name: 'len 0 is a no-op', grant: 'ro', op: { len: 0 }, status: GNTST_okay },
    {
      name: 'frame of another domain without a gref',
      grant: 'ro',
      op: { flags: 0, src: { gmfn: 1, domid: 0 } },
      status: GNTST_permission_denied,
    },
    { name: 'unknown source domain', grant: 'ro', op: { src: { domid: 99 } }, status: GNTST_bad_domain },
    { name: 'ungranted source ref', grant: 'none', op: {}, status: GNTST_general_error },
    {
      name: 'source ref beyond the table',
      grant: 'ro',
      op: { src: { ref: 4096 } },
      status: GNTST_bad_gntref,
    },
    { name: 'own "frame" that is not ours', grant: 'ro', op: { dst: { gmfn: 0 } }, status: GNTST_bad_page },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const x = setup();
      const src = x.a.hc.page(x.page);
      for (let i = 0; i < 4096; i++) src[i] = i & 0xff;
      if (c.grant === 'rw') x.raw.grant(8, x.b.domid, x.page);
      if (c.grant === 'ro') x.raw.grant(8, x.b.domid, x.page, true);
      const op = copyOp(c.op, x);
      if (op.source.gmfn === -1) op.source.gmfn = x.other;
      if (op.dest.domid === -2) op.dest.domid = x.a.domid;
      const dest = x.b.hc.page(x.other);
      dest.fill(0xee);
      const before = src.slice();
      expect(x.b.hc.grantTableOp(GNTTABOP_copy, [op])).toBe(0);
      expect(op.status).toBe(c.status);
      // Never leaves a pin behind.
      expect(x.raw.flags(8) & (GTF_reading | GTF_writing)).toBe(0);
      if (c.status !== GNTST_okay || op.len === 0) {
        expect(dest.every((v) => v === 0xee)).toBe(true);
        expect(src).toEqual(before);
      } else if (op.flags & GNTCOPY_source_gref) {
        expect([...dest.subarray(op.dest.offset, op.dest.offset + op.len)]).toEqual([
          ...src.subarray(op.source.offset, op.source.offset + op.len),
        ]);
      } else {
        expect(src.subarray(0, op.len).every((v) => v === 0xee)).toBe(true);
      }
    });
  }
});

describe('GNTTABOP_setup_table / query_size', () => {
  it.each([
    { name: 'own table, grow to 3', caller: 'a', dom: DOMID_SELF, nr: 3, status: GNTST_okay },
    { name: 'beyond the domain maximum', caller: 'a', dom: DOMID_SELF, nr: 5, status: GNTST_general_error },
    { name: 'another domain, unprivileged', caller: 'b', dom: 'a', nr: 1, status: GNTST_permission_denied },
    { name: 'another domain, privileged', caller: 'd0', dom: 'a', nr: 2, status: GNTST_okay },
    { name: 'unknown domain', caller: 'a', dom: 99, nr: 1, status: GNTST_bad_domain },
  ])('setup_table: $name', ({ caller, dom, nr, status }) => {
    const x = setup();
    const hc = caller === 'a' ? x.a.hc : caller === 'b' ? x.b.hc : x.host.d0;
    const st = hc.setupTable(nr, dom === 'a' ? x.a.domid : (dom as number));
    expect(st.status).toBe(status);
    if (status === GNTST_okay) {
      expect(st.frameList).toHaveLength(nr);
      expect(x.a.hc.querySize()).toMatchObject({ status: 0, nrFrames: nr, maxNrFrames: 4 });
      // Frames are Xen's, shared with the granter only.
      for (const mfn of st.frameList ?? []) {
        expect(x.a.hc.page(mfn)).toHaveLength(4096);
        expect(() => x.b.hc.page(mfn)).toThrow(/does not belong/);
      }
    }
  });

  it.each([
    { name: 'self', caller: 'a', dom: DOMID_SELF, status: GNTST_okay },
    { name: 'other, unprivileged', caller: 'b', dom: 'a', status: GNTST_permission_denied },
    { name: 'other, privileged', caller: 'd0', dom: 'a', status: GNTST_okay },
    { name: 'unknown', caller: 'd0', dom: 1234, status: GNTST_bad_domain },
  ])('query_size: $name', ({ caller, dom, status }) => {
    const x = setup();
    const hc = caller === 'a' ? x.a.hc : caller === 'b' ? x.b.hc : x.host.d0;
    const q = hc.querySize(dom === 'a' ? x.a.domid : (dom as number));
    expect(q.status).toBe(status);
    if (status === 0) expect(q).toMatchObject({ nrFrames: 1, maxNrFrames: 4 });
  });
});
