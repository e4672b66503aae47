/** The host a shell starts with when no scenario file is given: one guest, one 16 MiB raw image on a tap disk. */
import { scenario } from '../../scenario/load.js';
import type { Scenario } from '../../scenario/model.js';

export const DEFAULT_GUEST = 'guest1';

export function defaultHost(): Scenario {
  // The language needs a step; the shell's default host has none (the user types them).
  const s = scenario({
    name: 'shell',
    description: 'xenpv shell default host: guest1 with a 16 MiB raw image on a tap disk (xvda)',
    host: { memory: '64MiB', images: [{ name: 'disk.img', size: '16MiB', format: 'raw', fill: 'zero' }] },
    domains: [
      {
        name: DEFAULT_GUEST,
        memory: '16MiB',
        disks: ['format=raw, vdev=xvda, access=rw, backendtype=tap, target=disk.img'],
      },
    ],
    steps: [{ xl: `create /etc/xen/${DEFAULT_GUEST}.cfg` }],
  });
  return { ...s, steps: [] };
}
