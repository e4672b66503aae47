import { describe, expect, test } from 'vitest';
import { scanTapdevLine, tapCtlBlkMajor } from '../../emulator/toolstack/tap-ctl/major.js';
import { fgetsChunks, findMiscMinor } from '../../emulator/toolstack/tap-ctl/procfs.js';
import { host } from './tap-ctl-harness.js';

describe('/proc/misc as the kernel renders it and tap-ctl scans it', () => {
  test('misc_seq_show format, newest registration first; blktap-control found by fscanf', async () => {
    const r = await host(async (h) => {
      h.k.chars.miscRegister('xen/evtchn', 255, {});
      return h.k.ns.readAttribute('/proc/misc');
    });
    expect(r).toBe(' 62 xen/evtchn\n 63 blktap-control\n');
    expect(findMiscMinor(r, 'blktap-control', 32)).toBe(63);
  });

  test.each([
    { text: ' 63 blktap-control\n', width: 32, minor: 63 },
    { text: '  1 psaux\n 58 blktap-control\n', width: 256, minor: 58 },
    { text: '200 blktap-controlX\n', width: 32, minor: undefined },
    // %12s stops inside the name; the rest ("ol") fails the next %d and ends the scan.
    { text: ' 63 blktap-control\n', width: 12, minor: undefined },
    { text: 'garbage\n 63 blktap-control\n', width: 32, minor: undefined },
    { text: '', width: 32, minor: undefined },
  ])('fscanf("%d %<$width>s") over $text', ({ text, width, minor }) => {
    expect(findMiscMinor(text, 'blktap-control', width)).toBe(minor);
  });
});

describe('tap_ctl_blk_major over /proc/devices', () => {
  test.each([
    { buf: '254 tapdev\n', scan: { n: 1, major: 254, matched: true } },
    { buf: '253 tapdevfoo\n', scan: { n: 1, major: 253, matched: true } },
    { buf: '  8 sd\n', scan: { n: 1, major: 8, matched: false } },
    { buf: 'Block devices:\n', scan: { n: 0, matched: false } },
    { buf: '\n', scan: { n: 0, matched: false } },
  ])('sscanf("%d tapdev%n") on $buf', ({ buf, scan }) => {
    expect(scanTapdevLine(buf)).toEqual(scan);
  });

  test('fgets(buf, 32) cuts long lines into 31-byte chunks', () => {
    const long = `${'x'.repeat(40)}\n254 tapdev\n`;
    expect(fgetsChunks(long, 32)).toEqual(['x'.repeat(31), `${'x'.repeat(9)}\n`, '254 tapdev\n']);
  });

  test('the tapdev major with the driver loaded; without it, the quirk returns the last block major', async () => {
    const r = await host(async (h) => ({
      devices: await h.k.ns.readAttribute('/proc/devices'),
      major: await h.library((ctx) => tapCtlBlkMajor(ctx)),
    }));
    expect(r.devices).toBe('Character devices:\n 10 misc\n254 blktap2\n\nBlock devices:\n254 tapdev\n');
    expect(r.major).toBe(254);

    const without = await host(
      async (h) => {
        const empty = await h.library((ctx) => tapCtlBlkMajor(ctx));
        h.k.blocks.registerBlkdev(202, 'xvd');
        h.k.blocks.registerBlkdev(8, 'sd');
        return { empty, other: await h.library((ctx) => tapCtlBlkMajor(ctx)) };
      },
      { blktap: false },
    );
    // No line names tapdev: "Block devices:" last gives -ENODEV; a last "202 xvd" leaves 202 behind.
    expect(without).toEqual({ empty: -19, other: 202 });
  });
});
