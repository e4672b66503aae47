import { describe, expect, test } from 'vitest';
import { KernelOops, kernelOops, logOops, OOPS_PREFIX } from '../../emulator/kernel/oops.js';
import { runKernel } from './sim-kernel.js';

describe('kernel oops', () => {
  test.each([
    [undefined, ['BUG: KASAN: use-after-free in f', 'f touched x']],
    [2, ['BUG: KASAN: use-after-free in f', 'f touched x', 'Oops: 0000 [#2] SMP']],
  ])('logOops numbered %s: log lines in order and one oops event', async (number, lines) => {
    const r = await runKernel(async (_k, env) => {
      logOops(env, 'drv', 'KASAN: use-after-free in f', 'f touched x', number);
    });
    expect(r.outcome).toBe('completed');
    expect(
      Object.values(r.dmesg)
        .flat()
        .filter((l) => /BUG|touched|Oops/.test(l))
        .map((l) => l.replace(/^.*?drv: /, '')),
    ).toEqual(lines);
    const oops = r.trace.filter((e) => e.kind === 'oops');
    expect(oops.map((e) => [e.comp, e.fields])).toEqual([
      ['drv', { bug: 'KASAN: use-after-free in f', detail: 'f touched x' }],
    ]);
  });

  test("dom0's kernelOops ends the run with an error carrying the BUG line", async () => {
    const r = await runKernel(async (_k, env) => {
      kernelOops(env, 'blkback', 'unable to handle kernel paging request in make_response', 'ring unmapped');
      await env.sleep(10);
      return 'not reached';
    });
    expect(r.outcome).toBe('error');
    expect(r.error?.message).toContain(
      `${OOPS_PREFIX}unable to handle kernel paging request in make_response (ring unmapped)`,
    );
    expect(r.trace.filter((e) => e.kind === 'oops')).toHaveLength(1);
  });

  test('KernelOops carries the bug and detail and prints as the log line does', () => {
    const e = new KernelOops('bad', 'why');
    expect([e.name, e.bug, e.detail, e.message]).toEqual(['KernelOops', 'bad', 'why', 'BUG: bad (why)']);
  });
});
