/**
 * The machine-config knobs the data-path tests and `bench` use: dom0 block devices for `phy` targets,
 * blkfront module parameters per guest, blkback module parameters. Bad values name the field.
 */
import { describe, expect, test } from 'vitest';
import {
  checkMachineConfig,
  MACHINE_DEFAULT_VERSIONS,
  type MachineConfig,
} from '../../emulator/machine/config.js';

function base(extra: Partial<MachineConfig> = {}): MachineConfig {
  return {
    guests: [{ name: 'g', memory: 16 << 20, abi: 'x86_64', disks: [] }],
    versions: { ...MACHINE_DEFAULT_VERSIONS },
    memory: 64 << 20,
    ...extra,
  };
}

describe('machine config: block devices and driver parameters', () => {
  test('valid knobs pass', () => {
    expect(() =>
      checkMachineConfig(
        base({
          guests: [
            {
              name: 'g',
              memory: 16 << 20,
              abi: 'x86_64',
              disks: [],
              blkfront: { maxIndirectSegments: 0, featurePersistent: false, maxRingPageOrder: 2 },
            },
          ],
          blkback: { featurePersistent: false, maxRingPageOrder: 0, maxPersistentGrants: 0 },
          blockDevices: [
            { name: 'loop0', backing: { kind: 'file', path: '/tmp/x.img' } },
            { name: 'ram0', backing: { kind: 'memory', sizeBytes: 1 << 20 }, latencyMs: 0 },
          ],
        }),
      ),
    ).not.toThrow();
  });

  const bad: Array<[string, Partial<MachineConfig>, string]> = [
    [
      'device name',
      { blockDevices: [{ name: 'Loop0', backing: { kind: 'memory', sizeBytes: 512 } }] },
      'blockDevices[0].name must match [a-z][a-z0-9]*, got "Loop0"',
    ],
    [
      'duplicate device',
      {
        blockDevices: [
          { name: 'ram0', backing: { kind: 'memory', sizeBytes: 512 } },
          { name: 'ram0', backing: { kind: 'memory', sizeBytes: 512 } },
        ],
      },
      'blockDevices[1].name "ram0" is used twice',
    ],
    [
      'relative file',
      { blockDevices: [{ name: 'loop0', backing: { kind: 'file', path: 'disk.img' } }] },
      'blockDevices[0].backing.path must be an absolute path, got "disk.img"',
    ],
    [
      'memory size',
      { blockDevices: [{ name: 'ram0', backing: { kind: 'memory', sizeBytes: 1000 } }] },
      'blockDevices[0].backing.sizeBytes must be a positive multiple of 512, got 1000',
    ],
    [
      'backing kind',
      { blockDevices: [{ name: 'ram0', backing: { kind: 'nbd' } as never }] },
      'blockDevices[0].backing.kind must be "file" or "memory", got "nbd"',
    ],
    [
      'latency',
      { blockDevices: [{ name: 'ram0', backing: { kind: 'memory', sizeBytes: 512 }, latencyMs: -1 }] },
      'blockDevices[0].latencyMs must be a non-negative number, got -1',
    ],
    [
      'blkfront indirect',
      {
        guests: [
          { name: 'g', memory: 16 << 20, abi: 'x86_64', disks: [], blkfront: { maxIndirectSegments: 5000 } },
        ],
      },
      'guests[0].blkfront.maxIndirectSegments must be an integer in 0..4096, got 5000',
    ],
    [
      'blkfront persistent',
      {
        guests: [
          {
            name: 'g',
            memory: 16 << 20,
            abi: 'x86_64',
            disks: [],
            blkfront: { featurePersistent: 'yes' as never },
          },
        ],
      },
      'guests[0].blkfront.featurePersistent must be true or false, got "yes"',
    ],
    [
      'blkback ring order',
      { blkback: { maxRingPageOrder: 5 } },
      'blkback.maxRingPageOrder must be an integer in 0..4, got 5',
    ],
  ];
  test.each(bad)('%s is refused with the field and value', (_what, extra, message) => {
    expect(() => checkMachineConfig(base(extra))).toThrow(`machine config: ${message}`);
  });
});
