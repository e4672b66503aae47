import { describe, expect, test } from 'vitest';
import { toMermaid } from '../../emulator/trace/mermaid.js';
import { checkChromeTrace, toChromeTrace } from '../../emulator/trace/perfetto.js';
import { GUEST_CFG, onToolHost } from '../toolstack/libxl-harness.js';

const BE = '/local/domain/0/backend/vbd/1/51712';
const FE = '/local/domain/1/device/vbd/51712';

async function destroyUnder(version: '4.1' | '4.2') {
  return onToolHost({ libxl: version, configs: { '/etc/xen/guest1.cfg': GUEST_CFG } }, async (h) => {
    const create = await h.xl(['create', '/etc/xen/guest1.cfg']);
    if (create.code !== 0) throw new Error(create.out.join('\n'));
    await h.xs.write(`${FE}/state`, '6');
    for (let i = 0; i < 100 && (await h.xs.tryRead(`${BE}/state`)) !== '6'; i++) await h.env.sleep(1);
    await h.xl(['destroy', 'guest1']);
    await h.env.sleep(100);
  });
}

describe('teaching views of the real 2012 teardown (libxl 4.1 vs 4.2 on the sim host)', () => {
  test('4.1: the Perfetto trace is valid and shows the stall; the diagram shows the lost DETACH reply', async () => {
    const r = await destroyUnder('4.1');
    expect(r.outcome).toBe('completed');
    const trace = toChromeTrace(r.trace, { endTime: r.endTime });
    expect(checkChromeTrace(trace)).toEqual([]);
    const stalls = trace.traceEvents.filter((e) => e.name === 'STALL');
    expect(stalls.length).toBeGreaterThan(0);
    expect(stalls[0]).toMatchObject({ ph: 'i', s: 'g' });
    const mermaid = toMermaid(r.trace);
    expect(mermaid).toContain('  rect rgb(255,228,225)');
    expect(mermaid).toMatch(/tapctl-xtd\d+: no DETACH_RSP after 5 s \(select timeout\)/);
    expect(mermaid).toMatch(/bb->>xs: backend\/vbd\/1\/51712\/state = (6|Closed)/);
    // the host controller runs dom0's user space here: it is drawn as dom0, never as a guest
    expect(mermaid).not.toContain('participant fe');
    expect(mermaid).toContain('  xs-)bb: watch fires: /local/domain/1/device/vbd/51712/state = Closed(6)');
    expect(mermaid).not.toMatch(/Note over td\d+: (message|reply) /);
  });

  test('4.2: no stall in either view', async () => {
    const r = await destroyUnder('4.2');
    expect(r.outcome).toBe('completed');
    const trace = toChromeTrace(r.trace, { endTime: r.endTime });
    expect(checkChromeTrace(trace)).toEqual([]);
    expect(trace.traceEvents.filter((e) => e.name === 'STALL')).toEqual([]);
    const mermaid = toMermaid(r.trace);
    expect(mermaid).not.toContain('rect rgb');
    expect(mermaid).toMatch(/tapctl->>td\d+: DETACH/);
  });
});
