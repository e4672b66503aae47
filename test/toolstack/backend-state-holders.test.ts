/**
 * libxl's waits on a backend's state node (libxl__ev_devstate_wait) name the party that must act: the
 * backend driver's domain xenwatch, found through the engine's holder directory.
 */
import { describe, expect, test } from 'vitest';
import { namedHolder } from '../../emulator/kernel/kernel.js';
import type { HolderDirectory } from '../../emulator/runtime/engine.js';
import type { LibxlCtx } from '../../emulator/toolstack/libxl/context.js';
import { backendStateHolders } from '../../emulator/toolstack/libxl/device.js';

const directory: HolderDirectory = {
  publish: () => () => undefined,
  ref: (label) => namedHolder(`ref:${label}`),
};
const ctxWith = (holders: HolderDirectory | undefined) => ({ host: { holders } }) as unknown as LibxlCtx;

describe('backendStateHolders', () => {
  test.each([
    // [state path, holder directory given, holders named]
    ['/local/domain/0/backend/vbd/1/51712/state', true, ['ref:dom0/xenwatch']],
    ['/local/domain/0/backend/vbd/12/768/state', true, ['ref:dom0/xenwatch']],
    // no directory: nobody named (a toolstack run without an engine directory)
    ['/local/domain/0/backend/vbd/1/51712/state', false, []],
    // driver domains are not modelled: their xenwatch has no engine label libxl could know
    ['/local/domain/3/backend/vbd/1/51712/state', true, []],
    ['/local/domain/1/device/vbd/51712/state', true, []],
    ['backend/vbd/1/51712/state', true, []],
  ] as const)('%s (directory %s)', (path, given, want) => {
    const hs = backendStateHolders(ctxWith(given ? directory : undefined), path);
    expect(hs.map((h) => h.label)).toEqual(want);
  });
});
