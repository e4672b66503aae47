import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DOMID_SELF,
  EVTCHNSTAT_interdomain,
  EVTCHNSTAT_unbound,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTST_okay,
  type GnttabCopy,
  GTF_permit_access,
  GTF_reading,
  GTF_readonly,
  GTF_writing,
  ReadOnlyPage,
} from '../../hypervisor/index.js';
import { makeHost, RawGrants } from './fixture.js';

type GrantCmd =
  | { k: 'grant'; ref: number; to: 0 | 1; ro: boolean; frame: 0 | 1 | 2 }
  | { k: 'end'; ref: number }
  | { k: 'map'; by: 0 | 1; ref: number; ro: boolean; device: boolean }
  | { k: 'unmap'; by: 0 | 1; pick: number }
  | { k: 'copy'; by: 0 | 1; ref: number; write: boolean; offset: number; len: number };

const refArb = fc.integer({ min: 8, max: 10 });
const byArb = fc.constantFrom<0 | 1>(0, 1);
const grantCmd: fc.Arbitrary<GrantCmd> = fc.oneof(
  fc.record({
    k: fc.constant('grant' as const),
    ref: refArb,
    to: byArb,
    ro: fc.boolean(),
    frame: fc.constantFrom<0 | 1 | 2>(0, 1, 2),
  }),
  fc.record({ k: fc.constant('end' as const), ref: refArb }),
  fc.record({
    k: fc.constant('map' as const),
    by: byArb,
    ref: refArb,
    ro: fc.boolean(),
    device: fc.boolean(),
  }),
  fc.record({ k: fc.constant('unmap' as const), by: byArb, pick: fc.nat(20) }),
  fc.record({
    k: fc.constant('copy' as const),
    by: byArb,
    ref: refArb,
    write: fc.boolean(),
    offset: fc.integer({ min: 0, max: 4096 }),
    len: fc.integer({ min: 0, max: 64 }),
  }),
);

interface Mapping {
  ref: number;
  handle: number;
  ro: boolean;
  page: Uint8Array | ReadOnlyPage;
}

describe('grant table properties', () => {
  it('random grant / end / map / unmap / copy sequences keep Xen rules', () => {
    fc.assert(
      fc.property(fc.array(grantCmd, { maxLength: 60 }), (cmds) => {
        const host = makeHost({ frames: 512 });
        const a = host.guest();
        const mappers = [host.guest(), host.guest()];
        const raw = new RawGrants(a.hc);
        const frames = [...a.hc.allocPages(2), mappers[0].hc.allocPages(1)[0]];
        const scratch = mappers.map((m) => m.hc.allocPages(1)[0]);
        const granted = new Map<number, { to: number; ro: boolean; frame: number }>();
        const live: Mapping[][] = [[], []];
        const pinnedBy = (ref: number) => [0, 1].filter((i) => live[i].some((m) => m.ref === ref));

        const checkFlags = () => {
          for (let ref = 8; ref <= 10; ref++) {
            const all = [...live[0], ...live[1]].filter((m) => m.ref === ref);
            const f = raw.flags(ref);
            expect(f & GTF_reading ? 1 : 0).toBe(all.length > 0 ? 1 : 0);
            expect(f & GTF_writing ? 1 : 0).toBe(all.some((m) => !m.ro) ? 1 : 0);
          }
        };

        for (const c of cmds) {
          if (c.k === 'grant') {
            if (granted.has(c.ref)) continue; // a correct guest only grants free refs
            granted.set(c.ref, { to: mappers[c.to].domid, ro: c.ro, frame: frames[c.frame] });
            raw.grant(c.ref, mappers[c.to].domid, frames[c.frame], c.ro);
          } else if (c.k === 'end') {
            // gnttab_end_foreign_access_ref: CMPXCHG to 0 only while unpinned.
            const { array, index } = raw.flagsIndex(c.ref);
            const flags = Atomics.load(array, index);
            const busy = (flags & (GTF_reading | GTF_writing)) !== 0;
            expect(busy).toBe(pinnedBy(c.ref).length > 0);
            if (!busy && Atomics.compareExchange(array, index, flags, 0) === flags) granted.delete(c.ref);
          } else if (c.k === 'map') {
            const g = granted.get(c.ref);
            const me = mappers[c.by];
            const expectOk =
              g !== undefined &&
              g.to === me.domid &&
              g.frame !== frames[2] &&
              (c.ro || !g.ro) &&
              !pinnedBy(c.ref).includes(1 - c.by);
            const r = me.hc.mapGrant(a.domid, c.ref, { readonly: c.ro, device: c.device });
            expect(r.status === GNTST_okay).toBe(expectOk);
            if (r.status === GNTST_okay && g) {
              expect(r.devBusAddr).toBe(g.frame * 4096);
              expect(r.page instanceof ReadOnlyPage).toBe(c.ro);
              // The view is exactly the granted frame.
              const mine = a.hc.page(g.frame);
              mine[0] = (mine[0] + 1) & 0xff;
              const seen = r.page instanceof ReadOnlyPage ? r.page.at(0) : (r.page as Uint8Array)[0];
              expect(seen).toBe(mine[0]);
              live[c.by].push({
                ref: c.ref,
                handle: r.handle,
                ro: c.ro,
                page: r.page as Uint8Array | ReadOnlyPage,
              });
            }
          } else if (c.k === 'unmap') {
            const list = live[c.by];
            if (list.length === 0) continue;
            const [m] = list.splice(c.pick % list.length, 1);
            expect(mappers[c.by].hc.unmapGrant(m.handle)).toBe(GNTST_okay);
          } else {
            const g = granted.get(c.ref);
            const me = mappers[c.by];
            const before = raw.flags(c.ref);
            const op: GnttabCopy = {
              source: c.write
                ? { gmfn: scratch[c.by], domid: DOMID_SELF, offset: 0 }
                : { ref: c.ref, domid: a.domid, offset: c.offset },
              dest: c.write
                ? { ref: c.ref, domid: a.domid, offset: c.offset }
                : { gmfn: scratch[c.by], domid: DOMID_SELF, offset: 0 },
              len: c.len,
              flags: c.write ? GNTCOPY_dest_gref : GNTCOPY_source_gref,
            };
            me.hc.grantCopy(op);
            const expectOk =
              g !== undefined &&
              g.to === me.domid &&
              g.frame !== frames[2] &&
              (!c.write || !g.ro) &&
              !pinnedBy(c.ref).includes(1 - c.by) &&
              c.offset + c.len <= 4096;
            expect(op.status === GNTST_okay).toBe(expectOk);
            expect(raw.flags(c.ref)).toBe(before); // no pin survives a copy
          }
          checkFlags();
        }
        for (const i of [0, 1])
          for (const m of live[i]) expect(mappers[i].hc.unmapGrant(m.handle)).toBe(GNTST_okay);
        for (const m of mappers) expect(host.hv.domainInfo(m.domid)?.mappedForeignGrants).toBe(0);
        expect(host.hv.domainInfo(a.domid)?.pinnedGrants).toBe(0);
        for (const [ref, g] of granted) {
          expect(raw.flags(ref)).toBe(GTF_permit_access | (g.ro ? GTF_readonly : 0));
        }
      }),
      { numRuns: 150 },
    );
  });
});

