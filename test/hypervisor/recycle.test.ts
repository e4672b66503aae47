/**
 * A closed machine's buffers serve the next machine of the same size (SharedState.recycle): the new
 * machine starts from a clean state, hands out only zeroed frames, and behaves as on fresh buffers.
 */
import { describe, expect, it } from 'vitest';
import { Hypervisor } from '../../hypervisor/hypervisor.js';
import { PAGE_SIZE } from '../../hypervisor/layout.js';
import { MachineMemory } from '../../hypervisor/memory.js';
import { type HostLimits, SharedState } from '../../hypervisor/shared-state.js';

const LIMITS: HostLimits = { frames: 64, maxDomains: 3, maxGrantFrames: 4, maxMaptrackFrames: 4 };
const isZero = (s: SharedState, mfn: number) =>
  s.memory.subarray(mfn * PAGE_SIZE, (mfn + 1) * PAGE_SIZE).every((b) => b === 0);

describe('recycled hypervisor buffers', () => {
  it('the next machine of the same size reuses the memory, zeroes what it hands out, and starts clean', () => {
    const first = SharedState.allocate(LIMITS);
    const mem1 = new MachineMemory(first);
    const frames = mem1.allocXen(5);
    for (const f of frames) first.memory.fill(0x5a, f * PAGE_SIZE, (f + 1) * PAGE_SIZE);
    mem1.getRef(frames[0]);
    SharedState.recycle(first.buffers);

    const second = SharedState.allocate(LIMITS);
    expect(second.buffers.memory).toBe(first.buffers.memory);
    const mem2 = new MachineMemory(second);
    expect(mem2.freeFrames()).toBe(LIMITS.frames);
    expect(mem2.refs(frames[0])).toBe(0);
    // The same frames in the same order as on fresh buffers, scrubbed because they held data.
    expect(mem2.allocXen(5)).toEqual(frames);
    for (const f of frames) expect(isZero(second, f)).toBe(true);
    // A frame no machine ever handed out is still pristine.
    expect(mem2.isPristine(LIMITS.frames - 1)).toBe(true);
  });

  it('buffers of other limits are not reused, and buffers cannot be recycled twice', () => {
    const a = SharedState.allocate(LIMITS);
    SharedState.recycle(a.buffers);
    expect(() => SharedState.recycle(a.buffers)).toThrow('already recycled');
    const other = SharedState.allocate({ ...LIMITS, frames: 128 });
    expect(other.buffers.memory).not.toBe(a.buffers.memory);
    expect(SharedState.allocate(LIMITS).buffers.memory).toBe(a.buffers.memory);
  });

  it('a hypervisor built on recycled buffers boots dom0 and a guest exactly as on fresh ones', () => {
    const frames = 256;
    const fresh = Hypervisor.create({ frames, maxDomains: 3 });
    const guest = fresh.hypercalls(0).createDomain({ maxPages: 32 });
    const fp = fresh.hypercalls(0).domainInfo(guest);
    const page = fresh.hypercalls(guest).allocPages(1)[0];
    fresh.hypercalls(guest).page(page).fill(0xee);
    fresh.recycle();
    const again = Hypervisor.create({ frames, maxDomains: 3 });
    expect(again.buffers.memory).toBe(fresh.buffers.memory);
    const guest2 = again.hypercalls(0).createDomain({ maxPages: 32 });
    expect(guest2).toBe(guest);
    expect(again.hypercalls(0).domainInfo(guest2)).toEqual(fp);
    const page2 = again.hypercalls(guest2).allocPages(1)[0];
    expect(page2).toBe(page);
    expect(
      again
        .hypercalls(guest2)
        .page(page2)
        .every((b: number) => b === 0),
    ).toBe(true);
  });
});
