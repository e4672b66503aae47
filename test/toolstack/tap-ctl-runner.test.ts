import { describe, expect, test } from 'vitest';
import { host } from './tap-ctl-harness.js';

describe('tap-ctl command runner', () => {
  test('pause and unpause with a new image: LIST shows the state and path change', async () => {
    const r = await host(async (h) => {
      await h.tapCtl(['create', '-a', 'aio:/srv/a.img']);
      const pause = await h.tapCtl(['pause', '-p', '102', '-m', '0']);
      const paused = await h.tapCtl(['list'], { tty: true });
      const unpause = await h.tapCtl(['unpause', '-p', '102', '-m', '0', '-a', 'vhd:/srv/b.vhd']);
      const resumed = await h.tapCtl(['list']);
      return { pause: pause.code, paused: paused.out, unpause: unpause.code, resumed: resumed.out };
    });
    expect(r).toEqual({
      pause: 0,
      paused: ['     102  0   20        aio /srv/a.img'],
      unpause: 0,
      resumed: ['pid=102 minor=0 state=0 args=vhd:/srv/b.vhd'],
    });
  });

  test('Xen list -t drops rows without a type; xapi keeps them', async () => {
    const r = await host(async (h) => {
      await h.tapCtl(['create', '-a', 'aio:/srv/a.img']);
      await h.tapCtl(['allocate']);
      return [
        (await h.tapCtl(['list', '-t', 'aio'])).out,
        (await h.tapCtl(['list', '-t', 'aio'], { variant: 'xapi' })).out,
      ];
    });
    expect(r).toEqual([
      ['pid=102 minor=0 state=0 args=aio:/srv/a.img'],
      ['pid=102 minor=0 state=0 args=aio:/srv/a.img', 'minor=1'],
    ]);
  });

  test.each([
    {
      argv: [],
      code: 0,
      out: ['usage: tap-ctl COMMAND [OPTIONS]', expect.stringContaining('COMMAND := { list')],
    },
    { argv: ['free'], code: 22, out: ['usage: free <-m minor>'] },
    { argv: ['list', '-h'], code: 0, out: ['usage: list [-h] [-p pid] [-m minor] [-t type] [-f file]'] },
    { argv: ['spawn'], code: 0, out: ['tapdisk spawned with pid 102'] },
  ])('$argv', async ({ argv, code, out }) => {
    const r = await host(async (h) => h.tapCtl(argv));
    expect(r.code).toBe(code);
    expect(r.out).toEqual(out);
  });

  test('xapi spawn prints the bare id on a pipe', async () => {
    const r = await host(async (h) => h.tapCtl(['spawn'], { variant: 'xapi' }));
    expect(r).toMatchObject({ code: 0, out: ['102'] });
  });

  test('spawn of a missing program: exec fails in the child, "spawn failed" and exit 1', async () => {
    const r = await host(async (h) => {
      const { runTapCtl } = await import('../../emulator/toolstack/tap-ctl/command.js');
      let code = -1;
      const proc = h.k.spawn(
        async (p) => {
          code = await runTapCtl(p, ['spawn'], {
            variant: 'xen',
            tty: true,
            kernel: h.k,
            tapdiskProgram: '/nope',
          });
          return code;
        },
        [],
        { name: 'tap-ctl' },
      );
      await h.k.processes.waitExit(proc);
      return { code, out: proc.output };
    });
    expect(r).toEqual({ code: 1, out: ['spawn failed: 0'] });
  });
});
