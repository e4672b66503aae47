import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { shellCommand } from '../../emulator/cli/commands/shell.js';
import { ddSummary, xenstoreLsLines, xenstoreValueText } from '../../emulator/cli/shell/engine-command.js';
import { gntmapNames, gtfNames } from '../../emulator/cli/shell/grants.js';
import { COMMANDS } from '../../emulator/cli/shell/help.js';
import { completeCommand } from '../../emulator/cli/shell/repl.js';
import { THREADS_TIME_SCALE } from '../threads-time.js';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

async function shell(
  lines: string[],
  opts: { file?: string; keepGoing?: boolean; engine?: 'sim' | 'threads'; seed?: number } = {},
): Promise<{ code: number; out: string; err: string }> {
  const input = new PassThrough();
  input.end(`${lines.join('\n')}\n`);
  const output = new Capture();
  const error = new Capture();
  const code = await shellCommand(
    {
      engine: opts.engine ?? 'sim',
      timeScale: THREADS_TIME_SCALE,
      keepGoing: opts.keepGoing ?? false,
      ...(opts.file ? { file: opts.file } : {}),
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    },
    { input, output, error, tty: false },
  );
  return { code, out: output.text, err: error.text };
}

const CREATE = 'xl create /etc/xen/guest1.cfg';

describe('xenpv shell (sim, piped)', () => {
  it('creates a guest with xl and lists it', async () => {
    const r = await shell(['xl list', CREATE, 'xl list']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lists = r.out.split('Name ').slice(1);
    expect(lists).toHaveLength(2);
    expect(lists[0]).toMatch(/Domain-0 +0 /);
    expect(lists[0]).not.toMatch(/^guest1 /m);
    expect(lists[1]).toMatch(/guest1 +1 /);
    expect(r.out).toContain('Parsing config from /etc/xen/guest1.cfg');
  });

  it('writes with dd and reads back with verification through the whole stack', async () => {
    const r = await shell([
      CREATE,
      'dd guest1 xvda write offset=4K len=64K pattern=random:7',
      'dd guest1 xvda read offset=4K len=64K verify=random:7',
      'dd guest1 xvda read offset=4K len=64K verify=seq',
    ]);
    expect(r.out).toMatch(/^65536 bytes \(65\.5 kB, 64\.0 KiB\) copied, /m);
    expect(r.out).toContain('verify=random:7: 65536 bytes match');
    expect(r.err).toMatch(/^line 4: .*data differs from the pattern at byte \d+/m);
    expect(r.code).toBe(1);
  });

  it('shows the backend in xenstore-ls and the tapdisk in tap-ctl list', async () => {
    const r = await shell([CREATE, 'xenstore-ls /local/domain/0/backend/vbd/1', 'tap-ctl list']);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/^51712 = ""$/m);
    expect(r.out).toMatch(/^ state = "4"$/m);
    expect(r.out).toMatch(/^ params = "\/dev\/xen\/blktap-2\/tapdev0"$/m);
    expect(r.out).toMatch(/^ frontend = "\/local\/domain\/1\/device\/vbd\/51712"$/m);
    expect(r.out).toMatch(/^pid=\d+ minor=0 state=0 args=aio:\S+\/disk\.img$/m);
  });

  it('prints ring lines, grants and event channels of the connected disk', async () => {
    const r = await shell([
      CREATE,
      'dd guest1 xvda write len=4K',
      'ring guest1 xvda',
      'grants guest1',
      'grants',
      'evtchn guest1',
    ]);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/^\d+\.\d{6} dom0 vbd-1-51712\/0$/m);
    expect(r.out).toMatch(
      /^ {2}req prod \d+ cons \d+ event \d+ {2}(BUSY|IDLE|STUCK) \(next push (notifies|silent)\)$/m,
    );
    expect(r.out).toMatch(/^ {2}rsp prod \d+ pvt \d+ event \d+ {2}(BUSY|IDLE|STUCK) /m);
    // guest1's ring page granted to dom0 and mapped there.
    expect(r.out).toMatch(/^guest1 \(d1\): \d+ grant entries in use/m);
    expect(r.out).toMatch(/^ +\d+ +0 +\d+ +permit_access\|reading\|writing +hstw=1$/m);
    expect(r.out).toMatch(/^Domain-0 \(d0\): .*\n {2}maps \d+ foreign grant\(s\):/m);
    expect(r.out).toMatch(/^ +\d+ +1 +8 +host_map$/m);
    expect(r.out).toMatch(/^guest1 \(d1\): \d+ port\(s\) bound, x86_64 shared_info/m);
    expect(r.out).toMatch(/^ +\d+ +interdomain +d0 port \d+ +0 +[01] +[01]$/m);
  });

  it('reports an unknown command on stderr with its line number and a suggestion', async () => {
    const r = await shell(['# a comment', 'xll list', 'xenstore-raed /local', 'xl list']);
    expect(r.err).toContain('line 2: unknown command "xll"; did you mean "xl"?');
    expect(r.err).toContain('line 3: unknown command "xenstore-raed"; did you mean "xenstore-read"?');
    expect(r.out).toMatch(/Domain-0/);
    expect(r.code).toBe(1);
    const k = await shell(['xll list'], { keepGoing: true });
    expect(k.code).toBe(0);
    expect(k.err).toContain('line 1: unknown command');
  });

  it('rejects bad arguments with the field and value', async () => {
    const r = await shell([
      'dd guest2 xvda read',
      'dd guest1 xvda wirte',
      'dd guest1 xvda write len=12XB',
      'xenstore-read local/domain',
      'sleep soon',
      'grants nosuch',
    ]);
    const err = r.err.split('\n');
    expect(err[0]).toMatch(/^line 1: dd: no guest "guest2"; did you mean "guest1"\?/);
    expect(err[1]).toMatch(
      /^line 2: dd: the operation is write or read, got "wirte"; did you mean "write"\?/,
    );
    expect(err[2]).toMatch(/^line 3: dd: len: bad size "12XB"/);
    expect(err[3]).toMatch(/^line 4: xenstore-read: give an absolute path/);
    expect(err[4]).toMatch(/^line 5: sleep: /);
    expect(err[5]).toMatch(/^line 6: no domain "nosuch"/);
  });

  it('prints help for every command and details for one', async () => {
    const r = await shell(['help', 'help dd', 'help nosuch']);
    for (const h of Object.values(COMMANDS)) expect(r.out).toContain(h.usage);
    expect(r.out).toContain('How time passes');
    expect(r.out).toContain('usage: dd GUEST DISK write|read');
    expect(r.err).toContain('line 3: help: no command "nosuch"');
  });

  it('keeps history and stops at quit', async () => {
    const r = await shell(['xl list', 'history', 'quit', 'xll']);
    expect(r.out).toMatch(/^ {4}1 {2}xl list$/m);
    expect(r.out).toMatch(/^ {4}2 {2}history$/m);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });

  it('is deterministic: the same script gives the same output', async () => {
    const script = [CREATE, 'dd guest1 xvda write len=8K', 'ps', 'evtchn', 'grants'];
    const a = await shell(script);
    const b = await shell(script);
    const norm = (s: string) => s.replace(/xenpv-shell-[^/]+/g, 'WORK');
    expect(norm(a.out)).toBe(norm(b.out));
  });

  it('steps through a scenario: the 2012 teardown stall, broken by the select() timeout', async () => {
    const r = await shell(['step 2', 'ps', 'continue', 'tap-ctl list', 'stalls', 'step', 'dmesg guest1'], {
      file: 'scenarios/blktap2-teardown-deadlock.yaml',
    });
    expect(r.out).toMatch(/steps\[0\] \(line \d+\): xl create \/etc\/xen\/guest1\.cfg: ok/);
    expect(r.out).toMatch(/^ +\d+ +1 S tapdisk2 /m);
    expect(r.out).toMatch(/steps\[3\] \(line \d+\): wait for guest1 to be dead: ok, 5s/);
    expect(r.out).toMatch(/broken by tap-ctl select\(\) timeout/);
    expect(r.out).toMatch(/waits for tapdev0 to have no openers/);
    expect(r.out).toMatch(/^minor=0$/m);
    expect(r.out).toContain('Booting paravirtualized kernel on Xen as d1 (guest1)');
    expect(r.err).toMatch(/^line 6: all 5 step\(s\) of blktap2-teardown-deadlock have run$/m);
  });

  it('says why step needs a scenario on the default host', async () => {
    const r = await shell(['step']);
    expect(r.err).toMatch(/^line 1: not implemented: step\/continue without scenario steps/);
  });
});

