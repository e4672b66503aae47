import { describe, expect, test } from 'vitest';
import type { StallReport } from '../../emulator/runtime/engine.js';
import type { LibxlVersion } from '../../emulator/toolstack/libxl/host.js';
import { GUEST_CFG, onToolHost, type ToolHost } from './libxl-harness.js';

const BE = '/local/domain/0/backend/vbd/1/51712';
const FE = '/local/domain/1/device/vbd/51712';

/** Plays a guest whose blkfront closed on shutdown: frontend Closed, then waits for backend Closed. */
async function guestClosed(h: ToolHost): Promise<void> {
  await h.xs.write(`${FE}/state`, '6');
  for (let i = 0; i < 100 && (await h.xs.tryRead(`${BE}/state`)) !== '6'; i++) await h.env.sleep(1);
}

describe('xl create with a tap2 disk (4.2 device add)', () => {
  test('tapdisk created, backend/frontend written with perms in one transaction, hotplug wrote physical-device', async () => {
    const r = await onToolHost({ libxl: '4.2', configs: { '/etc/xen/guest1.cfg': GUEST_CFG } }, async (h) => {
      const create = await h.xl(['create', '/etc/xen/guest1.cfg']);
      const read = async (p: string) => h.xs.tryRead(p);
      return {
        create,
        be: {
          params: await read(`${BE}/params`),
          tapdisk: await read(`${BE}/tapdisk-params`),
          type: await read(`${BE}/type`),
          mode: await read(`${BE}/mode`),
          online: await read(`${BE}/online`),
          state: await read(`${BE}/state`),
          frontend: await read(`${BE}/frontend`),
          physical: await read(`${BE}/physical-device`),
          physPath: await read(`${BE}/physical-device-path`),
          hotplug: await read(`${BE}/hotplug-status`),
          script: await read(`${BE}/script`),
        },
        fe: {
          backend: await read(`${FE}/backend`),
          state: await read(`${FE}/state`),
          vdev: await read(`${FE}/virtual-device`),
          backendId: await read(`${FE}/backend-id`),
        },
        bePerms: await h.xs.getPerms(BE),
        fePerms: await h.xs.getPerms(FE),
        libxl: await read('/libxl/1/device/vbd/51712/backend'),
        name: await read('/local/domain/1/name'),
        boots: h.boots,
        image: h.image,
        info: h.hv.domainInfo(1),
      };
    });
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.create.code).toBe(0);
    expect(v.create.out[0]).toBe('Parsing config from /etc/xen/guest1.cfg');
    expect(v.create.out[1]).toMatch(/^Daemon running with PID \d+$/);
    expect(v.be).toEqual({
      params: '/dev/xen/blktap-2/tapdev0',
      tapdisk: `aio:${v.image}`,
      type: 'phy',
      mode: 'w',
      online: '1',
      state: '2',
      frontend: FE,
      physical: expect.stringMatching(/^[0-9a-f]+:0$/),
      physPath: '/dev/xen/blktap-2/tapdev0',
      hotplug: 'connected',
      script: '/etc/xen/scripts/block',
    });
    expect(v.fe).toEqual({ backend: BE, state: '1', vdev: '51712', backendId: '0' });
    expect(v.bePerms).toEqual(['n0', 'r1']);
    expect(v.fePerms).toEqual(['n1', 'r0']);
    expect(v.libxl).toBe(BE);
    expect(v.name).toBe('guest1');
    expect(v.boots).toMatchObject([{ domid: 1, name: 'guest1', storeGrantRef: 1, memoryKb: 16384 }]);
    expect(v.info?.paused).toBe(false);
  });
});

async function destroyUnder(version: LibxlVersion) {
  return onToolHost({ libxl: version, configs: { '/etc/xen/guest1.cfg': GUEST_CFG } }, async (h) => {
    const create = await h.xl(['create', '/etc/xen/guest1.cfg']);
    if (create.code !== 0) throw new Error(create.out.join('\n'));
    await guestClosed(h);
    const destroy = await h.xl(['destroy', 'guest1']);
    // Let the tapdisk and xenwatch finish whatever the timeout left behind.
    await h.env.sleep(100);
    const xlList = await h.xl(['list']);
    const leftovers = h.daemon.peek('/local/domain/0/backend/vbd')?.children ?? [];
    const sysfs = h.k.ns.glob('/sys/class/blktap2/blktap*');
    return { destroy, xlList, leftovers, sysfs };
  });
}

