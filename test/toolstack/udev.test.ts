import { describe, expect, test } from 'vitest';
import { xenBackendRules } from '../../emulator/toolstack/udev/install.js';
import { applyRules, globMatch, parseRules, substitute } from '../../emulator/toolstack/udev/rules.js';
import { devpathsRelated, udevdProgram, udevSettle } from '../../emulator/toolstack/udev/udevd.js';
import { inKernel } from '../kernel/sim-kernel.js';

const VBD_ENV = new Map([
  ['ACTION', 'remove'],
  ['DEVPATH', '/devices/xen-backend/vbd-1-51712'],
  ['SUBSYSTEM', 'xen-backend'],
  ['XENBUS_PATH', 'backend/vbd/1/51712'],
]);

describe('udev rules', () => {
  test.each<[string, string, boolean]>([
    ['vbd*', 'vbd-1-51712', true],
    ['vbd*', 'vif-1-0', false],
    ['blktap[0-9]*', 'blktap12', true],
    ['blktap[0-9]*', 'blktapx', false],
    ['tapdev[!0-9]', 'tapdeva', true],
    ['v?d-*', 'vbd-2-5', true],
    ['add|remove', 'remove', true],
    ['a.b', 'axb', false],
  ])('glob %s vs %s → %s', (pattern, text, want) => {
    expect(globMatch(pattern, text)).toBe(want);
  });

  test.each<[string, string]>([
    ['$env{ACTION} %E{XENBUS_PATH}', 'remove backend/vbd/1/51712'],
    ['$kernel %k', 'vbd-1-51712 vbd-1-51712'],
    ['$devpath', '/devices/xen-backend/vbd-1-51712'],
    ['$env{NOPE}x $$ %%', 'x $ %'],
  ])('substitute %s', (format, want) => {
    expect(substitute(format, VBD_ENV)).toBe(want);
  });

  test.each<[string, RegExp]>([
    ['KERNEL=="vbd*" RUN+="x"', /expected "," before/],
    ['KERNEL="vbd*"', /key KERNEL does not take =/],
    ['RUN=="x"', /key RUN does not take ==/],
    ['ENV=="1"', /key ENV needs \{attribute\}/],
    ['KERNEL{x}=="1"', /key KERNEL takes no \{attribute\}/],
    ['SUBSYSTEM==xen', /cannot parse/],
  ])('parse refuses %s', (line, error) => {
    expect(() => parseRules('t.rules', `# comment\n${line}\n`)).toThrow(
      new RegExp(`t.rules:2: .*${error.source}`),
    );
  });

  test.each<['4.1' | '4.2' | 'xend' | '4.2-pre', string, string[], string | undefined]>([
    ['4.1', 'add', ['/etc/xen/scripts/block add'], undefined],
    ['4.1', 'remove', ['/etc/xen/scripts/block remove', '/etc/xen/scripts/xen-hotplug-cleanup'], undefined],
    ['xend', 'remove', ['/etc/xen/scripts/block remove', '/etc/xen/scripts/xen-hotplug-cleanup'], undefined],
    ['4.2-pre', 'add', ['/etc/xen/scripts/block add'], undefined],
    ['4.2', 'add', ['/etc/xen/scripts/block add'], '1'],
    ['4.2', 'remove', ['/etc/xen/scripts/block remove', '/etc/xen/scripts/xen-hotplug-cleanup'], '1'],
    ['4.2', 'change', ['/etc/xen/scripts/block change'], '1'],
  ])('xen-backend.rules of %s, a vbd %s: runs %j with UDEV_CALL=%s', (version, action, run, udevCall) => {
    const env = new Map(VBD_ENV);
    env.set('ACTION', action);
    const r = applyRules(xenBackendRules(version), { env });
    expect(r.run).toEqual(run);
    expect(r.env.get('UDEV_CALL')).toBe(udevCall);
  });

  test('a device of another subsystem matches nothing', () => {
    const env = new Map(VBD_ENV);
    env.set('SUBSYSTEM', 'block');
    expect(applyRules(xenBackendRules('4.1'), { env }).run).toEqual([]);
  });

  test.each<[string, string, boolean]>([
    ['/devices/a', '/devices/a', true],
    ['/devices/a', '/devices/a/b', true],
    ['/devices/a/b', '/devices/a', true],
    ['/devices/a', '/devices/ab', false],
  ])('devpaths %s and %s related: %s', (a, b, want) => {
    expect(devpathsRelated(a, b)).toBe(want);
  });
});

describe('udevd', () => {
  test('runs RUN programs with the event environment; one device at a time, other devices in parallel; settle waits', async () => {
    const log = await inKernel(async (k) => {
      const lines: string[] = [];
      k.registerProgram('/bin/slow', async (proc, args) => {
        const env = new Map(
          args.filter((a) => a.includes('=')).map((a) => a.split('=', 2) as [string, string]),
        );
        lines.push(`start ${env.get('SEQNUM')} ${args.at(-1)} ${env.get('DEVPATH')}`);
        await proc.sleep(10);
        lines.push(`end ${env.get('SEQNUM')}`);
        return env.get('SEQNUM') === '2' ? 3 : 0;
      });
      const rules = parseRules(
        't.rules',
        'SUBSYSTEM=="s", RUN+="/bin/slow $env{ACTION}"\nSUBSYSTEM=="s", RUN+="/bin/missing"\n',
      );
      k.registerProgram('/sbin/udevd', udevdProgram(k, { rules }));
      const udevd = k.spawn('/sbin/udevd', [], { bootPid: 42 });
      await k.env.sleep(1);
      k.uevents.emit('add', { devpath: '/devices/d1', subsystem: 's' });
      k.uevents.emit('remove', { devpath: '/devices/d1', subsystem: 's' });
      k.uevents.emit('add', { devpath: '/devices/d2', subsystem: 's' });
      const ok = await udevSettle(k, 1000);
      lines.push(`settled ${ok} at ${k.env.now() - 1}`);
      lines.push(...udevd.output);
      return lines;
    });
    const at = (line: string) => log.indexOf(line);
    // d1's remove waits for d1's add; d2's add runs alongside d1's.
    expect(at('end 1')).toBeLessThan(at('start 2 remove /devices/d1'));
    expect(at('start 3 add /devices/d2')).toBeLessThan(at('end 1'));
    expect(at('start 1 add /devices/d1')).toBeLessThan(at('end 3'));
    expect(at('end 2')).toBe(at('settled true at 20') - 1);
    const messages = log.slice(at('settled true at 20') + 1);
    expect(messages.filter((m) => m.startsWith("failed to execute '/bin/missing'"))).toHaveLength(3);
    expect(
      messages.filter((m) => /^'\/bin\/slow remove' \[\d+\] exit with return code 3$/.test(m)),
    ).toHaveLength(1);
    expect(messages).toHaveLength(4);
  });
});
