import { describe, expect, test } from 'vitest';
import { KernelError } from '../../emulator/kernel/errno.js';
import { compileComponentGlob } from '../../emulator/kernel/glob.js';
import { Namespace } from '../../emulator/kernel/namespace.js';
import { Sysfs } from '../../emulator/kernel/sysfs.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof KernelError) return `${e.code}: ${e.detail}`;
    throw e;
  }
  return 'ok';
}

describe('glob of one component', () => {
  test.each([
    ['blktap*', 'blktap0', true],
    ['blktap*', 'blktap', true],
    ['blktap*', 'tapdev0', false],
    ['ctl*', 'ctl201', true],
    ['ctl?', 'ctl1', true],
    ['ctl?', 'ctl12', false],
    ['tapdev[0-9]', 'tapdev7', true],
    ['tapdev[!0-9]', 'tapdev7', false],
    ['*', '.hidden', false],
    ['.*', '.hidden', true],
    ['a.b', 'aXb', false],
  ])('%s matches %s: %s', (pattern, name, expected) => {
    expect(compileComponentGlob(pattern)(name)).toBe(expected);
  });

  test('unterminated bracket is an error naming the pattern', () => {
    expect(() => compileComponentGlob('ctl[0')).toThrow(/unterminated "\[" at offset 3 in pattern "ctl\[0"/);
  });
});

describe('name space', () => {
  test('errors name the path', () => {
    const ns = new Namespace();
    ns.mkdir('/dev/xen/blktap-2', { parents: true });
    ns.mknod('/dev/xen/blktap-2/blktap0', 'chr', 254, 0);
    expect(code(() => ns.lookup('/dev/xen/blktap-2/blktap9'))).toBe(
      'ENOENT: lookup /dev/xen/blktap-2/blktap9',
    );
    expect(code(() => ns.lookup('/dev/xen/blktap-2/blktap0/x'))).toBe(
      'ENOTDIR: lookup /dev/xen/blktap-2/blktap0/x: /dev/xen/blktap-2/blktap0 is not a directory',
    );
    expect(code(() => ns.mknod('/dev/xen/blktap-2/blktap0', 'chr', 254, 0))).toBe(
      'EEXIST: mknod /dev/xen/blktap-2/blktap0',
    );
    expect(code(() => ns.mknod('/dev/nowhere/x', 'blk', 1, 0))).toBe(
      'ENOENT: mknod /dev/nowhere/x: parent /dev/nowhere',
    );
    expect(code(() => ns.mknod('/dev/x', 'blk', 4096, 0))).toBe(
      'EINVAL: mknod /dev/x: major 4096 outside 0..4095',
    );
    expect(code(() => ns.mkdir('/a/b'))).toBe('ENOENT: mkdir /a/b');
    expect(code(() => ns.rmdir('/dev'))).toBe('ENOTEMPTY: rmdir /dev');
    expect(code(() => ns.unlink('/dev/xen'))).toBe('EISDIR: unlink /dev/xen');
    expect(code(() => ns.lookup('relative'))).toBe('EINVAL: path "relative": must be absolute');
    expect(ns.lookup('/dev/xen/../xen/./blktap-2/blktap0')).toEqual({ kind: 'chr', major: 254, minor: 0 });
    ns.unlink('/dev/xen/blktap-2/blktap0');
    expect(ns.exists('/dev/xen/blktap-2/blktap0')).toBe(false);
  });

  test('glob over paths lists sorted matches, nothing on no match', () => {
    const ns = new Namespace();
    ns.mkdir('/sys/class/blktap2', { parents: true });
    for (const n of ['blktap10', 'blktap2', 'blktap0', 'control']) ns.mkdir(`/sys/class/blktap2/${n}`);
    ns.mkdir('/var/run/blktap-control', { parents: true });
    ns.bindSocket('/var/run/blktap-control/ctl201', {});
    ns.bindSocket('/var/run/blktap-control/ctl99', {});
    expect(ns.glob('/sys/class/blktap2/blktap*')).toEqual([
      '/sys/class/blktap2/blktap0',
      '/sys/class/blktap2/blktap10',
      '/sys/class/blktap2/blktap2',
    ]);
    expect(ns.glob('/var/run/blktap-control/ctl*')).toEqual([
      '/var/run/blktap-control/ctl201',
      '/var/run/blktap-control/ctl99',
    ]);
    expect(ns.glob('/sys/class/*/control')).toEqual(['/sys/class/blktap2/control']);
    expect(ns.glob('/sys/class/blktap3/*')).toEqual([]);
    expect(code(() => ns.bindSocket('/var/run/blktap-control/ctl99', {}))).toBe(
      'EADDRINUSE: bind /var/run/blktap-control/ctl99',
    );
  });

  test('sysfs devices: dev attribute, driver attributes, udev node, removal', async () => {
    const ns = new Namespace();
    const sysfs = new Sysfs(ns);
    sysfs.classCreate('blktap2');
    const stored: string[] = [];
    const dev = sysfs.deviceCreate('blktap2', 'blktap3', {
      devt: { kind: 'chr', major: 254, minor: 3 },
      devnode: 'xen/blktap-2/blktap3',
      attributes: {
        name: { show: () => 'tapdev3\n' },
        remove: { store: (v) => void stored.push(v) },
      },
    });
    expect(await ns.readAttribute('/sys/class/blktap2/blktap3/dev')).toBe('254:3\n');
    expect(await ns.readAttribute('/sys/class/blktap2/blktap3/name')).toBe('tapdev3\n');
    await ns.writeAttribute('/sys/class/blktap2/blktap3/remove', '1');
    expect(stored).toEqual(['1']);
    await expect(ns.readAttribute('/sys/class/blktap2/blktap3/remove')).rejects.toThrow(/EACCES/);
    await expect(ns.writeAttribute('/sys/class/blktap2/blktap3/name', 'x')).rejects.toThrow(
      /read-only attribute/,
    );
    expect(ns.lookup('/dev/xen/blktap-2/blktap3')).toEqual({ kind: 'chr', major: 254, minor: 3 });
    expect(code(() => sysfs.deviceCreate('nosuch', 'x'))).toBe('ENOENT: mkdir /sys/class/nosuch/x');
    sysfs.deviceDestroy(dev);
    expect(ns.exists('/sys/class/blktap2/blktap3')).toBe(false);
    expect(ns.exists('/dev/xen/blktap-2/blktap3')).toBe(false);
    sysfs.classDestroy('blktap2');
  });
});
