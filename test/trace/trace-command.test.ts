import { describe, expect, test } from 'vitest';
import { type TraceArgs, traceCommand } from '../../emulator/cli/commands/trace.js';
import { checkChromeTrace } from '../../emulator/trace/perfetto.js';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  const files = new Map<string, string>();
  return {
    out,
    err,
    files,
    io: {
      out: (l: string) => out.push(l),
      err: (l: string) => err.push(l),
      writeFile: (p: string, t: string) => files.set(p, t),
    },
  };
}

const base: TraceArgs = {
  file: 'scenarios/hello-grant.yaml',
  output: 'out.json',
  engine: 'sim',
  timeScale: 0.01,
  rings: false,
};

describe('xenpv trace', () => {
  test('runs a scenario, writes a valid Perfetto trace and a Mermaid file, prints the summary', async () => {
    const h = io();
    const code = await traceCommand({ ...base, seed: 3, mermaid: 'out.mmd' }, h.io);
    expect(h.err).toEqual([]);
    expect(code).toBe(0);
    const trace = JSON.parse(h.files.get('out.json')!);
    expect(checkChromeTrace(trace)).toEqual([]);
    expect(trace.displayTimeUnit).toBe('ms');
    const processes = trace.traceEvents.filter((e: { name: string }) => e.name === 'process_name');
    expect(processes.map((e: { args: { name: string } }) => e.args.name)).toContain('dom0');
    expect(h.files.get('out.mmd')!.startsWith('sequenceDiagram\n')).toBe(true);
    expect(h.out[0]).toMatch(
      /^out\.json: \d+ events from 3 domain\(s\) -> .*\(sim seed 3\); PASS, diagram in out\.mmd$/,
    );
    expect(h.out[1]).toBe('open it: https://ui.perfetto.dev -> "Open trace file" -> out.json');
  });

  test.each<[string, Partial<TraceArgs>, string]>([
    ['time scale', { timeScale: 0 }, 'xenpv trace: --time-scale must be a positive number, got 0'],
    ['seed', { seed: 1.5 }, 'xenpv trace: --seed must be an integer, got 1.5'],
    [
      'same output twice',
      { mermaid: 'out.json' },
      'xenpv trace: --mermaid out.json: the same path as -o; give another file',
    ],
  ])('bad %s is refused with exit 2', async (_what, change, message) => {
    const h = io();
    expect(await traceCommand({ ...base, ...change }, h.io)).toBe(2);
    expect(h.err).toEqual([message]);
    expect(h.files.size).toBe(0);
  });

  test('a missing scenario file gives exit 2 and the loader message', async () => {
    const h = io();
    expect(await traceCommand({ ...base, file: 'scenarios/does-not-exist.yaml' }, h.io)).toBe(2);
    expect(h.err.join('\n')).toContain('does-not-exist.yaml');
    expect(h.files.size).toBe(0);
  });
});
