// The "toolstack" holder: blocked on the wait of whichever task is tearing something down, and
// published once per host under the label blkback resolves.
import { describe, expect, test } from 'vitest';
import { TOOLSTACK_HOLDER_LABEL as BLKBACK_LABEL } from '../../drivers/blkback/xenbus.js';
import type { Env, Holder, HolderDirectory, Task, WaitFor } from '../../emulator/runtime/engine.js';
import { createSimEngine } from '../../emulator/runtime/sim.js';
import {
  TOOLSTACK_HOLDER_LABEL,
  ToolstackHolder,
  toolstackHolder,
} from '../../emulator/toolstack/libxl/toolstack-holder.js';

async function inSim<T>(body: (env: Env) => Promise<T>): Promise<T> {
  const engine = createSimEngine({ seed: 5 });
  try {
    const r = await engine.run((ctl) => body(ctl.env));
    if (r.outcome !== 'completed') throw new Error(`run ended ${r.outcome}: ${r.error?.message}`);
    return r.value as T;
  } finally {
    await engine.close();
  }
}

const whatOf = (w: WaitFor | undefined) => w?.what;

describe('ToolstackHolder', () => {
  test('carries the label blkback resolves', () => {
    expect(TOOLSTACK_HOLDER_LABEL).toBe(BLKBACK_LABEL);
    expect(new ToolstackHolder().label).toBe('toolstack');
  });

  test('blocked on the teardown task’s wait only while that task is blocked inside the teardown', async () => {
    const v = await inSim(async (env) => {
      const holder = new ToolstackHolder();
      const q = env.waitQueue('detach reply');
      let replied = false;
      let inBody = false;
      const seen: Array<string | undefined> = [];
      let task: Task | undefined;
      task = env.spawn('xl', async () => {
        await env.sleep(1);
        await holder.during(task!, 'domain-destroy', 'domain 1', async () => {
          inBody = true;
          await env.wait(q, () => replied, { what: 'DETACH_RSP from tapdisk 7' });
          await env.yield();
        });
        inBody = false;
        await env.wait(q, () => false, { what: 'after the teardown', timeoutMs: 10 });
      });
      seen.push(whatOf(holder.blockedOn())); // not started
      await env.sleep(2);
      const active = holder.active();
      seen.push(whatOf(holder.blockedOn())); // blocked in the teardown
      replied = true;
      q.wakeAll();
      await env.sleep(3);
      seen.push(whatOf(holder.blockedOn())); // blocked again, but after the teardown
      return { seen, active, inBody, taskLabel: task.label };
    });
    expect(v.seen).toEqual([undefined, 'DETACH_RSP from tapdisk 7', undefined]);
    expect(v.active).toEqual([{ task: v.taskLabel, kind: 'domain-destroy', target: 'domain 1' }]);
    expect(v.inBody).toBe(false);
  });

  test('nested teardowns of one task count once and end with the outer one; the oldest blocked task wins', async () => {
    const v = await inSim(async (env) => {
      const holder = new ToolstackHolder();
      const q = env.waitQueue('q');
      let release = false;
      const log: unknown[] = [];
      let a: Task | undefined;
      let b: Task | undefined;
      a = env.spawn('xl-a', async () => {
        await holder.during(a!, 'domain-destroy', 'domain 1', async () => {
          await holder.during(a!, 'device-remove', 'vbd', async () => {
            await env.wait(q, () => release, { what: 'a inner' });
          });
          log.push(holder.active().length);
          await env.wait(q, () => release, { what: 'a outer' });
        });
      });
      b = env.spawn('xl-b', async () => {
        await env.sleep(1);
        await holder.during(b!, 'device-remove', 'vbd b', async () => {
          await env.wait(q, () => release, { what: 'b' });
        });
      });
      await env.sleep(2);
      log.push(holder.active().map((t) => t.kind));
      log.push(whatOf(holder.blockedOn()));
      release = true;
      q.wakeAll();
      await env.sleep(1);
      log.push(holder.active().length, whatOf(holder.blockedOn()));
      return log;
    });
    expect(v).toEqual([['domain-destroy', 'device-remove'], 'a inner', 1, 0, undefined]);
  });

  test('the teardown is withdrawn when its body throws', async () => {
    const v = await inSim(async (env) => {
      const holder = new ToolstackHolder();
      let caught = '';
      let t: Task | undefined;
      t = env.spawn('xl', async () => {
        try {
          await holder.during(t!, 'device-remove', 'vbd', async () => {
            throw new Error('boom');
          });
        } catch (e) {
          caught = (e as Error).message;
        }
      });
      await env.sleep(1);
      return { caught, active: holder.active().length };
    });
    expect(v).toEqual({ caught: 'boom', active: 0 });
  });

  test('toolstackHolder publishes one holder per host, and works without a directory', () => {
    const published: Holder[] = [];
    const dir: HolderDirectory = {
      publish: (h) => {
        published.push(h);
        return () => undefined;
      },
      ref: () => {
        throw new Error('not used');
      },
    };
    const host = { holders: dir };
    const first = toolstackHolder(host);
    expect(toolstackHolder(host)).toBe(first);
    expect(published).toEqual([first]);
    expect(published[0]!.label).toBe('toolstack');
    const bare = toolstackHolder({});
    expect(bare).not.toBe(first);
    expect(bare.blockedOn()).toBeUndefined();
  });
});