describe('xenpv shell (threads)', () => {
  it('runs commands on a live machine and shows its record during the session', async () => {
    const r = await shell(
      [CREATE, 'xl list', 'xenstore-read /local/domain/1/name', 'timeline', 'dmesg guest1', 'stalls'],
      { engine: 'threads' },
    );
    expect(r.out).toMatch(/guest1 +1 /);
    expect(r.out).toMatch(/^guest1$/m);
    // The guest's kernel log lives in its worker: it reached the shell through Engine.progress.
    expect(r.out).toContain('Booting paravirtualized kernel on Xen as d1 (guest1)');
    expect(r.out).toMatch(/^no stalls$/m);
    expect(r.err).toBe('');
  }, 60_000);
});

describe('shell formatting', () => {
  it.each([
    [0, 'invalid'],
    [1, 'permit_access'],
    [1 | 4, 'permit_access|readonly'],
    [1 | 8 | 16, 'permit_access|reading|writing'],
    [2, 'accept_transfer'],
    [3 | 0x100, 'transitive|sub_page'],
    [1 | 0x200, 'permit_access|0x200'],
  ])('GTF flags %i -> %s', (flags, text) => {
    expect(gtfNames(flags)).toBe(text);
  });

  it.each([
    [0, '0'],
    [2, 'host_map'],
    [2 | 4, 'host_map|readonly'],
    [1 | 2 | 16, 'device_map|host_map|contains_pte'],
  ])('GNTMAP flags %i -> %s', (flags, text) => {
    expect(gntmapNames(flags)).toBe(text);
  });

  it('xenstore-ls indents one space per level and escapes values', () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    expect(
      xenstoreLsLines('/a', [
        { path: '/a', value: enc('') },
        { path: '/a/b', value: enc('1') },
        { path: '/a/b/c', value: enc('say "hi"\n') },
        { path: '/ab', value: enc('not below') },
      ]),
    ).toEqual(['b = "1"', ' c = "say \\"hi\\"\\x0a"']);
    expect(xenstoreValueText('\\')).toBe('\\\\');
  });

  it('completes the command word only', () => {
    expect(completeCommand('xenstore-r')).toEqual([['xenstore-read', 'xenstore-rm'], 'xenstore-r']);
    expect(completeCommand('hist')).toEqual([['history'], 'hist']);
    expect(completeCommand('xl li')).toEqual([[], 'xl li']);
  });

  it('dd summary uses decimal and binary sizes and the virtual time', () => {
    expect(ddSummary(65536, 100)).toBe('65536 bytes (65.5 kB, 64.0 KiB) copied, 0.100000 s, 655.4 kB/s');
    expect(ddSummary(1 << 20, 0)).toBe('1048576 bytes (1.0 MB, 1.0 MiB) copied, 0.000000 s');
  });
});