describe('xl destroy of a guest whose frontend closed (teardown §3)', () => {
  test('4.1: tapdisk destroyed before the backend dir is removed: ≥ 5 s stall, minor 0 orphaned', async () => {
    const r = await destroyUnder('4.1');
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.destroy.code).toBe(0);
    expect(v.destroy.end - v.destroy.start).toBeGreaterThanOrEqual(5000);
    expect(v.sysfs).toEqual(['/sys/class/blktap2/blktap0']);
    expect(v.leftovers).toEqual([]);
    expect(r.stalls.some((s) => s.brokenBy?.timer === 'tap-ctl select() timeout')).toBe(true);
  });

  test('4.2: backend removed before the tapdisk is asked to detach: no stall, no orphan', async () => {
    const r = await destroyUnder('4.2');
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.destroy.code).toBe(0);
    expect(v.destroy.end - v.destroy.start).toBeLessThan(5000);
    expect(v.sysfs).toEqual([]);
    expect(v.leftovers).toEqual([]);
    expect(r.stalls.filter((s) => s.brokenBy?.timer === 'tap-ctl select() timeout')).toEqual([]);
  });

  test('xend: waits for the backend to be gone, then tap-ctl destroy: clean', async () => {
    const r = await destroyUnder('xend');
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.destroy.code).toBe(0);
    expect(v.destroy.end - v.destroy.start).toBeLessThan(5000);
    expect(v.sysfs).toEqual([]);
  });

  test('4.2-pre: tapdisk destroyed right after online=0/state=5: stall and orphan too', async () => {
    const r = await destroyUnder('4.2-pre');
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.destroy.end - v.destroy.start).toBeGreaterThanOrEqual(5000);
    expect(v.sysfs).toEqual(['/sys/class/blktap2/blktap0']);
  });
});

/** The links of a stall chain as "holder: waits for". */
function links(s: StallReport): string[] {
  return s.chain.map((l) => `${l.holder}: ${l.waitsFor}`);
}

/** Indexes of the first link matching each pattern, searched in order (-1 when one is missing). */
function inOrder(chain: readonly string[], patterns: readonly RegExp[]): number[] {
  const at: number[] = [];
  let from = 0;
  for (const p of patterns) {
    const i = chain.findIndex((l, k) => k >= from && p.test(l));
    at.push(i);
    if (i < 0) return at;
    from = i + 1;
  }
  return at;
}

/** xl task → tapdisk → tapdev0 openers → blkback's holder → toolstack, back to tapdisk. */
const CYCLE = [
  /^host\/xl\[\d+\]#\d+: tap-ctl select\(\) 5 s: DETACH_RSP from tapdisk \d+$/,
  /^dom-?\d+\/tapdisk2\[\d+\]: tapdev0 to have no openers$/,
  /^blkback vbd-1-51712: removal of backend\/vbd\/1\/51712 \(by the toolstack\)$/,
  /^toolstack: tap-ctl select\(\) 5 s: DETACH_RSP from tapdisk \d+$/,
];

describe('the toolstack as a holder in the wait-for graph', () => {
  test('4.1 destroy: the stall is a cycle xl → tapdisk → tapdev0 openers → blkback → toolstack', async () => {
    const r = await destroyUnder('4.1');
    expect(r.outcome).toBe('completed');
    const stall = r.stalls.find((s) => s.brokenBy?.timer === 'tap-ctl select() timeout');
    expect(stall).toBeDefined();
    expect(stall!.cycle).toBe(true);
    const chain = links(stall!);
    expect(inOrder(chain, CYCLE)).toEqual([0, 1, 2, 3]);
    // The toolstack's wait is the xl task's own: the chain closes on the tapdisk it already passed.
    expect(stall!.chain[3]!.heldBy).toBe(stall!.chain[0]!.heldBy);
    expect(stall!.chain[2]!.heldBy).toBe('toolstack');
  });

  test('4.2 destroy: no stall at all', async () => {
    const r = await destroyUnder('4.2');
    expect(r.outcome).toBe('completed');
    expect(r.stalls).toEqual([]);
  });

  test('4.1 block-detach of a closed frontend: the same cycle through the device-remove teardown', async () => {
    const r = await onToolHost({ libxl: '4.1', configs: { '/etc/xen/guest1.cfg': GUEST_CFG } }, async (h) => {
      const create = await h.xl(['create', '/etc/xen/guest1.cfg']);
      if (create.code !== 0) throw new Error(create.out.join('\n'));
      await guestClosed(h);
      const detach = await h.xl(['block-detach', 'guest1', 'xvda']);
      await h.env.sleep(100);
      return detach;
    });
    expect(r.outcome).toBe('completed');
    expect(r.value!.code).toBe(0);
    const stall = r.stalls.find((s) => s.brokenBy?.timer === 'tap-ctl select() timeout');
    expect(stall?.cycle).toBe(true);
    expect(inOrder(links(stall!), CYCLE)).toEqual([0, 1, 2, 3]);
  });
});
