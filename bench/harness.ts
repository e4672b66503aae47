/**
 * Benchmark bookkeeping: every figure is measured in the same run as the baseline (the transport limit)
 * and printed with its ratio to it, so runs on different machines or commits compare by ratio.
 */

export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** Name of the figure this one is compared with (the transport limit), if any. */
  baseline?: string;
  ratio?: number;
}

export interface BenchCase {
  name: string;
  unit: string;
  /** Which figure this case is compared with; omitted for the baseline itself. */
  baseline?: string;
  /** Runs the measurement and returns the value in `unit` (higher is better unless the unit says so). */
  run(): Promise<number>;
}

/** Run the cases in order, then compute ratios against the baselines measured in this run. */
export async function runCases(
  cases: readonly BenchCase[],
  progress: (line: string) => void,
): Promise<Figure[]> {
  const figures: Figure[] = [];
  for (const c of cases) {
    progress(`measuring ${c.name} ...`);
    const value = await c.run();
    figures.push({ name: c.name, value, unit: c.unit, baseline: c.baseline });
  }
  for (const f of figures) {
    if (!f.baseline) continue;
    const base = figures.find((b) => b.name === f.baseline);
    if (base && base.unit === f.unit && base.value > 0) f.ratio = f.value / base.value;
  }
  return figures;
}

function formatValue(v: number): string {
  if (v >= 100) return Math.round(v).toLocaleString('en-US');
  return v.toPrecision(4);
}

export function formatTable(figures: readonly Figure[]): string[] {
  const nameWidth = Math.max(...figures.map((f) => f.name.length), 4);
  const lines = [`${'name'.padEnd(nameWidth)}  ${'value'.padStart(14)}  unit        ratio`];
  for (const f of figures) {
    const ratio = f.ratio === undefined ? (f.baseline ? '   n/a' : ' (base)') : `${f.ratio.toFixed(3)}x`;
    lines.push(
      `${f.name.padEnd(nameWidth)}  ${formatValue(f.value).padStart(14)}  ${f.unit.padEnd(10)}  ${ratio}`,
    );
  }
  return lines;
}

/** Time `op` repeatedly for about `ms` milliseconds; returns operations per second. */
export function opsPerSecond(op: () => void, ms = 500): number {
  let count = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 256; i++) op();
    count += 256;
    now = performance.now();
  }
  return (count * 1000) / (now - start);
}
