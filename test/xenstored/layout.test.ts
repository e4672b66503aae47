import { describe, expect, it } from 'vitest';
import { XsClient } from '../../emulator/xenstored/client.js';
import { XenstoreDaemon } from '../../emulator/xenstored/daemon.js';
import {
  createDom0Layout,
  createDomainLayout,
  destroyDomainLayout,
  vbdDeviceId,
  vbdDeviceName,
} from '../../emulator/xenstored/layout.js';
import { formatPerm } from '../../emulator/xenstored/perms.js';

describe('vbd device ids (xen-vbd-interface.7)', () => {
  it.each([
    ['xvda', 51712],
    ['xvda1', 51713],
    ['xvdb', 51728],
    ['xvdc', 51744],
    ['xvdp', 51952],
    ['xvdq', 268439552],
    ['xvdaa', (1 << 28) | (26 << 8)],
    ['xvda16', (1 << 28) | 16],
    ['sda', 2048],
    ['sdb', 2064],
    ['sdb3', 2067],
    ['hda', 768],
    ['hdb', 832],
    ['hdc', 5632],
    ['hdd', 5696],
    ['hda1', 769],
  ])('%s <-> %i', (name, id) => {
    expect(vbdDeviceId(name)).toBe(id);
    expect(vbdDeviceName(id)).toBe(name);
  });

  it.each([
    ['sdq', /limited to 15/],
    ['hde', /hda..hdd/],
    ['vda', /is not xvd/],
    ['xvd', /is not xvd/],
    [String(2 << 28), /reserved/],
    ['1234', /major 4/],
  ])('rejects %s', (name, why) => {
    expect(() => vbdDeviceId(name)).toThrow(why);
  });
});

describe('standard layout', () => {
  it('creates the libxl tree with guest-readable home and guest-owned subdirectories, and removes it', () => {
    const xs = new XenstoreDaemon();
    const d0 = new XsClient(xs.connect({ domid: 0, send: () => true }));
    createDom0Layout(d0);
    createDomainLayout(d0, { domid: 3, name: 'guest3' });
    expect(d0.read('/local/domain/3/name')).toBe('guest3');
    expect(d0.read('/local/domain/3/domid')).toBe('3');
    expect(d0.getPerms('/local/domain/3').map(formatPerm)).toEqual(['n0', 'r3']);
    expect(d0.getPerms('/local/domain/3/device').map(formatPerm)).toEqual(['n3']);
    expect(d0.getPerms('/local/domain/0/backend').map(formatPerm)).toEqual(['n0']);
    const g = new XsClient(xs.connect({ domid: 3, send: () => true }));
    g.write('device/vbd/51712/state', '1');
    expect(() => g.write('name', 'evil')).toThrow('EACCES');
    expect(() => g.read('/local/domain/0/backend')).toThrow('EACCES');
    destroyDomainLayout(d0, 3);
    expect(d0.tryRead('/local/domain/3/name')).toBeUndefined();
    expect(d0.directory('/vm')).toEqual([]);
  });
});
