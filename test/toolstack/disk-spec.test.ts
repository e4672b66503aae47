import { describe, expect, it } from 'vitest';
import { parseDiskSpec } from '../../emulator/toolstack/disk-spec.js';

const ok = (spec: string | string[]) => {
  const r = parseDiskSpec(spec);
  if (!r.ok) throw new Error(r.errors.map((e) => e.line).join('\n'));
  return r.disk;
};

describe('equivalent forms from xl-disk-configuration.txt', () => {
  const hda = {
    pdevPath: '/dev/vg/guest-volume',
    format: 'raw',
    vdev: 'hda',
    readwrite: true,
    isCdrom: false,
  };
  it.each([
    '/dev/vg/guest-volume,,hda',
    '/dev/vg/guest-volume,raw,hda,rw',
    'format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume',
    'raw:/dev/vg/guest-volume,hda,w',
  ])('%s', (spec) => {
    expect(ok(spec)).toMatchObject(hda);
  });

  const cd = {
    pdevPath: '/root/image.iso',
    format: 'raw',
    vdev: 'hdc',
    readwrite: false,
    isCdrom: true,
    removable: true,
  };
  it.each([
    '/root/image.iso,,hdc,cdrom',
    '/root/image.iso,,hdc,,cdrom',
    '/root/image.iso,raw,hdc,devtype=cdrom',
    'format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso',
    'raw:/root/image.iso,hdc:cdrom,ro',
  ])('%s', (spec) => {
    expect(ok(spec)).toMatchObject(cd);
  });
});

describe('keyword and positional forms', () => {
  it.each([
    [
      'format=raw, vdev=xvda, access=rw, backendtype=tap, target=/srv/disk.img',
      { pdevPath: '/srv/disk.img', vdev: 'xvda', backend: 'tap', format: 'raw', readwrite: true },
    ],
    ['/srv/a.vhd,vhd,xvdb,r', { pdevPath: '/srv/a.vhd', format: 'vhd', vdev: 'xvdb', readwrite: false }],
    ['/srv/a.img,qcow2,xvdb', { format: 'qcow2' }],
    ['vdev=xvda,target=/a,b,c', { pdevPath: '/a,b,c', vdev: 'xvda' }],
    ['vdev=xvda, target=/x ', { pdevPath: '/x ' }],
    ['/srv/a,,xvda,w,backend=driverdom', { backendDomname: 'driverdom' }],
    ['/srv/a,,xvda,script=block-iscsi', { script: 'block-iscsi' }],
    ['/srv/a,,xvda,direct-io-safe,no-discard', { directIoSafe: true, discardEnable: false }],
    ['/srv/a,,xvda,discard', { discardEnable: true }],
    [
      '/srv/a,,xvda,colo,colo-host=10.0.0.2,colo-port=9000,colo-export=e1,active-disk=/a1,hidden-disk=/h1',
      {
        coloEnable: true,
        coloHost: '10.0.0.2',
        coloPort: 9000,
        coloExport: 'e1',
        activeDisk: '/a1',
        hiddenDisk: '/h1',
      },
    ],
    ['/srv/a,,xvda,no-colo', { coloEnable: false }],
    ['foo:bar,,xvda', { pdevPath: 'foo:bar' }],
    [',hdc:cdrom,r', { pdevPath: '', vdev: 'hdc', isCdrom: true, format: 'empty', readwrite: false }],
    ['/srv/a,,xvda:disk', { vdev: 'xvda', isCdrom: false }],
    ['/srv/a,raw,xvda,format=raw', { format: 'raw' }],
    ['vdev=xvda,access=,target=/a', { readwrite: true }],
    ['/srv/a,,xvda', { backend: 'unknown', script: null, discardEnable: null, coloPort: 0 }],
  ])('%s', (spec, expected) => {
    expect(ok(spec)).toMatchObject(expected);
  });
});

