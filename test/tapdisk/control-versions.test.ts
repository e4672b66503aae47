/**
 * tapdisk's control version switches at component level:
 * - C18 `openFailure`: an OPEN whose image cannot be opened, then the rollback DETACH tap-ctl create
 *   sends. 'e403288' keeps the VBD (DETACH removes it, tapdisk exits cleanly); '2011-06' freed it while
 *   it stayed listed, so the next touch is a use-after-free: SIGSEGV, log line, trace 'oops'.
 * - C17 `controlExit` (xapi control): a connection accepted but never read when DETACH removes the
 *   last VBD. '2132029' drops it; '2012-07' asserts `conn->out.done` and aborts.
 */
import { describe, expect, test } from 'vitest';
import { controlSocketPath } from '../../drivers/blktap/abi.js';
import type { Process } from '../../emulator/kernel/process.js';
import { TD_CTL_MAX_CONNECTIONS } from '../../emulator/tapdisk/control-xapi.js';
import {
  decodeTapdiskMessage,
  encodeTapdiskMessage,
  openMessage,
  requestMessage,
} from '../../emulator/tapdisk/message.js';
import { parseTapdiskArgs } from '../../emulator/tapdisk/options.js';
import { allocTap, freeTap, type Host, rspError, runHost, spawnTapdisk, tapCtl } from './harness.js';

const sockExists = (h: Host, pid: number) => h.k.ns.exists(controlSocketPath(pid));

describe('C18: OPEN failure, then the rollback DETACH (tapdisk --open-failure)', () => {
  async function openMissingThenDetach(openFailure: '2011-06' | 'e403288') {
    return runHost({ semantics: '2010-08', tapdisk: { openFailure } }, async (h) => {
      const minor = await allocTap(h.k);
      const td = spawnTapdisk(h.k);
      await h.env.sleep(1);
      const attach = rspError(await tapCtl(h.k, td.pid, requestMessage('ATTACH', minor)));
      const open = rspError(await tapCtl(h.k, td.pid, openMessage(minor, 'aio:/srv/missing.img')));
      const detach = rspError(await tapCtl(h.k, td.pid, requestMessage('DETACH', minor)));
      const status = await h.k.processes.waitExit(td);
      return {
        attach,
        open,
        detach,
        status,
        socketLeft: sockExists(h, td.pid),
        free: await freeTap(h.k, minor),
      };
    });
  }

  test('e403288: the VBD survives the failed OPEN; DETACH removes it and tapdisk exits cleanly', async () => {
    const r = await openMissingThenDetach('e403288');
    expect(r.outcome).toBe('completed');
    expect(r.value).toEqual({
      attach: 0,
      open: 2, // ENOENT
      detach: 0,
      status: { code: 0, wstatus: 0 },
      socketLeft: false,
      free: 'ok',
    });
    expect(r.trace.filter((e) => e.kind === 'oops')).toEqual([]);
  });

  test('2011-06: the freed VBD is touched again: SIGSEGV, a segfault line, an oops event, the socket left', async () => {
    const r = await openMissingThenDetach('2011-06');
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.attach).toBe(0);
    expect(v.open).toBe(2);
    // The rollback never gets its DETACH answered: the process is gone.
    expect(v.detach).not.toBe(0);
    expect(v.status).toEqual({ signal: 'SIGSEGV', wstatus: 11 });
    expect(v.socketLeft).toBe(true);
    // Exit closed and unmapped the ring, so the minor can still be freed.
    expect(v.free).toBe('ok');
    const lines = Object.values(r.dmesg).flat();
    expect(
      lines.some((l) => /tapdisk2\[\d+\]: segfault: use-after-free of td_vbd_t \(minor 0\)/.test(l)),
    ).toBe(true);
    expect(lines.some((l) => l.includes('freed by the OPEN failure path'))).toBe(true);
    const oops = r.trace.filter((e) => e.kind === 'oops');
    expect(oops).toHaveLength(1);
    expect(oops[0]!.fields).toMatchObject({ signal: 'SIGSEGV' });
  });

  test('the switch parses from the command line and rejects other values', () => {
    expect(parseTapdiskArgs(['--open-failure=2011-06']).openFailure).toBe('2011-06');
    expect(parseTapdiskArgs([]).openFailure).toBe('e403288');
    expect(() => parseTapdiskArgs(['--open-failure=2012'])).toThrow(
      "tapdisk2 --open-failure=2012: '2012' is not one of 2011-06, e403288",
    );
  });
});

