/**
 * Guest lifecycles through the whole machine (sim): the explicit `xl destroy` of a running guest, a
 * guest crash handled by xl create's daemon (on_crash=destroy), and `xl shutdown -w` (control/shutdown
 * watched by the guest kernel, which closes its frontends and powers off).
 */
import { describe, expect, test } from 'vitest';
import { type ScenarioInput, scenario } from '../../emulator/scenario/load.js';
import { runScenario } from '../../emulator/scenario/run.js';

const DISK = 'format=raw, vdev=xvda, access=rw, backendtype=tap, target=disk.img';

function lifecycle(libxl: string, steps: ScenarioInput['steps'], expect: Record<string, unknown> = {}) {
  return scenario({
    name: 'lifecycle',
    description: 'one guest with a tap disk',
    versions: { libxl, 'blktap-kernel': '2010-08', tapdisk: 'xen-4.1', blkback: '2013' },
    host: { images: [{ name: 'disk.img', size: '4MiB', fill: 'zero' }] },
    domains: [{ name: 'guest1', memory: '16MiB', disks: [DISK] }],
    steps: [
      { xl: 'create /etc/xen/guest1.cfg' },
      { guest: 'guest1', write: { disk: 'xvda', offset: 0, length: '8KiB', pattern: 'seq' } },
      ...steps,
    ],
    expect: { data: [{ image: 'disk.img', offset: 0, length: '8KiB', pattern: 'seq' }], ...expect },
  });
}

describe('guest lifecycles end to end', () => {
  test('xl destroy of a running guest (4.2): the domain is gone, the tapdisk destroyed, the daemon exits', async () => {
    const r = await runScenario(
      lifecycle(
        '4.2',
        [{ xl: 'destroy guest1' }, { wait: { domain: 'guest1', state: 'dead', timeout: '30s' } }],
        {
          'tap-ctl-list': [],
          domains: { dead: ['guest1'] },
          'xenstore-absent': ['/local/domain/1', '/local/domain/0/backend/vbd/1'],
        },
      ),
      { engine: 'sim' },
    );
    expect(r.failures).toEqual([]);
    // The xl create daemon (its pid depends on how many scripts udev and libxl ran before it forked).
    const daemonPid = Number(
      /PID (\d+)/.exec(
        String(
          r.trace.find((e) => e.kind === 'stdout' && /^Daemon running with PID/.test(String(e.fields?.line)))
            ?.fields?.line,
        ),
      )?.[1],
    );
    const daemonLines = r.trace
      .filter((e) => e.kind === 'stdout' && e.fields?.pid === daemonPid)
      .map((e) => e.fields?.line);
    expect(daemonLines).toContain('Domain 1 has been destroyed.');
  }, 30_000);

  test("a crash: xl create's daemon destroys the domain (on_crash=destroy)", async () => {
    const r = await runScenario(
      lifecycle(
        '4.2',
        [{ guest: 'guest1', crash: {} }, { wait: { domain: 'guest1', state: 'dead', timeout: '30s' } }],
        {
          'tap-ctl-list': [],
          domains: { dead: ['guest1'] },
        },
      ),
      { engine: 'sim' },
    );
    expect(r.failures).toEqual([]);
    const lines = r.trace.filter((e) => e.kind === 'stdout').map((e) => e.fields?.line);
    expect(lines).toContain('Domain 1 has shut down, reason code 3 0x3');
    expect(lines).toContain('Action for shutdown reason code 3 is destroy');
  }, 30_000);

  test('xl shutdown -w: the guest closes its frontend and powers off; 4.1 then stalls 5 s in the daemon', async () => {
    const r = await runScenario(
      lifecycle(
        '4.1',
        [
          { xl: 'shutdown -w guest1' },
          {
            wait: { domain: 'guest1', state: 'dead', timeout: '30s' },
            'expect-elapsed': { 'at-least': '5s' },
          },
        ],
        { 'tap-ctl-list': ['minor=0'], domains: { dead: ['guest1'] } },
      ),
      { engine: 'sim' },
    );
    expect(r.failures).toEqual([]);
    expect(r.steps[2]).toMatchObject({
      description: 'xl shutdown -w guest1',
      status: 'ok',
      stdout: ['Domain 1 is dead'],
    });
    expect(r.stalls.map((s) => s.brokenBy?.timer)).toEqual(['tap-ctl select() timeout']);
  }, 30_000);
});
