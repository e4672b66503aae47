/**
 * `on-poweroff` / `on-crash` on `domains:` entries: validated with suggestions, written into the
 * generated xl config, and carried out by xl create's daemon (destroy, preserve, restart).
 */
import { describe, expect, test } from 'vitest';
import { xlConfigText } from '../../emulator/machine/xl-config.js';
import { formatScenario } from '../../emulator/scenario/format.js';
import { parseScenario } from '../../emulator/scenario/load.js';
import { machineConfigFor, runScenario } from '../../emulator/scenario/run.js';

function yaml(domainExtra: string, steps: string, expect = ''): string {
  return `name: actions
description: on-poweroff and on-crash
host:
  images:
    - { name: disk.img, size: 1MiB }
domains:
  - name: guest1
    disks: ["format=raw, vdev=xvda, access=rw, backendtype=tap, target=disk.img"]
${domainExtra}
steps:
  - xl: create /etc/xen/guest1.cfg
${steps}
${expect}`;
}

describe('validation', () => {
  test.each([
    ['    on-poweroff: preserve', { onPoweroff: 'preserve' }],
    ['    on-crash: restart', { onCrash: 'restart' }],
    ['    on-poweroff: destroy\n    on-crash: preserve', { onPoweroff: 'destroy', onCrash: 'preserve' }],
    ['', {}],
  ])('%j', (extra, want) => {
    const s = parseScenario(yaml(extra, ''), 'a.yaml');
    const d = s.domains[0]!;
    expect({ onPoweroff: d.onPoweroff, onCrash: d.onCrash }).toEqual({
      onPoweroff: undefined,
      onCrash: undefined,
      ...want,
    });
    // Round trip through the file language.
    expect(parseScenario(formatScenario(s), 'b.yaml').domains).toEqual(s.domains);
  });

  test.each([
    [
      '    on-poweroff: preserv',
      /domains\[0\]\.on-poweroff: "preserv" is not a domain action; did you mean "preserve"\?/,
    ],
    [
      '    on-crash: coredump-destroy',
      /domains\[0\]\.on-crash: "coredump-destroy" is not a domain action; use one of "destroy", "preserve", "restart"/,
    ],
    ['    on-reboot: destroy', /domains\[0\]/],
  ])('%j is refused', (extra, message) => {
    expect(() => parseScenario(yaml(extra, ''), 'a.yaml')).toThrow(message);
  });

  test('the generated xl config carries on_poweroff / on_crash', () => {
    const s = parseScenario(yaml('    on-poweroff: preserve\n    on-crash: restart', ''), 'a.yaml');
    const text = xlConfigText(machineConfigFor(s, '/w').guests[0]!, '/w');
    expect(text).toContain("on_poweroff = 'preserve'\non_crash = 'restart'\n");
    const plain = parseScenario(yaml('', ''), 'a.yaml');
    expect(xlConfigText(machineConfigFor(plain, '/w').guests[0]!, '/w')).not.toMatch(/on_/);
  });
});

describe("xl create's daemon", () => {
  test('on-poweroff preserve: the guest stays shut down, its backend stays, until xl destroy', async () => {
    const r = await runScenario(
      parseScenario(
        yaml(
          '    on-poweroff: preserve',
          `  - guest: guest1
    write: { disk: xvda, offset: 0, length: 4KiB, pattern: random:1 }
  - guest: guest1
    shutdown:
  - wait: { domain: guest1, state: shutdown, timeout: 30s }
  - wait: { time: 20s }
  - xenstore-read: { path: /local/domain/0/backend/vbd/1/51712/online, expect: "1" }
  - xl: destroy guest1
  - wait: { domain: guest1, state: dead, timeout: 30s }`,
          `expect:
  domains: { dead: [guest1] }
  tap-ctl-list: []
  xenstore-absent: [/local/domain/0/backend/vbd/1]`,
        ),
        'p.yaml',
      ),
      { engine: 'sim', seed: 1 },
    );
    expect(r.failures).toEqual([]);
    const log = r.trace.filter((e) => e.kind === 'stdout' && String(e.fields?.line).startsWith('Action for'));
    expect(log.map((e) => e.fields?.line)).toEqual(['Action for shutdown reason code 0 is preserve']);
  });

  test('on-crash preserve: a crashed guest is kept in the shutdown state', async () => {
    const r = await runScenario(
      parseScenario(
        yaml(
          '    on-crash: preserve',
          `  - fault: { crash-domain: { domain: guest1 } }
  - wait: { domain: guest1, state: shutdown, timeout: 30s }
  - wait: { time: 20s }`,
          'expect:\n  domains: { shutdown: [guest1], dead: [] }',
        ),
        'c.yaml',
      ),
      { engine: 'sim', seed: 1 },
    );
    expect(r.failures).toEqual([]);
    expect(r.trace.some((e) => e.kind === 'fault' && e.fields?.fault === 'crash-domain')).toBe(true);
  });

  test('on-crash left out: xl destroys the crashed guest (its default)', async () => {
    const r = await runScenario(
      parseScenario(
        yaml(
          '',
          `  - fault: { crash-domain: { domain: guest1 } }
  - wait: { domain: guest1, state: dead, timeout: 30s }`,
          'expect:\n  domains: { dead: [guest1] }',
        ),
        'd.yaml',
      ),
      { engine: 'sim', seed: 1 },
    );
    expect(r.failures).toEqual([]);
  });

  test('on-poweroff restart: xl builds the guest again under a new domid, and its disk works', async () => {
    const r = await runScenario(
      parseScenario(
        yaml(
          '    on-poweroff: restart',
          `  - guest: guest1
    shutdown:
  - wait: { time: 5s }
  - xl: list
  - guest: guest1
    write: { disk: xvda, offset: 0, length: 4KiB, pattern: random:1 }`,
          'expect:\n  domains: { running: [guest1] }\n  data: [{ image: disk.img, offset: 0, length: 4KiB, pattern: random:1 }]',
        ),
        'r.yaml',
      ),
      { engine: 'sim', seed: 1 },
    );
    expect(r.failures).toEqual([]);
    const list = r.steps.find((x) => x.description === 'xl list')!.stdout!;
    expect(list.find((l) => l.startsWith('guest1'))).toMatch(/^guest1\s+2\s/);
  });
});
