import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { runCommand } from '../../emulator/cli/commands/run.js';
import { formatScenario } from '../../emulator/scenario/format.js';
import { scenario } from '../../emulator/scenario/load.js';

const NAME = 'cli-keep-work-dir';
const dirsNamed = () =>
  readdirSync(tmpdir())
    .filter((d) => d.startsWith(`xenpv-${NAME}-`))
    .sort();

const fileDir = mkdtempSync(join(tmpdir(), 'xenpv-cli-keep-test-'));
const file = join(fileDir, 'keep.yaml');
writeFileSync(
  file,
  formatScenario(
    scenario({
      name: NAME,
      description: 'an image and a short wait',
      host: { images: [{ name: 'disk.img', size: '64KiB', fill: 'zero' }] },
      steps: [{ wait: { time: '1ms' } }],
    }),
  ),
);
afterAll(() => rmSync(fileDir, { recursive: true, force: true }));

async function run(keepWorkDir: boolean): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCommand(
    { file, engine: 'sim', timeScale: 0.01, verbosity: 'quiet', ...(keepWorkDir ? { keepWorkDir } : {}) },
    { out: (l) => out.push(l), err: (l) => err.push(l), colorLevel: 0 },
  );
  return { code, out, err };
}

describe('xenpv run --keep-work-dir', () => {
  test('without it the work dir is removed and no path is printed', async () => {
    const before = dirsNamed();
    const r = await run(false);
    expect(r.err).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.out.some((l) => l.startsWith('work dir:'))).toBe(false);
    expect(dirsNamed()).toEqual(before);
  });

  test('with it the work dir stays, with its image, and its path is printed last', async () => {
    const r = await run(true);
    expect(r.code).toBe(0);
    const last = r.out.at(-1) ?? '';
    expect(last).toMatch(new RegExp(`^work dir: ${tmpdir()}/xenpv-${NAME}-\\w+$`));
    const dir = last.slice('work dir: '.length);
    try {
      expect(existsSync(join(dir, 'disk.img'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the command line takes the flag (yargs: --keep-work-dir)', async () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const script =
      "const { main } = await import('./emulator/cli/main.ts'); process.exitCode = await main(process.argv.slice(1));";
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script, 'run', file, '--quiet', '--keep-work-dir'],
        { cwd: root, env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 },
        (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)),
      ),
    );
    const line = stdout.split('\n').find((l) => l.startsWith('work dir: ')) ?? '';
    const dir = line.slice('work dir: '.length);
    try {
      expect(dir).toMatch(new RegExp(`^${tmpdir()}/xenpv-${NAME}-\\w+$`));
      expect(existsSync(join(dir, 'disk.img'))).toBe(true);
    } finally {
      if (dir !== '') rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
