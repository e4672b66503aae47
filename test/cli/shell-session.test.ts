import { describe, expect, it } from 'vitest';
import { ShellSession } from '../../emulator/cli/shell/session.js';

const CREATE = 'xl create /etc/xen/guest1.cfg';

/** Runs lines through one session and returns each line's result. */
async function session(lines: string[], file?: string) {
  const s = await ShellSession.open(file, { engine: 'sim', colorLevel: 0 });
  try {
    const results = [];
    for (const l of lines) results.push(await s.execute(l));
    return results;
  } finally {
    await s.close();
  }
}

describe('shell sim backend: one run per session', () => {
  it('runs 200 commands on one machine: every write is read back and the store keeps them all', async () => {
    const lines = [CREATE];
    for (let i = 0; i < 50; i++) {
      const off = `offset=${i * 4}K`;
      lines.push(`dd guest1 xvda write ${off} len=4K pattern=random:${i}`);
      lines.push(`dd guest1 xvda read ${off} len=4K verify=random:${i}`);
      lines.push(`xenstore-write /session/n${i} v${i}`);
    }
    while (lines.length < 199) lines.push(lines.length % 2 === 0 ? 'ps' : 'xl list');
    lines.push('xenstore-ls /session');
    expect(lines).toHaveLength(200);
    const results = await session(lines);
    const failed = results.map((r, i) => ({ i, r })).filter(({ r }) => !r.ok);
    expect(failed).toEqual([]);
    for (let i = 0; i < 50; i++) {
      expect(results[2 + 3 * i].out).toContain(`verify=random:${i}: 4096 bytes match`);
    }
    const ls = results[199].out;
    expect(ls).toHaveLength(50);
    expect(ls[0]).toBe('n0 = "v0"');
    expect(ls[49]).toBe('n49 = "v49"');
    const lastList = lines.lastIndexOf('xl list');
    expect(results[lastList].out.join('\n')).toMatch(/guest1 +1 /);
    expect(results[lastList + 1].out[0]).toBe('  PID  PPID S COMMAND');
  });

  it('a wrong verify fails that command only; the machine goes on', async () => {
    const r = await session([
      CREATE,
      'dd guest1 xvda write len=4K pattern=random:1',
      'dd guest1 xvda read len=4K verify=random:2',
      'dd guest1 xvda read len=4K verify=random:1',
    ]);
    expect(r.map((x) => x.ok)).toEqual([true, true, false, true]);
    expect(r[2].err.join('\n')).toMatch(/data differs from the pattern at byte \d+/);
    expect(r[3].out).toContain('verify=random:1: 4096 bytes match');
  });

  it('timers a command leaves run before the next one: the stall it set off is in its own output', async () => {
    const r = await session(
      ['step 3', 'ps', 'tap-ctl list', 'stalls'],
      'scenarios/blktap2-teardown-deadlock.yaml',
    );
    // step 3 is create, write and shutdown; the destroy xl's daemon runs then stalls on DETACH until
    // tap-ctl's 5 s select() timeout, which fires before `ps` can look.
    const step = r[0].out.join('\n');
    expect(step).toMatch(/steps\[2\] \(line \d+\): guest1: shutdown: ok/);
    expect(step).toMatch(/broken by tap-ctl select\(\) timeout/);
    expect(r[1].out.join('\n')).not.toMatch(/waits for DETACH_RSP/);
    expect(r[2].out).toEqual(['minor=0']);
    expect(r[3].out.join('\n')).toMatch(/waits for tapdev0 to have no openers/);
  });

  it('the clock and the trace are read during the run, and time stands still between idle commands', async () => {
    const s = await ShellSession.open(undefined, { engine: 'sim', colorLevel: 0 });
    try {
      await s.execute(CREATE);
      const t1 = await s.execute('timeline');
      const t2 = await s.execute('timeline');
      expect(t1.out.length).toBeGreaterThan(0);
      // Nothing ran in between: the same events, no later time.
      expect(t2.out).toEqual(t1.out);
      await s.execute('sleep 2s');
      const t3 = await s.execute('timeline --since 2s');
      expect(t3.out.every((l) => !/^ +[01]\.\d{6} /.test(l))).toBe(true);
    } finally {
      await s.close();
    }
  });
});