describe('C17: a control connection accepted but not read when DETACH removes the last VBD (xapi)', () => {
  /**
   * Client A connects (accepted), client B connects (accepted after A), A sends DETACH of the only
   * VBD, B never sends: the server ends in A's handler with B still awaiting its request.
   */
  async function detachWithIdleConnection(controlExit: '2012-07' | '2132029') {
    return runHost({ semantics: '2010-08', tapdisk: { variant: 'xapi', controlExit } }, async (h) => {
      const minor = await allocTap(h.k);
      const td = spawnTapdisk(h.k);
      await h.env.sleep(1);
      const attach = rspError(await tapCtl(h.k, td.pid, requestMessage('ATTACH', minor)));
      const sock = controlSocketPath(td.pid);
      const a: { reply?: number | string } = {};
      const b: { eof?: boolean } = {};
      let aFd = -1;
      const aSend = h.env.waitQueue('test: A may send');
      let aGo = false;
      const procA = h.k.spawn(
        async (p: Process) => {
          aFd = await p.connect(sock);
          await h.env.wait(aSend, () => aGo, { what: 'the test to let A send' });
          await p.write(aFd, encodeTapdiskMessage(requestMessage('DETACH', minor)));
          const bytes = await p.read(aFd);
          a.reply = bytes === null ? 'eof' : rspError([decodeTapdiskMessage(bytes)]);
        },
        [],
        { name: 'tap-ctl-a' },
      );
      await h.env.sleep(1); // tapdisk accepts A
      const procB = h.k.spawn(
        async (p: Process) => {
          const fd = await p.connect(sock);
          b.eof = (await p.read(fd)) === null;
        },
        [],
        { name: 'tap-ctl-b' },
      );
      await h.env.sleep(1); // tapdisk accepts B
      aGo = true;
      aSend.wakeAll();
      const status = await h.k.processes.waitExit(td);
      await h.k.processes.waitExit(procA);
      await h.k.processes.waitExit(procB);
      return {
        attach,
        a: a.reply,
        bEof: b.eof,
        status,
        socketLeft: sockExists(h, td.pid),
        free: await freeTap(h.k, minor),
      };
    });
  }

  test('2132029: the idle connection is dropped; the DETACH reply is sent, tapdisk exits and unlinks', async () => {
    const r = await detachWithIdleConnection('2132029');
    expect(r.outcome).toBe('completed');
    expect(r.value).toEqual({
      attach: 0,
      a: 0,
      bEof: true,
      status: { code: 0, wstatus: 0 },
      socketLeft: false,
      free: 'ok',
    });
    expect(r.trace.filter((e) => e.kind === 'oops')).toEqual([]);
    expect(r.trace.some((e) => e.kind === 'control-drop')).toBe(true);
  });

  test('2012-07: the drain asserts out.done on the idle connection first: SIGABRT, the DETACH reply lost', async () => {
    const r = await detachWithIdleConnection('2012-07');
    expect(r.outcome).toBe('completed');
    expect(r.value).toEqual({
      attach: 0,
      a: 'eof',
      bEof: true,
      status: { signal: 'SIGABRT', wstatus: 6 },
      socketLeft: true,
      free: 'ok',
    });
    const lines = Object.values(r.dmesg).flat();
    expect(
      lines.some((l) => /tapdisk2\[\d+\]: tapdisk-control\.c: Assertion 'conn->out\.done' failed/.test(l)),
    ).toBe(true);
    expect(r.trace.filter((e) => e.kind === 'oops')).toHaveLength(1);
  });

  test('the Xen 4.1 control (one connection at a time) ignores the switch: DETACH of the last VBD exits cleanly', async () => {
    const r = await runHost(
      { semantics: '2010-08', tapdisk: { variant: 'xen-4.1', controlExit: '2012-07' } },
      async (h) => {
        const minor = await allocTap(h.k);
        const td = spawnTapdisk(h.k);
        await h.env.sleep(1);
        await tapCtl(h.k, td.pid, requestMessage('ATTACH', minor));
        const detach = rspError(await tapCtl(h.k, td.pid, requestMessage('DETACH', minor)));
        return { detach, status: await h.k.processes.waitExit(td) };
      },
    );
    expect(r.value).toEqual({ detach: 0, status: { code: 0, wstatus: 0 } });
  });

  test('the table holds at most TD_CTL_MAX_CONNECTIONS: more idle clients connect, no more are accepted', async () => {
    const clients = TD_CTL_MAX_CONNECTIONS + 2;
    const r = await runHost({ semantics: '2010-08', tapdisk: { variant: 'xapi' } }, async (h) => {
      const minor = await allocTap(h.k);
      const td = spawnTapdisk(h.k);
      await h.env.sleep(1);
      await tapCtl(h.k, td.pid, requestMessage('ATTACH', minor));
      const sock = controlSocketPath(td.pid);
      for (let i = 0; i < clients; i++) {
        // Idle: connects and waits for a reply to a request it never sends.
        h.k.spawn(
          async (p: Process) => {
            const fd = await p.connect(sock);
            await p.read(fd);
          },
          [],
          { name: `idle-${i}` },
        );
        await h.env.sleep(1);
      }
      return { pid: td.pid };
    });
    const accepts = r.trace.filter((e) => e.kind === 'control-accept' && e.fields?.pid === r.value?.pid);
    expect(TD_CTL_MAX_CONNECTIONS).toBe(10);
    // The ATTACH client is accepted and closed; then exactly the table's worth of idle clients.
    expect(accepts.map((e) => e.fields?.connections)).toEqual([
      1,
      ...Array.from({ length: TD_CTL_MAX_CONNECTIONS }, (_, i) => i + 1),
    ]);
  });

  test('the controlExit switch parses from the command line and rejects other values', () => {
    expect(parseTapdiskArgs(['--control-exit=2012-07']).controlExit).toBe('2012-07');
    expect(parseTapdiskArgs([]).controlExit).toBe('2132029');
    expect(() => parseTapdiskArgs(['--control-exit=x'])).toThrow(/not one of 2012-07, 2132029/);
  });
});
