import { describe, expect, test } from 'vitest';
import { resolveDiskTarget, xlConfigFiles, xlConfigText } from '../../emulator/machine/xl-config.js';
import { parseXlConfig } from '../../emulator/toolstack/xl/config.js';

describe('disk targets resolve under the work dir', () => {
  test.each([
    [
      'format=raw, vdev=xvda, access=rw, backendtype=tap, target=disk.img',
      'format=raw, vdev=xvda, access=rw, backendtype=tap, target=/w/disk.img',
    ],
    ['disk.img,raw,xvda,rw', '/w/disk.img,raw,xvda,rw'],
    ['tap:aio:disk.img,xvda,w', 'tap:aio:/w/disk.img,xvda,w'],
    ['tap2:aio:img/a.img,xvda,w', 'tap2:aio:/w/img/a.img,xvda,w'],
    // xvda.img contains the vdev's text: only the whole target value is replaced
    ['xvda.img,raw,xvda,rw', '/w/xvda.img,raw,xvda,rw'],
    ['/srv/disk.img,raw,xvda,rw', '/srv/disk.img,raw,xvda,rw'],
    // does not parse: left for xl to report at create time
    ['vdev=xvda', 'vdev=xvda'],
  ])('%s', (spec, want) => {
    expect(resolveDiskTarget(spec, '/w')).toBe(want);
  });

  test('without a work dir nothing changes', () => {
    expect(resolveDiskTarget('disk.img,raw,xvda,rw', undefined)).toBe('disk.img,raw,xvda,rw');
  });
});

describe('generated xl configs', () => {
  test('one /etc/xen/<name>.cfg per guest that xl parses back', () => {
    const files = xlConfigFiles({
      guests: [
        { name: 'guest1', memory: 16 * 1024 * 1024, abi: 'x86_64', disks: ['disk.img,raw,xvda,rw'] },
        { name: 'tiny', memory: 4096, abi: 'x86_32', disks: [] },
      ],
      versions: {} as never,
      memory: 64 * 1024 * 1024,
      workDir: '/w',
    });
    expect([...files.keys()]).toEqual(['/etc/xen/guest1.cfg', '/etc/xen/tiny.cfg']);
    const cfg = parseXlConfig(files.get('/etc/xen/guest1.cfg')!, '/etc/xen/guest1.cfg');
    expect(cfg.get('name')).toMatchObject({ kind: 'string', value: 'guest1' });
    expect(cfg.get('memory')).toMatchObject({ kind: 'string', value: '16' });
    expect(cfg.get('disk')).toMatchObject({ kind: 'list', items: ['/w/disk.img,raw,xvda,rw'] });
    // memory rounds up to whole MiB, at least 1; no disk line without disks
    expect(files.get('/etc/xen/tiny.cfg')).toBe(
      "# tiny: generated from the scenario's domains: entry\nname = 'tiny'\nmemory = 1\n",
    );
  });

  test('a spec holding both quote characters is refused', () => {
    expect(() =>
      xlConfigText({ name: 'g', memory: 1 << 20, abi: 'x86_64', disks: [`target=a'b"c.img`] }, undefined),
    ).toThrow(/holds both quote characters/);
  });
});
