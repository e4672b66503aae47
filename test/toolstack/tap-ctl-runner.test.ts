import { describe, expect, test } from 'vitest';
import { host, makeImage } from './tap-ctl-harness.js';

describe('tap-ctl command runner (real blktap2 driver and tapdisk2)', () => {
  test('pause and unpause with a new image: LIST shows the state and path change', async () => {
    const a = makeImage(1 << 20, 'a.img');
    const b = makeImage(1 << 20, 'b.img');
    const r = await host(async (h) => {
      await h.tapCtl(['create', '-a', `aio:${a}`]);
      const pause = await h.tapCtl(['pause', '-p', '101', '-m', '0']);
      const paused = await h.tapCtl(['list'], { tty: true });
      const unpause = await h.tapCtl(['unpause', '-p', '101', '-m', '0', '-a', `aio:${b}`]);
      const resumed = await h.tapCtl(['list']);
      return { pause: pause.code, paused: paused.out, unpause: unpause.code, resumed: resumed.out };
    });
    // TD_VBD_PAUSED (0x20) | TD_VBD_QUIESCED (0x08), as tapdisk reports its state in LIST.
    expect(r).toEqual({
      pause: 0,
      paused: [`     101  0   28        aio ${a}`],
      unpause: 0,
      resumed: [`pid=101 minor=0 state=0 args=aio:${b}`],
    });
  });

  test('Xen list -t drops rows without a type; xapi keeps them', async () => {
    const a = makeImage(1 << 20);
    const r = await host(async (h) => {
      await h.tapCtl(['create', '-a', `aio:${a}`]);
      await h.tapCtl(['allocate']);
      return [
        (await h.tapCtl(['list', '-t', 'aio'])).out,
        (await h.tapCtl(['list', '-t', 'aio'], { variant: 'xapi' })).out,
      ];
    });
    expect(r).toEqual([
      [`pid=101 minor=0 state=0 args=aio:${a}`],
      [`pid=101 minor=0 state=0 args=aio:${a}`, 'minor=1'],
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
    // tap-ctl is pid 100; the tapdisk2 it spawns is 101 and prints /var/run/blktap-control/ctl101.
    { argv: ['spawn'], code: 0, out: ['tapdisk spawned with pid 101'] },
  ])('$argv', async ({ argv, code, out }) => {
    const r = await host(async (h) => h.tapCtl(argv));
    expect(r.code).toBe(code);
    expect(r.out).toEqual(out);
  });

  test('xapi spawn prints the bare id on a pipe', async () => {
    const r = await host(async (h) => h.tapCtl(['spawn'], { variant: 'xapi' }));
    expect(r).toMatchObject({ code: 0, out: ['101'] });
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

  test('major reads the tapdev block major from /proc/devices; -c is refused with EINVAL', async () => {
    const r = await host(async (h) => ({
      b: await h.tapCtl(['major']),
      c: await h.tapCtl(['major', '-c']),
      major: h.drv!.deviceMajor,
    }));
    expect(r.b).toMatchObject({ code: 0, out: [String(r.major)] });
    expect(r.c).toMatchObject({ code: 22, out: [] });
  });
});
