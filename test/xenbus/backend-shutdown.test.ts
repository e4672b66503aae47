/**
 * C23: dom0's power-off on the backend bus. Before "xenbus: move xenbus_dev_shutdown() into frontend
 * code" (Paul Durrant, Dec 2019) the frontend-style hook ran for backend devices too: a Connected device
 * switches to Closing and waits 5 s for a `down` completion that only the frontend bus signals.
 */
import { describe, expect, it } from 'vitest';
import { BackendBus } from '../../drivers/xenbus/backend-bus.js';
import { runHost } from './harness.js';

async function connectedThenShutdown(hook: 'xenbus_dev_shutdown' | 'frontend-only', devids: number[]) {
  const r = await runHost(async (ctl) => {
    await ctl.call(0, 'startBackendBus', { probeState: 2, shutdownHook: hook });
    await ctl.call(1, 'startFrontendBus');
    for (const d of devids) await ctl.call(0, 'addVbd', 1, d);
    await ctl.call(0, 'settle', 10);
    for (const d of devids) await ctl.call(0, 'switchBackend', `backend/vbd/1/${d}`, 4);
    // one device the frontend never connected stays InitWait: skipped
    await ctl.call(0, 'addVbd', 1, 51760);
    await ctl.call(0, 'settle', 10);
    const took = (await ctl.call(0, 'shutdownBackendBus')) as number;
    return { took, devs: await ctl.call(0, 'backendDevices') };
  });
  if (r.outcome !== 'completed') throw new Error(`run ended ${r.outcome}: ${r.error?.message}`);
  return r;
}

describe('C23: backend bus shutdown hook', () => {
  it('xenbus_dev_shutdown: 5 s per Connected backend device, each ending in "timeout closing device"', async () => {
    const r = await connectedThenShutdown('xenbus_dev_shutdown', [51712, 51728]);
    expect(r.value!.took).toBe(10_000);
    const log = Object.values(r.dmesg).flat().join('\n');
    expect(log).toContain('xenbus_dev_shutdown: backend/vbd/1/51712 timeout closing device');
    expect(log).toContain('xenbus_dev_shutdown: backend/vbd/1/51728 timeout closing device');
    expect(log).toContain('xenbus_dev_shutdown: backend/vbd/1/51760: InitWait != Connected, skipping');
    // the hook left them Closing
    expect(r.value!.devs).toEqual(
      expect.arrayContaining([expect.objectContaining({ node: 'backend/vbd/1/51712', state: 5 })]),
    );
  });

  it('frontend-only: the backend bus has no shutdown hook; power-off does not wait', async () => {
    const r = await connectedThenShutdown('frontend-only', [51712, 51728]);
    expect(r.value!.took).toBe(0);
    expect(Object.values(r.dmesg).flat().join('\n')).not.toContain('xenbus_dev_shutdown');
    expect(r.value!.devs).toEqual(
      expect.arrayContaining([expect.objectContaining({ node: 'backend/vbd/1/51712', state: 4 })]),
    );
  });

  it('an unknown hook name is refused with the field and the choices', () => {
    expect(() => new BackendBus({} as never, {} as never, { shutdownHook: 'x' as never })).toThrow(
      `backend bus shutdownHook: "x" is not one of 'xenbus_dev_shutdown', 'frontend-only'`,
    );
  });
});
