import { describe, expect, it } from 'vitest';
import { hostValue, runHost } from './harness.js';

describe('xenbus client over the xenstore ring (sim engine, real daemon)', () => {
  it('reads, writes, lists and removes relative to the domain home', async () => {
    const v = await hostValue(async (ctl) => {
      const out: unknown[] = [];
      out.push(await ctl.call(1, 'op', 'write', 'data/a', 'hello'));
      out.push(await ctl.call(1, 'op', 'read', 'data/a'));
      out.push(await ctl.call(1, 'op', 'write', 'data/b', ''));
      out.push(await ctl.call(1, 'op', 'directory', 'data'));
      out.push(await ctl.call(1, 'op', 'exists', 'data/b'));
      out.push(await ctl.call(1, 'op', 'rm', 'data'));
      out.push(await ctl.call(1, 'op', 'exists', 'data'));
      out.push(await ctl.call(1, 'op', 'getDomainPath', '1'));
      out.push(await ctl.call(0, 'read', '/local/domain/1/data/a'));
      return out;
    });
    expect(v).toEqual([
      { ok: undefined },
      { ok: 'hello' },
      { ok: undefined },
      { ok: ['a', 'b'] },
      { ok: true },
      { ok: undefined },
      { ok: false },
      { ok: '/local/domain/1' },
      undefined,
    ]);
  });

  it.each([
    ['read of a missing node', 'read', 'nothing/here', undefined, 'ENOENT'],
    ['write outside the home', 'write', '/local/domain/0/stolen', 'x', 'EACCES'],
    ['read of dom0 home', 'read', '/local/domain/0', undefined, 'EACCES'],
    ['rm whose parent is missing', 'rm', 'no/such/thing', undefined, 'ENOENT'],
    ['invalid path characters', 'write', 'data/bad*name', 'x', 'EINVAL'],
  ])('%s is refused with a typed XenstoreError', async (_n, op, path, value, code) => {
    const r = (await hostValue((ctl) => ctl.call(1, 'op', op, path, value))) as {
      error: string;
      message: string;
    };
    expect(r.error).toBe(code);
    expect(r.message).toContain(path.replace('*', '*'));
  });

  it.each([
    ['tryRead of a present node', 'tryRead', 'data/a', { ok: 'hello' }],
    ['tryRead of a missing node', 'tryRead', 'data/none', { ok: undefined }],
    ['tryRead refused', 'tryRead', '/local/domain/0', { error: 'EACCES' }],
    ['tryRead of a bad path', 'tryRead', 'data/bad*', { error: 'EINVAL' }],
    ['tryDirectory of a present node', 'tryDirectory', 'data', { ok: ['a'] }],
    ['tryDirectory of a missing node', 'tryDirectory', 'data/none', { ok: undefined }],
    ['tryDirectory refused', 'tryDirectory', '/local/domain/0', { error: 'EACCES' }],
    ['exists of a present node', 'exists', 'data/a', { ok: true }],
    ['exists of a missing node', 'exists', 'data/none', { ok: false }],
    ['exists refused', 'exists', '/local/domain/0', { ok: false }],
    ['tryRm of a missing node under a present parent', 'tryRm', 'data/none', { ok: true }],
    ['tryRm whose parent is missing', 'tryRm', 'no/such/thing', { ok: false }],
    ['tryRm refused', 'tryRm', '/local/domain/0/x', { error: 'EACCES' }],
    ['tryRm of a present node', 'tryRm', 'data/a', { ok: true }],
  ])('%s', async (_n, op, path, expected) => {
    const v = (await hostValue(async (ctl) => {
      await ctl.call(1, 'op', 'write', 'data/a', 'hello');
      const r = await ctl.call(1, 'op', op, path);
      return [r, await ctl.call(1, 'op', 'exists', 'data/a')];
    })) as [{ ok?: unknown; error?: string }, unknown];
    const [r, after] = v;
    expect('error' in expected ? { error: r.error } : r).toEqual(expected);
    expect(after).toEqual({ ok: !(op === 'tryRm' && path === 'data/a') });
  });

  it('values larger than the 1024-byte ring cross it intact in both directions', async () => {
    const big = Array.from({ length: 2000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
    const v = await hostValue(async (ctl) => {
      await ctl.call(1, 'op', 'write', 'big', big);
      return [await ctl.call(1, 'op', 'read', 'big'), await ctl.call(0, 'read', '/local/domain/1/big')];
    });
    expect(v).toEqual([{ ok: big }, big]);
  });

  it('withTransaction redoes the whole function when a concurrent writer causes EAGAIN', async () => {
    const r = await runHost((ctl) => ctl.call(1, 'txRace'));
    expect(r.outcome).toBe('completed');
    expect(r.value).toEqual({ attempts: 2, final: '101' });
    expect(r.trace.some((e) => e.kind === 'xs-transaction-retry' && e.dom === 1)).toBe(true);
  });

  it('a request whose notification is lost blocks with a declared wait naming xenstored', async () => {
    const r = await runHost(
      async (ctl) => {
        await ctl.call(0, 'settle', 1); // xenstored has drained everything and sleeps on its rings
        return ctl.call(1, 'op', 'write', 'data/x', '1');
      },
      { guestConfig: { muteNotify: true } },
    );
    expect(r.outcome).toBe('deadlock');
    const chain = r.stalls.at(-1)!.chain;
    const link = chain.find((l) => l.waitsFor === 'xenstore reply to WRITE data/x');
    expect(link, JSON.stringify(chain)).toBeDefined();
    expect(link!.holder).toMatch(/^dom1\/op/);
    expect(chain.some((l) => /^dom0\/xenstored/.test(l.holder))).toBe(true);
  });
});
