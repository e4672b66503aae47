import { afterEach, describe, expect, test } from 'vitest';
import { MACHINE_DEFAULT_VERSIONS, type MachineConfig } from '../../emulator/machine/config.js';
import { buildMachine, type Machine } from '../../emulator/machine/machine.js';
import { SLOT_BOOT, SLOT_EMPTY, SLOT_HALTED, SlotTable } from '../../emulator/machine/slot-table.js';
import { THREADS_TIME_SCALE } from '../threads-time.js';

const config: MachineConfig = {
  guests: [{ name: 'vm', memory: 1 << 20, abi: 'x86_64', disks: [] }],
  versions: { ...MACHINE_DEFAULT_VERSIONS },
  memory: 16 << 20,
};

let machines: Machine[] = [];
afterEach(async () => {
  await Promise.all(machines.map((m) => m.close()));
  machines = [];
});

describe('slot table', () => {
  test('requestBoot claims empty slots, refuses busy ones, reuses halted ones whose domain is gone', () => {
    const t = SlotTable.create(2);
    t.requestBoot(0, 5, 'pv-guest', () => false);
    expect(t.info(0)).toMatchObject({ state: SLOT_BOOT, domid: 5, kernel: 'pv-guest', generation: 1 });
    expect(t.slotOf(5)).toBe(0);
    expect(() => t.requestBoot(0, 6, 'pv-guest', () => true)).toThrow(/slot 0 is boot with d5/);
    t.markRunning(0);
    t.markHalted(0);
    expect(() => t.requestBoot(0, 6, 'pv-guest', () => false)).toThrow(/frees when that domain is gone/);
    t.requestBoot(0, 6, 'hello-ping', () => true);
    expect(t.slotOf(5)).toBe(-1);
    expect(t.slotOf(6)).toBe(0);
    expect(t.info(0).generation).toBe(2);
    t.release(0);
    expect(t.info(0).state).toBe(SLOT_EMPTY);
    expect(t.info(1).state).toBe(SLOT_EMPTY);
    expect(() => t.requestBoot(2, 1, 'pv-guest', () => true)).toThrow(/slot 2 does not exist/);
    expect(() => t.requestBoot(1, 0, 'pv-guest', () => true)).toThrow(/domid must be in 1\.\./);
    expect(() => t.requestBoot(1, 1, 'bogus' as never, () => true)).toThrow(/kernel must be one of/);
    expect(t.info(1).state).toBe(SLOT_EMPTY); // bad input changed nothing
  });
});

describe.each(['sim', 'threads'] as const)('guest slots (%s)', (kind) => {
  async function make(): Promise<Machine> {
    const m =
      kind === 'sim'
        ? await buildMachine(config, 'sim', { seed: 1 })
        : await buildMachine(config, 'threads', { timeScale: THREADS_TIME_SCALE, watchdogMs: 100 });
    machines.push(m);
    return m;
  }

  test('three create/shutdown/destroy cycles give three domids; a halted kernel never runs again', async () => {
    const m = await make();
    const vm = m.engineDomainOf('vm');
    const r = await m.run(async (ctl) => {
      const cycles: unknown[] = [];
      for (let i = 0; i < 3; i++) {
        const domid = (await ctl.call(0, 'createDomain', 'vm', 'pv-guest')) as number;
        const booted = (await ctl.call(vm, 'waitBooted', i)) as number;
        await ctl.call(vm, i === 1 ? 'crash' : 'shutdown');
        // The poweroff task runs SCHEDOP_shutdown; the slot halts at the VIRQ/kick that follows.
        let st = (await ctl.call(vm, 'status')) as { state: number };
        for (let k = 0; k < 1000 && st.state !== SLOT_HALTED; k++) {
          await ctl.env.sleep(1);
          st = (await ctl.call(vm, 'status')) as { state: number };
        }
        const doms = (await ctl.call(0, 'domains')) as { domid: number; state: string }[];
        let after = '';
        try {
          await ctl.call(vm, 'read');
        } catch (e) {
          after = (e as Error).message;
        }
        await ctl.call(0, 'destroyDomain', domid);
        cycles.push({
          domid,
          booted,
          slot: st.state,
          xen: doms.find((d) => d.domid === domid)?.state,
          after,
        });
      }
      return cycles;
    });
    expect(r.error).toBeUndefined();
    expect({ outcome: r.outcome, stalls: r.stalls }).toEqual({ outcome: 'completed', stalls: [] });
    expect(r.value).toEqual(
      [1, 2, 3].map((d) => ({
        domid: d,
        booted: d,
        slot: SLOT_HALTED,
        xen: 'shutdown',
        after: 'guest vm: no kernel is running in its slot (halted)',
      })),
    );
    // Every halt is traced once per boot, and nothing of dom<vm> is traced after the last halt.
    const vmEvents = r.trace.filter((e) => e.dom === vm);
    const halts = vmEvents.filter((e) => e.comp === 'machine' && e.kind === 'halt');
    expect(halts).toHaveLength(3);
    const lastHalt = vmEvents.indexOf(halts[2]);
    expect(vmEvents.slice(lastHalt + 1).filter((e) => e.comp !== 'runtime')).toEqual([]);
  }, 60_000);

  test('destroying a running guest halts its kernel', async () => {
    const m = await make();
    const vm = m.engineDomainOf('vm');
    const r = await m.run(async (ctl) => {
      const domid = (await ctl.call(0, 'createDomain', 'vm', 'pv-guest')) as number;
      await ctl.call(vm, 'waitBooted');
      await ctl.call(0, 'destroyDomain', domid);
      let st = (await ctl.call(vm, 'status')) as { state: number };
      for (let k = 0; k < 1000 && st.state !== SLOT_HALTED; k++) {
        await ctl.env.sleep(1);
        st = (await ctl.call(vm, 'status')) as { state: number };
      }
      const again = (await ctl.call(0, 'createDomain', 'vm', 'pv-guest')) as number;
      const booted = await ctl.call(vm, 'waitBooted', 1);
      return { state: st.state, again, booted };
    });
    expect(r.error).toBeUndefined();
    expect(r.value).toEqual({ state: SLOT_HALTED, again: 2, booted: 2 });
  }, 60_000);
});
