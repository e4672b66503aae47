import { describe, expect, it } from 'vitest';
import { connect, GUEST, hostValue } from './fixtures/host.js';
import type { HostileMode } from './fixtures/test-backend.js';

const table: Array<{ mode: HostileMode; line: string; persistent?: boolean; badOk?: boolean }> = [
  { mode: 'overflow', line: 'xvda: illegal number of responses' },
  { mode: 'bad-id', line: 'xvda: response has incorrect id (1000)' },
  // The first copy of the response completes the request; the repeat names an id no longer pending.
  { mode: 'completed-id', line: 'xvda: response references no pending request', badOk: true },
  { mode: 'wrong-op', line: 'xvda: response has wrong operation (0 instead of 1)' },
  { mode: 'keep-mapped', line: 'backed has not unmapped grant:', persistent: false },
];

describe('blkfront against a hostile backend (protocol.md 2.5)', () => {
  it.each(table)(
    '$mode ⇒ error state, ring abandoned, "$line"',
    async ({ mode, line, persistent, badOk }) => {
      const { value, result } = await hostValue(
        async (ctl) => {
          await connect(ctl);
          const h = (await ctl.call(GUEST, 'open', 'xvda')) as number;
          const first = await ctl.call(GUEST, 'write', h, 0, 4096, 'seq');
          const bad = await ctl.call(GUEST, 'write', h, 8192, 4096, 'seq');
          const after = await ctl.call(GUEST, 'write', h, 16384, 4096, 'seq');
          const requestsAfter = ((await ctl.call(0, 'stats')) as { requests: number }).requests;
          await ctl.call(0, 'releaseLeftMapped');
          await ctl.call(GUEST, 'settle', 2000);
          return {
            first,
            bad,
            after,
            requestsAfter,
            state: await ctl.call(GUEST, 'state'),
            grants: await ctl.call(GUEST, 'grants'),
          };
        },
        { backend: { hostile: { mode, at: 1 } }, blkfront: { featurePersistent: persistent ?? true } },
      );
      expect(value.first).toMatchObject({ error: undefined });
      expect(value.bad).toMatchObject({ error: badOk ? undefined : 'EIO' });
      expect(value.after).toMatchObject({ error: 'EIO' });
      expect(value.requestsAfter).toBe(2); // nothing more reached the ring
      expect(value.state).toMatchObject({ connected: 'error' });
      const dmesg = result.dmesg[GUEST] ?? [];
      expect(dmesg.some((l) => l.includes(line))).toBe(true);
      expect(dmesg.some((l) => l.includes('xvda disabled for further use'))).toBe(true);
      // The still-mapped grant was deferred and, once the backend let go, revoked.
      expect(value.grants).toMatchObject({ deferred: 0 });
    },
  );
});