describe('legacy prefixes', () => {
  it.each([
    [
      'tap2:aio:/srv/disk.img,xvda,w',
      { pdevPath: '/srv/disk.img', vdev: 'xvda', readwrite: true, format: 'raw' },
    ],
    ['tap:aio:/srv/disk.img,xvda,r', { pdevPath: '/srv/disk.img', readwrite: false, backend: 'unknown' }],
    ['tap:vhd:/srv/x.vhd,xvda,w', { pdevPath: '/srv/x.vhd', format: 'vhd' }],
    ['tap:qcow:/srv/x.qcow,xvda,w', { format: 'qcow' }],
    ['phy:/dev/vg/lv,xvda,w', { pdevPath: '/dev/vg/lv' }],
    ['file:/srv/a.img,hda,w', { pdevPath: '/srv/a.img', vdev: 'hda' }],
    ['aio:/srv/a.img,hda,w', { pdevPath: '/srv/a.img' }],
    ['tapdisk:aio:/srv/a.img,hda,w', { pdevPath: '/srv/a.img' }],
    ['ioemu:/srv/a.img,hda,w', { pdevPath: '/srv/a.img' }],
    [
      'iscsi:iqn.2001-04.com.example:storage,xvda,w',
      { script: 'block-iscsi', pdevPath: 'iqn.2001-04.com.example:storage' },
    ],
    ['enbd:host,xvda,w', { script: 'block-enbd' }],
    ['drbd:res,xvda,w', { script: 'block-drbd' }],
  ])('%s', (spec, expected) => {
    expect(ok(spec)).toMatchObject(expected);
  });

  it('accepts several specs into one disk, as xl block-attach passes them', () => {
    expect(ok(['tap:aio:/srv/a.img', 'xvdb', 'r'])).toMatchObject({
      pdevPath: '/srv/a.img',
      vdev: 'xvdb',
      readwrite: false,
    });
  });
});

describe('errors', () => {
  const line = (reason: string, spec: string, near?: string) =>
    `command line: config parsing error in disk specification: ${reason}${near !== undefined ? `: near \`${near}'` : ''} in \`${spec}'`;

  it.each([
    ['/srv/a,bogus,xvda', [[line('unknown value for format', '/srv/a,bogus,xvda', 'bogus'), 'bogus', 8]]],
    ['/srv/a,,xvda,rx', [[line('unknown value for access', '/srv/a,,xvda,rx', 'rx'), 'rx', 14]]],
    [
      'vdev=xvda,devtype=floppy,target=/a',
      [
        [
          line('unknown value for type', 'vdev=xvda,devtype=floppy,target=/a', 'devtype=floppy,'),
          'devtype=floppy,',
          11,
        ],
      ],
    ],
    [
      'vdev=xvda,backendtype=blk,target=/a',
      [[line('unknown value for backendtype', 'vdev=xvda,backendtype=blk,target=/a', 'blk'), 'blk', 11]],
    ],
    [
      'vdev=xvda,foo=bar,target=/a',
      [[line('unknown parameter', 'vdev=xvda,foo=bar,target=/a', 'foo=b'), 'foo=b', 11]],
    ],
    [
      'vdev=xvda,vdev=xvdb,target=/a',
      [[line('vdev respecified', 'vdev=xvda,vdev=xvdb,target=/a', 'xvdb'), 'xvdb', 11]],
    ],
    [
      '/srv/a,vhd,xvda,format=raw',
      [[line('format respecified', '/srv/a,vhd,xvda,format=raw', 'raw'), 'raw', 17]],
    ],
    [
      'floppy:/dev/fd0,xvda,w',
      [[line('unknown deprecated disk prefix', 'floppy:/dev/fd0,xvda,w', 'floppy:'), 'floppy:', 1]],
    ],
    [
      '/srv/a,,xvda,w,extra',
      [[line('too many positional parameters', '/srv/a,,xvda,w,extra', 'extra'), 'extra', 16]],
    ],
    ['/srv/a,,xvda:tape', [[line('unknown deprecated type', '/srv/a,,xvda:tape', 'tape'), 'tape', 14]]],
    [
      '/srv/a,,xvda,colo-port=x',
      [[line('unknown value for colo_port', '/srv/a,,xvda,colo-port=x', 'x'), 'x', 14]],
    ],
    ['Vdev=xvda', [[line('bad disk syntax', 'Vdev=xvda', '=xvda'), '=xvda', 5]]],
    ['/srv/a', [[line('no vdev specified', '/srv/a'), null, null]]],
    ['vdev=xvda', [[line('no target specified (and device not removable)', 'vdev=xvda'), null, null]]],
  ])('%s', (spec, expected) => {
    const r = parseDiskSpec(spec);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errno).toBe(22);
    expect(r.errors.map((e) => [e.line, e.token, e.column])).toEqual(expected);
  });

  it('reports every error the scanner meets before it stops, as xlu does', () => {
    const r = parseDiskSpec('format=bogus,access=maybe,xvda', 'guest.cfg');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => e.line)).toEqual([
      "guest.cfg: config parsing error in disk specification: unknown value for format: near `bogus' in `format=bogus,access=maybe,xvda'",
      "guest.cfg: config parsing error in disk specification: unknown value for access: near `maybe' in `format=bogus,access=maybe,xvda'",
    ]);
  });

  it('accepts a cdrom without target', () => {
    expect(ok('vdev=hdc,devtype=cdrom')).toMatchObject({ pdevPath: null, removable: true, readwrite: false });
  });
});
