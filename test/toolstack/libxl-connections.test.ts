// Every xl and hotplug-script process opens its own xenstore connection; none outlives its process.
import { describe, expect, test } from 'vitest';
import { GUEST_CFG, onToolHost, type ToolHost } from './libxl-harness.js';

const BE = '/local/domain/0/backend/vbd/1/51712';
const FE = '/local/domain/1/device/vbd/51712';

/** The daemon's connection count and the watches of user-space connections (not dom0's kernel xenbus). */
function connections(h: ToolHost) {
  return {
    count: h.daemon.connectionCount,
    watches: h.daemon
      .listWatches()
      .filter((w) => w.connection !== 'xenstored socket (dom0)')
      .map((w) => `${w.connection}: ${w.path}`),
  };
}

/** Until the xl create daemon reports it waits for the domain's death (its watch is set by then). */
async function daemonWaiting(h: ToolHost, createOut: readonly string[]): Promise<void> {
  const pid = Number(/PID (\d+)/.exec(createOut.join('\n'))?.[1]);
  for (let i = 0; i < 100 && !h.procOutput(pid).some((l) => l.startsWith('Waiting for domain')); i++) {
    await h.env.sleep(1);
  }
}

describe('xenstore connections of xl processes', () => {
  test('N xl commands, failing ones included, leave the connection count and watches unchanged', async () => {
    const r = await onToolHost({ libxl: '4.2', configs: { '/etc/xen/guest1.cfg': GUEST_CFG } }, async (h) => {
      const create = await h.xl(['create', '/etc/xen/guest1.cfg']);
      await daemonWaiting(h, create.out);
      const before = connections(h);
      const codes: number[] = [];
      for (let i = 0; i < 5; i++) codes.push((await h.xl(['list'])).code);
      codes.push((await h.xl(['list', 'nosuch'])).code); // exits early from find_domain
      codes.push((await h.xl(['block-detach', 'guest1', 'xvdb'])).code); // not connected
      codes.push((await h.xl(['destroy'])).code); // usage
      codes.push((await h.xl(['frobnicate'])).code); // unknown command: no context at all
      return { create: create.code, before, codes, after: connections(h) };
    });
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.create).toBe(0);
    expect(v.codes).toEqual([0, 0, 0, 0, 0, 2, 1, 2, 1]);
    // The harness's own dom0 xenbus connection, and the xl create daemon waiting on @releaseDomain.
    expect(v.before.count).toBe(2);
    expect(v.before.watches).toEqual([
      expect.stringMatching(/^xenstored socket \(dom-1\/xl\[\d+\]\): @releaseDomain$/),
    ]);
    expect(v.after).toEqual(v.before);
  });

  test('destroy (hotplug remove script included) ends with the connections of before create', async () => {
    const r = await onToolHost({ libxl: '4.2', configs: { '/etc/xen/guest1.cfg': GUEST_CFG } }, async (h) => {
      const before = connections(h);
      await h.xl(['create', '/etc/xen/guest1.cfg']);
      await h.xs.write(`${FE}/state`, '6');
      for (let i = 0; i < 100 && (await h.xs.tryRead(`${BE}/state`)) !== '6'; i++) await h.env.sleep(1);
      const destroy = await h.xl(['destroy', 'guest1']);
      await h.env.sleep(100); // the create daemon sees @releaseDomain and exits
      return { before, destroy: destroy.code, after: connections(h) };
    });
    expect(r.outcome).toBe('completed');
    expect(r.value!.destroy).toBe(0);
    expect(r.value!.after).toEqual(r.value!.before);
  });

  test('SIGKILL of the xl create daemon drops its connection and its @releaseDomain watch', async () => {
    const r = await onToolHost({ libxl: '4.2', configs: { '/etc/xen/guest1.cfg': GUEST_CFG } }, async (h) => {
      const base = connections(h);
      const create = await h.xl(['create', '/etc/xen/guest1.cfg']);
      await daemonWaiting(h, create.out);
      const pid = Number(/PID (\d+)/.exec(create.out.join('\n'))![1]);
      const during = connections(h);
      const daemonProc = h.k.processes.get(pid)!;
      h.k.processes.kill(pid, 'SIGKILL');
      const st = await h.k.processes.waitExit(daemonProc);
      return { base, during, st, after: connections(h), pid };
    });
    expect(r.outcome).toBe('completed');
    const v = r.value!;
    expect(v.during.count).toBe(v.base.count + 1);
    expect(v.during.watches).toEqual([`xenstored socket (dom-1/xl[${v.pid}]): @releaseDomain`]);
    expect(v.st).toMatchObject({ signal: 'SIGKILL' });
    expect(v.after).toEqual(v.base);
  });
});