type EvCmd =
  | { k: 'alloc'; dom: number; remote: number }
  | { k: 'bind'; dom: number; remote: number; port: number }
  | { k: 'close'; dom: number; port: number }
  | { k: 'send'; dom: number; port: number }
  | { k: 'destroy'; dom: number };

const domIdx = fc.integer({ min: 0, max: 2 });
const portArb = fc.integer({ min: 0, max: 7 });
const evCmd: fc.Arbitrary<EvCmd> = fc.oneof(
  fc.record({ k: fc.constant('alloc' as const), dom: domIdx, remote: domIdx }),
  fc.record({ k: fc.constant('bind' as const), dom: domIdx, remote: domIdx, port: portArb }),
  fc.record({ k: fc.constant('close' as const), dom: domIdx, port: portArb }),
  fc.record({ k: fc.constant('send' as const), dom: domIdx, port: portArb }),
  fc.record({ k: fc.constant('destroy' as const), dom: fc.integer({ min: 1, max: 2 }) }),
);

describe('event channel properties', () => {
  it('random op sequences keep both ends of every binding consistent', () => {
    fc.assert(
      fc.property(fc.array(evCmd, { maxLength: 60 }), (cmds) => {
        const host = makeHost();
        const doms = [
          { domid: 0, hc: host.d0 },
          host.guest({ maxEvtchnPort: 7 }),
          host.guest({ abi: 'x86_32', maxEvtchnPort: 7 }),
        ];
        const alive = [true, true, true];
        for (const c of cmds) {
          const d = doms[c.dom];
          if (!alive[c.dom]) continue;
          if (c.k === 'alloc') d.hc.evtchnAllocUnbound(doms[c.remote].domid);
          else if (c.k === 'bind') d.hc.evtchnBindInterdomain(doms[c.remote].domid, c.port);
          else if (c.k === 'close') d.hc.evtchnClose(c.port);
          else if (c.k === 'send') expect(d.hc.evtchnSend(c.port)).toBeLessThanOrEqual(0);
          else {
            expect(host.d0.destroyDomain(d.domid)).toBe(0);
            alive[c.dom] = false;
          }
          for (let i = 0; i < 3; i++) {
            if (!alive[i]) continue;
            for (let port = 1; port < 8; port++) {
              const st = host.d0.evtchnStatus(port, doms[i].domid);
              if (typeof st === 'number') throw new Error(`status failed ${st}`);
              if (st.status === EVTCHNSTAT_interdomain) {
                const peer = doms.findIndex((x) => x.domid === st.dom);
                expect(alive[peer]).toBe(true);
                const back = host.d0.evtchnStatus(st.port as number, st.dom as number);
                expect(back).toMatchObject({ status: EVTCHNSTAT_interdomain, dom: doms[i].domid, port });
              } else if (st.status === EVTCHNSTAT_unbound) {
                expect(doms.some((x) => x.domid === st.dom)).toBe(true);
              }
            }
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
