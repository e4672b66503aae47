import { describe, expect, it } from 'vitest';
import { runHost } from './harness.js';

describe('xenstore ring across worker threads (threads engine)', () => {
  it('a guest worker and the dom0 worker talk through the shared ring page and kicks', async () => {
    const big = 'x'.repeat(1900); // under the 2048-byte node quota, over the 1024-byte ring
    const r = await runHost(
      async (ctl) => {
        const out: unknown[] = [];
        out.push(await ctl.call(1, 'op', 'write', 'data/big', big));
        out.push(await ctl.call(1, 'op', 'read', 'data/big'));
        out.push(await ctl.call(1, 'op', 'directory', 'data'));
        out.push(await ctl.call(1, 'op', 'read', 'data/none'));
        out.push(await ctl.call(0, 'read', '/local/domain/1/data/big'));
        out.push(await ctl.call(1, 'txRace'));
        const log = (await ctl.call(1, 'watchSerial')) as { what: string }[];
        out.push(log.map((e) => e.what));
        return out;
      },
      { engine: 'threads' },
    );
    expect(r.error).toBeUndefined();
    expect(r.outcome).toBe('completed');
    const v = r.value as unknown[];
    expect(v[0]).toEqual({ ok: undefined });
    expect(v[1]).toEqual({ ok: big });
    expect(v[2]).toEqual({ ok: ['big'] });
    expect(v[3]).toMatchObject({ error: 'ENOENT' });
    expect(v[4]).toBe(big);
    expect(v[5]).toEqual({ attempts: 2, final: '101' });
    expect(v[6]).toEqual(['writes', 'A start a/x', 'A end a/x', 'B b/y']);
  });
});
