import { describe, expect, it } from 'vitest';
import {
  EMULATED_DRIVERS,
  findDiskType,
  parseDriverStack,
  parseImageType,
  STRERROR,
  XAPI_DISK_TYPES,
  XEN_DISK_TYPES,
} from '../../emulator/tapdisk/image-type.js';

describe('disk type tables', () => {
  it.each([
    ['aio', 0, 0],
    ['sync', 1, 1],
    ['vmdk', 2, 2],
    ['vhdsync', 3, 3],
    ['vhd', 4, 4],
    ['ram', 5, 5],
    ['qcow', 6, 6],
    ['bc', 7, 7],
    ['vhdi', 11, 8],
    ['log', 9, 9],
  ])('%s has id %i (xen) and %i (xapi)', (name, xen, xapi) => {
    expect(XEN_DISK_TYPES.find((t) => t.name === name)?.id).toBe(xen);
    expect(XAPI_DISK_TYPES.find((t) => t.name === name)?.id).toBe(xapi);
  });

  it('emulates aio and ram only', () => {
    expect([...EMULATED_DRIVERS].sort()).toEqual(['aio', 'ram']);
  });

  it.each([
    ['aio', 'xen', 0],
    ['vhd', 'xen', 4],
    ['sync', 'xen', -38],
    ['vhdi', 'xen', -38],
    ['vhdi', 'xapi', 8],
    ['qcow', 'xen', 6],
    ['qcow', 'xapi', -38],
    ['remus', 'xen', 10],
    ['remus', 'xapi', -2],
    ['nbd', 'xen', -2],
    ['nbd', 'xapi', 15],
    ['AIO', 'xen', -2],
  ] as const)('tapdisk_disktype_find(%s) on %s', (name, variant, expected) => {
    const r = findDiskType(name, variant);
    expect(r.ok ? r.type.id : r.err).toBe(expected);
  });
});

describe('parseImageType', () => {
  it.each([
    ['aio:/srv/disk.img', 'aio', '/srv/disk.img'],
    ['ram:/srv/r.img', 'ram', '/srv/r.img'],
    ['aio:/a:b:c', 'aio', '/a:b:c'],
    ['aio:', 'aio', ''],
  ])('%s', (params, type, path) => {
    const r = parseImageType(params);
    expect(r).toMatchObject({ ok: true, path });
    expect(r.ok && r.type.name).toBe(type);
  });

  it.each([
    ['/srv/disk.img', 'xen', -22, 'EINVAL', undefined],
    [`${'a'.repeat(32)}:/x`, 'xen', -36, 'ENAMETOOLONG', undefined],
    ['floppy:/x', 'xen', -2, 'ENOENT', undefined],
    ['floppy:/x', 'xapi', -2, 'ENOENT', undefined],
    ['sync:/x', 'xen', -38, 'ENOSYS', undefined],
    ['vhd:/srv/a.vhd', 'xen', -38, 'ENOSYS', true],
    ['qcow:/srv/a.qcow', 'xen', -38, 'ENOSYS', true],
    ['nbd:host:1', 'xapi', -38, 'ENOSYS', true],
    [':/x', 'xen', -2, 'ENOENT', undefined],
  ] as const)('%s on %s fails with %i', (params, variant, err, name, limitation) => {
    const r = parseImageType(params, variant);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.err).toBe(err);
    expect(r.errnoName).toBe(name);
    expect(r.emulatorLimitation).toBe(limitation);
  });

  it('names 31-byte types but refuses 32', () => {
    expect(parseImageType(`${'a'.repeat(31)}:/x`)).toMatchObject({ ok: false, errnoName: 'ENOENT' });
  });

  it('keeps the path on failure only for xapi', () => {
    expect(parseImageType('floppy:/x', 'xapi')).toMatchObject({ path: '/x' });
    expect(parseImageType('floppy:/x', 'xen')).not.toHaveProperty('path');
  });

  it('has strerror texts for every errno it returns', () => {
    expect(STRERROR[2]).toBe('No such file or directory');
    expect(STRERROR[38]).toBe('Function not implemented');
  });
});

describe('parseDriverStack', () => {
  it('opens the last token first and skips empty tokens', () => {
    const r = parseDriverStack('ram:/r||aio:/a');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.stack.map((s) => `${s.type.name}:${s.path}`)).toEqual(['aio:/a', 'ram:/r']);
  });

  it('stops at the first bad token', () => {
    expect(parseDriverStack('aio:/a|bogus:/b')).toMatchObject({ ok: false, err: -2 });
  });
});
