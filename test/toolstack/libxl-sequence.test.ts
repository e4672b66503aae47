import { describe, expect, test } from 'vitest';
import type { TraceEvent } from '../../emulator/runtime/engine.js';
import type { LibxlVersion } from '../../emulator/toolstack/libxl/host.js';
import { GUEST_CFG, onToolHost } from './libxl-harness.js';

const BE = '/local/domain/0/backend/vbd/1/51712';
const FE = '/local/domain/1/device/vbd/51712';

/** The control-path steps of the xl destroy process, in order: libxl ops and tap-ctl messages. */
function steps(trace: TraceEvent[], pid: number): string[] {
  return trace
    .filter((e) => e.fields?.pid === pid)
    .filter((e) => (e.comp === 'libxl' && e.kind === 'op') || (e.comp === 'tap-ctl' && e.kind === 'send'))
    .map((e) => (e.comp === 'libxl' ? String(e.fields!.op) : `tap-ctl ${String(e.fields!.type)}`))
    .filter(
      (s) => !s.startsWith('tap_ctl_find') && !s.startsWith('tap-ctl PID') && !s.startsWith('tap-ctl LIST'),
    );
}

async function destroySteps(version: LibxlVersion) {
  let pid = -1;
  const r = await onToolHost({ libxl: version, configs: { '/etc/xen/g.cfg': GUEST_CFG } }, async (h) => {
    await h.xl(['create', '/etc/xen/g.cfg']);
    await h.xs.write(`${FE}/state`, '6');
    for (let i = 0; i < 100 && (await h.xs.tryRead(`${BE}/state`)) !== '6'; i++) await h.env.sleep(1);
    const proc = h.k.spawn('/usr/sbin/xl', ['destroy', '1'], { name: 'xl' });
    pid = proc.pid;
    await h.k.processes.waitExit(proc);
  });
  expect(r.outcome).toBe('completed');
  return steps(r.trace, pid);
}

describe('libxl teardown order per version (recorded sequence of xenstore ops and tap-ctl messages)', () => {
  test.each<[LibxlVersion, string[]]>([
    [
      '4.1',
      [
        'xc_domain_pause 1',
        `xs_read ${BE}/state`,
        `xs_read ${BE}/tapdisk-params`,
        'tap-ctl CLOSE',
        'tap-ctl DETACH',
        'tap_ctl_destroy 101 0',
        `xs_rm ${BE}`,
        'xs_rm /local/domain/0/backend/vbd/1',
        'xs_rm /vm/00000000-0000-0000-0000-000000000001 /local/domain/1',
        'xc_domain_destroy 1',
      ],
    ],
    [
      '4.2-pre',
      [
        'xc_domain_pause 1',
        `xs_transaction online=0 state=5 ${BE}`,
        `xs_read ${BE}/tapdisk-params`,
        'tap-ctl CLOSE',
        'tap-ctl DETACH',
        'tap_ctl_destroy 101 0',
        `wait ${BE}/state == 6`,
        `xs_transaction rm ${FE} ${BE}`,
        'xs_rm /vm/00000000-0000-0000-0000-000000000001 /local/domain/1',
        'xc_domain_destroy 1',
      ],
    ],
    [
      '4.2',
      [
        'xc_domain_pause 1',
        `xs_transaction online=0 state=5 ${BE}`,
        `wait ${BE}/state == 6`,
        `hotplug /etc/xen/scripts/block remove ${BE}`,
        `xs_transaction read tapdisk-params, rm ${FE} ${BE}`,
        'tap-ctl CLOSE',
        'tap-ctl DETACH',
        'tap_ctl_destroy 101 0',
        'xs_rm /vm/00000000-0000-0000-0000-000000000001 /local/domain/1',
        'xc_domain_destroy 1',
      ],
    ],
    [
      'xend',
      [
        'xc_domain_pause 1',
        // destroyDevice(force=False), the cleanup thread started first
        `xs_read ${BE}/params`,
        `xs_write ${BE}/online 0`,
        `xs_write ${BE}/state 5`,
        // _removeDom: the frontend's state vanishes, blkback unregisters, udev's cleanup removes the backend
        'xs_rm /vm/00000000-0000-0000-0000-000000000001 /local/domain/1',
        // finishDeviceCleanup
        `wait ${BE}/hotplug-status gone`,
        'tap-ctl list',
        'tap-ctl CLOSE',
        'tap-ctl DETACH',
        'tap-ctl destroy -p101 -m0',
        'xc_domain_destroy 1',
      ],
    ],
  ])('%s', async (version, expected) => {
    expect(await destroySteps(version)).toEqual(expected);
  });
});

describe('xl list and errors', () => {
  test('list shows the guest, and after destroy a dying domain keeps no name', async () => {
    const r = await onToolHost({ libxl: '4.2', configs: { '/etc/xen/g.cfg': GUEST_CFG } }, async (h) => {
      await h.xl(['create', '/etc/xen/g.cfg']);
      const before = await h.xl(['list']);
      const bad = await h.xl(['destroy', 'nosuch']);
      const missing = await h.xl(['create', '/etc/xen/none.cfg']);
      return { before: before.out, bad, missing };
    });
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.before[0]).toBe('Name                                        ID   Mem VCPUs\tState\tTime(s)');
    expect(v.before[2]).toMatch(/^guest1 {34}\s+1\s+\d+\s+1 {5}r----- {7}0\.0$/);
    expect(v.bad).toMatchObject({ code: 2, out: ['nosuch is an invalid domain identifier (rc=-6)'] });
    expect(v.missing.out).toEqual([
      'Parsing config from /etc/xen/none.cfg',
      'Failed to read config file: /etc/xen/none.cfg: No such file or directory',
    ]);
  });
});
