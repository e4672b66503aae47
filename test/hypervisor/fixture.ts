/** Shared test fixture: a small host with dom0 and guests, and raw grant-entry writers. */
import { type DomainConfig, type Hypercalls, Hypervisor } from '../../hypervisor/index.js';
import { GTF_permit_access, GTF_readonly } from '../../hypervisor/layout.js';

export interface Host {
  hv: Hypervisor;
  kicks: number[];
  d0: Hypercalls;
  guest(config?: DomainConfig): { domid: number; hc: Hypercalls };
}

export function makeHost(
  options: { frames?: number; maxDomains?: number; maxGrantFrames?: number } = {},
): Host {
  const kicks: number[] = [];
  const hv = Hypervisor.create({
    frames: options.frames ?? 2048,
    maxDomains: options.maxDomains ?? 8,
    maxGrantFrames: options.maxGrantFrames,
    kicker: { kick: (d) => kicks.push(d) },
  });
  const d0 = hv.hypercalls(0);
  return {
    hv,
    kicks,
    d0,
    guest(config = {}) {
      const domid = d0.createDomain(config);
      if (domid < 0) throw new Error(`createDomain failed: ${domid}`);
      expectOk(d0.unpauseDomain(domid));
      return { domid, hc: hv.hypercalls(domid) };
    },
  };
}

function expectOk(rc: number): void {
  if (rc !== 0) throw new Error(`unexpected rc ${rc}`);
}

/** Raw access to a domain's v1 grant entries, as its kernel would write them. */
export class RawGrants {
  private readonly f16: Uint16Array[] = [];
  private readonly f32: Uint32Array[] = [];
  constructor(hc: Hypercalls, frames = 1) {
    const st = hc.setupTable(frames);
    for (const mfn of st.frameList ?? []) {
      const v = hc.page(mfn);
      this.f16.push(new Uint16Array(v.buffer, v.byteOffset, 2048));
      this.f32.push(new Uint32Array(v.buffer, v.byteOffset, 1024));
    }
  }
  grant(ref: number, domid: number, frame: number, readonly = false): void {
    const i = ref % 512;
    this.f16[ref >> 9][i * 4 + 1] = domid;
    this.f32[ref >> 9][i * 2 + 1] = frame;
    Atomics.store(this.f16[ref >> 9], i * 4, GTF_permit_access | (readonly ? GTF_readonly : 0));
  }
  flags(ref: number): number {
    return Atomics.load(this.f16[ref >> 9], (ref % 512) * 4);
  }
  setFlags(ref: number, flags: number): void {
    Atomics.store(this.f16[ref >> 9], (ref % 512) * 4, flags);
  }
  flagsIndex(ref: number): { array: Uint16Array; index: number } {
    return { array: this.f16[ref >> 9], index: (ref % 512) * 4 };
  }
}
