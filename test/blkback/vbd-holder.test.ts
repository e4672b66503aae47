/**
 * blkback's hold on a vbd ("blkback vbd-<fe>-<devid>") names who must act, most specific first: a
 * release under way (a disconnect draining references), else the removal queued in xenwatch, else the
 * toolstack that has yet to remove the backend directory (teardown.md §3.2 W4, §2 residual race).
 */
import { describe, expect, test } from 'vitest';
import type { BlkbackContext } from '../../drivers/blkback/context.js';
import { vbdHolder } from '../../drivers/blkback/vbd.js';
import { namedHolder } from '../../emulator/kernel/kernel.js';
import type { WaitFor } from '../../emulator/runtime/engine.js';

const ctx = { removalHolders: () => [namedHolder('toolstack')] } as unknown as BlkbackContext;
const DRAIN: WaitFor = { what: 'blkif vbd-1-51712 references to drop', holders: () => [namedHolder('disk')] };
const QUEUED: WaitFor = {
  what: 'xenwatch to run the removal of backend/vbd/1/51712',
  holders: () => [namedHolder('dom0/xenwatch#3')],
};

describe('vbdHolder: who must act for the vbd to be released', () => {
  test.each([
    // [release under way, removal queued in xenwatch, what it waits for, the holder named]
    [undefined, undefined, 'removal of backend/vbd/1/51712 (by the toolstack)', 'toolstack'],
    [undefined, QUEUED, 'xenwatch to run the removal of backend/vbd/1/51712', 'dom0/xenwatch#3'],
    [DRAIN, QUEUED, 'blkif vbd-1-51712 references to drop', 'disk'],
    [DRAIN, undefined, 'blkif vbd-1-51712 references to drop', 'disk'],
  ] as const)('releasing %#', (releasing, removal, what, holder) => {
    const h = vbdHolder(ctx, 'vbd-1-51712', 'backend/vbd/1/51712', {
      releasing: () => releasing,
      removal: () => removal,
    });
    expect(h.label).toBe('blkback vbd-1-51712');
    const w = h.blockedOn()!;
    expect(w.what).toBe(what);
    expect(w.holders!().map((x) => x.label)).toEqual([holder]);
  });

  test('without release hooks it names the toolstack', () => {
    const w = vbdHolder(ctx, 'vbd-2-768', 'backend/vbd/2/768').blockedOn()!;
    expect(w.what).toBe('removal of backend/vbd/2/768 (by the toolstack)');
    expect(w.holders!().map((x) => x.label)).toEqual(['toolstack']);
  });
});
