/**
 * `npm run bench`: every figure measured in one run, each with its ratio to the transport limit (a).
 * Not part of the tests: speed is measured here, never asserted.
 */

import { blkIoCases } from './blk-io.js';
import { evtchnCases } from './evtchn.js';
import { grantMapCases } from './grant-map.js';
import { type BenchCase, type Figure, formatTable, runCases } from './harness.js';
import { lifecycleCases } from './lifecycle.js';
import { measureTransportLimit } from './transport-limit.js';
import { xenstoreCases } from './xenstore.js';

export const TRANSPORT_LIMIT = 'transport limit: 32-slot ring + 4 KiB copy';

export function benchCases(): BenchCase[] {
  return [
    { name: TRANSPORT_LIMIT, unit: 'ops/s', run: () => measureTransportLimit() },
    ...evtchnCases(TRANSPORT_LIMIT),
    ...grantMapCases(TRANSPORT_LIMIT),
    ...xenstoreCases(TRANSPORT_LIMIT),
    ...blkIoCases(TRANSPORT_LIMIT),
    ...lifecycleCases(),
  ];
}

/**
 * The cases whose name contains `only` (case-insensitive), with the baselines they are compared with;
 * every case when `only` is undefined.
 */
export function selectCases(all: BenchCase[], only: string | undefined): BenchCase[] {
  if (only === undefined) return all;
  const wanted = all.filter((c) => c.name.toLowerCase().includes(only.toLowerCase()));
  if (wanted.length === 0) {
    throw new Error(
      `--only ${JSON.stringify(only)} matches no figure; the figures are:\n${all.map((c) => `  ${c.name}`).join('\n')}`,
    );
  }
  const bases = new Set(wanted.map((c) => c.baseline).filter((b) => b !== undefined));
  return all.filter((c) => wanted.includes(c) || bases.has(c.name));
}

export async function runBench(options: {
  json: boolean;
  only?: string;
  log: (line: string) => void;
}): Promise<Figure[]> {
  const cases = selectCases(benchCases(), options.only);
  const progress = options.json ? () => {} : (line: string) => options.log(line);
  const figures = await runCases(cases, progress);
  if (options.json) options.log(JSON.stringify(figures, null, 2));
  else for (const line of formatTable(figures)) options.log(line);
  return figures;
}
