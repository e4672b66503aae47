/**
 * A run removes the work dir it made (images, generated xl configs) once its expectations were checked,
 * whatever the verdict or error; it keeps a dir the caller gave, or its own when asked to.
 * The scenarios carry a name no other test uses, so counting `xenpv-<name>-*` dirs is not disturbed by
 * tests running beside this one.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { memoryRoot } from '../../emulator/scenario/images.js';
import { scenario } from '../../emulator/scenario/load.js';
import { runScenario } from '../../emulator/scenario/run.js';

const NAME = 'work-dir-lifetime';
const dirsNamed = (root: string) =>
  readdirSync(root)
    .filter((d) => d.startsWith(`xenpv-${NAME}-`))
    .sort();

const make = (over: { format?: 'raw' | 'vhd'; steps?: Parameters<typeof scenario>[0]['steps'] } = {}) =>
  scenario({
    name: NAME,
    description: 'an image and a short wait (or a failing step)',
    host: { images: [{ name: 'disk.img', size: '1MiB', fill: 'seq', format: over.format ?? 'raw' }] },
    steps: over.steps ?? [{ wait: { time: '1ms' } }],
  });

describe('runScenario work dir lifetime', () => {
  test.each(['disk', 'memory'] as const)('a fresh %s work dir is gone after the run', async (imageStore) => {
    const root = imageStore === 'disk' ? tmpdir() : memoryRoot();
    const before = dirsNamed(root);
    const r = await runScenario(make(), { engine: 'sim', seed: 1, imageStore });
    expect(r.verdict).toBe('pass');
    expect(r.workDir.startsWith(join(root, `xenpv-${NAME}-`))).toBe(true);
    expect(r.workDirKept).toBe(false);
    expect(existsSync(r.workDir)).toBe(false);
    expect(dirsNamed(root)).toEqual(before);
  });

  test('a failing run and a run that throws leave nothing behind either', async () => {
    const before = dirsNamed(tmpdir());
    const failed = await runScenario(make({ steps: [{ xl: 'create /etc/xen/none.cfg' }] }), {
      engine: 'sim',
    });
    expect(failed.verdict).toBe('fail');
    expect(existsSync(failed.workDir)).toBe(false);
    await expect(runScenario(make({ format: 'vhd' }), { engine: 'sim' })).rejects.toThrow(
      'not implemented: vhd image disk.img',
    );
    expect(dirsNamed(tmpdir())).toEqual(before);
  });

  test('keepWorkDir keeps the images for inspection', async () => {
    const r = await runScenario(make(), { engine: 'sim', keepWorkDir: true });
    try {
      expect(r.workDirKept).toBe(true);
      expect(existsSync(join(r.workDir, 'disk.img'))).toBe(true);
    } finally {
      rmSync(r.workDir, { recursive: true, force: true });
    }
  });

  test("a work dir the caller gave is the caller's: kept", async () => {
    const given = mkdtempSync(join(tmpdir(), `xenpv-${NAME}-given-`));
    try {
      const r = await runScenario(make(), { engine: 'sim', workDir: given, keepWorkDir: false });
      expect(r.workDir).toBe(given);
      expect(r.workDirKept).toBe(true);
      expect(existsSync(join(given, 'disk.img'))).toBe(true);
    } finally {
      rmSync(given, { recursive: true, force: true });
    }
  });

  test('a keepWorkDir that is not a boolean is refused before a dir is made', async () => {
    const before = dirsNamed(tmpdir());
    await expect(
      runScenario(make(), { engine: 'sim', keepWorkDir: 'yes' as unknown as boolean }),
    ).rejects.toThrow('runScenario: keepWorkDir must be true or false, got "yes"');
    expect(dirsNamed(tmpdir())).toEqual(before);
  });
});
