import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../drivers/busdma/guest-memory.js';
import { GuestBlockLayer } from '../../emulator/guest/block-layer.js';
import { latencyStats, Workload } from '../../emulator/guest/workload.js';
import { type Bio, BlockLayer } from '../../emulator/kernel/block-device.js';
import { KernelWaits } from '../../emulator/kernel/waits.js';
import type { Env } from '../../emulator/runtime/engine.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import { makeHost } from '../hypervisor/fixture.js';

/** A RAM disk driver completing each bio after `latency` ms, recording where its data lived. */
function ramDisk(env: Env, sectors: number, latency: number) {
  const bytes = new Uint8Array(sectors * 512);
  const seen: Array<{ op: string; sector: number; inMachineMemory: boolean }> = [];
  let memory: ArrayBufferLike | undefined;
  const driver = {
    submit(_b: unknown, bio: Bio) {
      seen.push({
        op: bio.op,
        sector: bio.sector,
        inMachineMemory: bio.vecs.every((v) => v.buffer === memory),
      });
      env.spawn('ramdisk-io', async () => {
        await env.sleep(latency);
        let at = bio.sector * 512;
        if (bio.op === 'discard') bytes.fill(0, at, at + (bio.sectors ?? 0) * 512);
        for (const v of bio.vecs) {
          if (bio.op === 'write') bytes.set(v, at);
          else if (bio.op === 'read') v.set(bytes.subarray(at, at + v.length));
          at += v.length;
        }
        bio.end(0);
      });
    },
  };
  return { bytes, seen, driver, setMemory: (m: ArrayBufferLike) => (memory = m) };
}

async function inSim<T>(body: (env: Env) => Promise<T>): Promise<T> {
  const engine = createSimEngine({ seed: 5 });
  try {
    const r = await engine.run((ctl) => body(ctl.env));
    if (r.outcome !== 'completed') throw new Error(`${r.outcome}: ${r.error?.stack}`);
    return r.value as T;
  } finally {
    await engine.close();
  }
}

function setup(env: Env, latency = 1) {
  const host = makeHost({ frames: 1024 });
  const { hc } = host.guest();
  const memory = new GuestMemory(hc);
  const blocks = new BlockLayer(env, new KernelWaits(env));
  blocks.registerBlkdev(202, 'xvd');
  const disk = ramDisk(env, 1024, latency);
  disk.setMemory(hc.page(memory.allocRun(1)[0]).buffer);
  blocks.addDisk({ name: 'xvda', major: 202, minor: 0, capacitySectors: 1024, driver: disk.driver });
  return {
    memory,
    blocks,
    disk,
    layer: new GuestBlockLayer(env, blocks),
    workload: new Workload(env, memory, blocks),
  };
}

describe('guest block layer', () => {
  it('counts opens per handle and lists the xvd disks', async () => {
    const v = await inSim(async (env) => {
      const { layer } = setup(env);
      const a = await layer.open('xvda', 'mount');
      const b = await layer.open('xvda', 'fio');
      const two = layer.disks()[0];
      await layer.close(a.id);
      const one = layer.disks()[0];
      let err = '';
      try {
        await layer.open('xvdz', 'x');
      } catch (e) {
        err = (e as Error).message;
      }
      await layer.close(b.id);
      return {
        two: two.openers,
        holders: two.holders,
        one: one.openers,
        err,
        none: layer.disks()[0].openers,
      };
    });
    expect(v.two).toBe(2);
    expect(v.holders).toEqual(['dom-1/mount xvda#1', 'dom-1/fio xvda#2']);
    expect(v.one).toBe(1);
    expect(v.err).toContain('xvdz: no such disk (present: xvda)');
    expect(v.none).toBe(0);
  });
});

describe('workload', () => {
  it('writes patterns from guest frames and verifies reads byte for byte', async () => {
    const v = await inSim(async (env) => {
      const { layer, workload, disk } = setup(env);
      const h = await layer.open('xvda', 't', { write: true });
      const w = await workload.write(h, 1024, 8192, { kind: 'seq' });
      const good = await workload.read(h, 1024, 8192, { kind: 'seq' });
      disk.bytes[1024 + 777] ^= 0xff;
      const bad = await workload.read(h, 1024, 8192, { kind: 'seq' });
      return { w, good: good.mismatchAt, bad: bad.mismatchAt, seen: disk.seen };
    });
    expect(v.w.error).toBeUndefined();
    expect(v.w.latencyMs).toBe(1);
    expect(v.good).toBe(-1);
    expect(v.bad).toBe(1024 + 777);
    expect(v.seen.every((s) => s.inMachineMemory)).toBe(true);
  });

  it.each([
    { offset: 100, length: 512, msg: 'offset 100 must be a non-negative multiple of 512' },
    { offset: 0, length: 100, msg: 'length 100 must be a non-negative multiple of 512' },
    { offset: 1024 * 512, length: 512, msg: 'runs past the end of xvda' },
  ])('rejects $offset+$length with a precise error', async ({ offset, length, msg }) => {
    const err = await inSim(async (env) => {
      const { layer, workload } = setup(env);
      const h = await layer.open('xvda', 't', { write: true });
      try {
        await workload.write(h, offset, length, { kind: 'zero' });
        return '';
      } catch (e) {
        return (e as Error).message;
      }
    });
    expect(err).toContain(msg);
  });

  it('a job runs iodepth tasks concurrently and reports counts and latency in virtual time', async () => {
    const v = await inSim(async (env) => {
      const { layer, workload } = setup(env, 10);
      const h = await layer.open('xvda', 'fio', { write: true });
      const w = await workload.runJob(h, {
        rw: 'write',
        bs: 4096,
        iodepth: 4,
        count: 16,
        pattern: { kind: 'random', seed: 1 },
        verify: true,
      });
      const r = await workload.runJob(h, {
        rw: 'randread',
        bs: 4096,
        iodepth: 2,
        durationMs: 100,
        pattern: { kind: 'random', seed: 1 },
        verify: true,
        size: 16 * 4096,
      });
      return { w, r };
    });
    expect(v.w).toMatchObject({ ios: 16, writes: 16, errors: 0, verifyErrors: 0, bytesWritten: 65536 });
    expect(v.w.elapsedMs).toBe(200); // 16 writes of 10 ms 4 at a time (40), then 16 verify reads one by one
    expect(v.w.latency).toEqual({ min: 10, max: 10, mean: 10, p50: 10, p99: 10 });
    expect(v.r.ios).toBe(20); // two streams for 100 ms of 10 ms reads
    expect(v.r.verifyErrors).toBe(0);
  });

  it.each([
    { samples: [], out: { min: 0, max: 0, mean: 0, p50: 0, p99: 0 } },
    { samples: [3, 1, 2], out: { min: 1, max: 3, mean: 2, p50: 2, p99: 3 } },
  ])('latencyStats($samples)', ({ samples, out }) => {
    expect(latencyStats(samples)).toEqual(out);
  });
});
