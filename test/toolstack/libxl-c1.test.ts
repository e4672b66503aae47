/**
 * C1 (teardown.md §4 C1) at the toolstack level: `xl destroy` of a guest whose vbd backend is still
 * Connected (state 4). libxl 4.1's libxl__device_destroy only destroys the tapdisk for a backend that
 * is not Connected, and its one other call (after the device loop) reads the console's backend path:
 * tapdisk2 keeps running with its VBD and image. 4.2 (4f6dda6a14) reads tapdisk-params in the cleanup
 * transaction and destroys the tapdisk with it.
 */
import { describe, expect, test } from 'vitest';
import type { LibxlVersion } from '../../emulator/toolstack/libxl/host.js';
import { GUEST_CFG, onToolHost } from './libxl-harness.js';

const BE = '/local/domain/0/backend/vbd/1/51712';

async function destroyConnected(version: LibxlVersion) {
  return onToolHost({ libxl: version, configs: { '/etc/xen/guest1.cfg': GUEST_CFG } }, async (h) => {
    const create = await h.xl(['create', '/etc/xen/guest1.cfg']);
    if (create.code !== 0) throw new Error(create.out.join('\n'));
    // The state libxl branches on: what blkback writes once the frontend connected.
    await h.xs.write(`${BE}/state`, '4');
    const destroy = await h.xl(['destroy', 'guest1']);
    await h.env.sleep(100);
    const tapdisks = h.k.processes.ps().filter((p) => p.name === 'tapdisk2' && p.state !== 'Z');
    const sysfs = h.k.ns.glob('/sys/class/blktap2/blktap*');
    const sockets = h.k.ns.glob('/var/run/blktap-control/ctl*');
    const backends = h.daemon.peek('/local/domain/0/backend/vbd')?.children ?? [];
    return { destroy, tapdisks, sysfs, sockets, backends };
  });
}

describe('C1: xl destroy of a guest whose vbd backend is Connected', () => {
  test('4.1: no tapdisk destroy on the Connected branch: tapdisk2, its socket and minor 0 stay', async () => {
    const r = await destroyConnected('4.1');
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.destroy.code).toBe(0);
    expect(v.tapdisks).toHaveLength(1);
    expect(v.sockets).toEqual([`/var/run/blktap-control/ctl${v.tapdisks[0]!.pid}`]);
    expect(v.sysfs).toEqual(['/sys/class/blktap2/blktap0']);
    // The backend directory itself is gone: only the tapdisk is orphaned.
    expect(v.backends).toEqual([]);
  });

  test('4.2: the params are read before the delete and the tapdisk is destroyed', async () => {
    const r = await destroyConnected('4.2');
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.tapdisks).toEqual([]);
    expect(v.sockets).toEqual([]);
    expect(v.sysfs).toEqual([]);
    expect(v.backends).toEqual([]);
  });
});
