import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { patternBytes } from '../../emulator/guest/pattern.js';
import {
  checkImageStore,
  createImages,
  makeWorkDir,
  memoryRoot,
  removeWorkDir,
} from '../../emulator/scenario/images.js';
import { scenario } from '../../emulator/scenario/load.js';
import { runScenario } from '../../emulator/scenario/run.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'xenpv-images-test-'));
  dirs.push(d);
  return d;
}

type ImageInput = NonNullable<NonNullable<Parameters<typeof scenario>[0]['host']>['images']>;
const withImages = (images: ImageInput) =>
  scenario({
    name: 'images',
    description: 'images only',
    host: { images },
    steps: [{ wait: { time: '1ms' } }],
  });

describe('createImages', () => {
  test.each([
    ['zero', 'zero', 64 * 1024],
    ['ones', 'ones', 8 * 1024],
    ['seq', 'seq', 5 * 512],
    ['random:7', 'random:7', 3 * 1024 * 1024 + 512],
    ['pattern:deadbeef00', 'pattern:deadbeef00', 4096],
  ])('a %s image holds exactly the pattern over its whole size', (_label, fill, size) => {
    const dir = tempDir();
    createImages(withImages([{ name: 'sub/d.img', size: `${size}B`, fill }]), dir);
    const bytes = readFileSync(join(dir, 'sub/d.img'));
    expect(bytes.length).toBe(size);
    const fillPattern = fill === 'zero' ? { kind: 'zero' as const } : undefined;
    const want =
      fillPattern !== undefined
        ? new Uint8Array(size)
        : patternBytes(withImages([{ name: 'x', size: `${size}B`, fill }]).host.images[0]!.fill, 0, size);
    expect(Buffer.compare(bytes, want)).toBe(0);
  });

  test('an existing file is replaced (shorter and longer) and a zero image is sparse', () => {
    const dir = tempDir();
    const path = join(dir, 'd.img');
    writeFileSync(path, new Uint8Array(3 * 1024 * 1024).fill(0xaa));
    createImages(withImages([{ name: 'd.img', size: '64KiB', fill: 'zero' }]), dir);
    expect(statSync(path).size).toBe(64 * 1024);
    expect(readFileSync(path).every((b) => b === 0)).toBe(true);
    createImages(withImages([{ name: 'd.img', size: '8MiB', fill: 'zero' }]), dir);
    const st = statSync(path);
    expect(st.size).toBe(8 * 1024 * 1024);
    // Sparse: far fewer 512-byte blocks allocated than the size needs (a filesystem without holes
    // would allocate all 16384).
    expect(st.blocks).toBeLessThan(16384);
  });

  test('the same fill made twice (from the cache the second time) gives the same bytes', () => {
    const a = tempDir();
    const b = tempDir();
    const s = withImages([{ name: 'r.img', size: '1MiB', fill: 'random:2012' }]);
    createImages(s, a);
    createImages(s, b);
    expect(Buffer.compare(readFileSync(join(a, 'r.img')), readFileSync(join(b, 'r.img')))).toBe(0);
  });

  test('a format other than raw is not implemented, and says which image', () => {
    const s = withImages([{ name: 'v.vhd', size: '1MiB', format: 'vhd' }]);
    expect(() => createImages(s, tempDir())).toThrow(/not implemented: vhd image v\.vhd/);
  });
});

describe('image stores', () => {
  test.each([
    [undefined, 'disk'],
    ['disk', 'disk'],
    ['memory', 'memory'],
  ])('checkImageStore(%s) = %s', (given, want) => {
    expect(checkImageStore(given)).toBe(want);
  });

  test.each([['ram'], [''], [1]])('checkImageStore(%j) is refused, naming the choices', (bad) => {
    expect(() => checkImageStore(bad)).toThrow(
      `imageStore must be one of disk, memory, got ${JSON.stringify(bad)}`,
    );
  });

  test('a memory work dir is made under the RAM-backed root and removed with its images', () => {
    const dir = makeWorkDir('t', 'memory');
    expect(dir.startsWith(`${memoryRoot()}/xenpv-t-`)).toBe(true);
    writeFileSync(join(dir, 'x'), 'y');
    removeWorkDir(dir);
    expect(existsSync(dir)).toBe(false);
  });
});

describe('runScenario with imageStore memory', () => {
  const lifecycle = scenario({
    name: 'mem-lifecycle',
    description: 'a write checked by expect.data on a memory image',
    host: { images: [{ name: 'disk.img', size: '4MiB', fill: 'seq' }] },
    domains: [
      {
        name: 'guest1',
        memory: '16MiB',
        disks: ['format=raw, vdev=xvda, access=rw, backendtype=tap, target=disk.img'],
      },
    ],
    steps: [
      { xl: 'create /etc/xen/guest1.cfg' },
      { guest: 'guest1', write: { disk: 'xvda', offset: '64KiB', length: '128KiB', pattern: 'random:5' } },
      { guest: 'guest1', shutdown: null },
      { wait: { domain: 'guest1', state: 'dead', timeout: '30s' } },
    ],
    expect: {
      stall: 'none',
      data: [
        { image: 'disk.img', offset: 0, length: '64KiB', pattern: 'seq' },
        { image: 'disk.img', offset: '64KiB', length: '128KiB', pattern: 'random:5' },
      ],
    },
  });

  test('the data checks see what the guest wrote, and the work dir is gone afterwards', async () => {
    const r = await runScenario(lifecycle, { engine: 'sim', seed: 3, imageStore: 'memory' });
    expect(r.failures).toEqual([]);
    expect(r.checks.filter((c) => c.name.startsWith('expect.data')).map((c) => c.detail)).toEqual([
      'matches',
      'matches',
    ]);
    expect(r.workDir.startsWith(memoryRoot())).toBe(true);
    expect(existsSync(r.workDir)).toBe(false);
  }, 60_000);

  test('same seed: same trace and choices on disk and in memory (only the work dir differs)', async () => {
    const disk = await runScenario(lifecycle, { engine: 'sim', seed: 9 });
    dirs.push(disk.workDir);
    const mem = await runScenario(lifecycle, { engine: 'sim', seed: 9, imageStore: 'memory' });
    const strip = (r: typeof disk) => JSON.stringify(r.trace).replaceAll(r.workDir, '<work>');
    expect(mem.choices).toEqual(disk.choices);
    expect(strip(mem)).toBe(strip(disk));
    expect(mem.verdict).toBe('pass');
  }, 60_000);

  test('a trace filter that keeps nothing leaves the trace empty, the verdict and dmesg unchanged', async () => {
    const full = await runScenario(lifecycle, { engine: 'sim', seed: 4, imageStore: 'memory' });
    const none = await runScenario(lifecycle, {
      engine: 'sim',
      seed: 4,
      imageStore: 'memory',
      traceFilter: () => false,
    });
    expect(full.trace.length).toBeGreaterThan(100);
    expect(none.trace).toEqual([]);
    expect(none.verdict).toBe('pass');
    expect(none.choices).toEqual(full.choices);
    const strip = (r: typeof full) => JSON.stringify(r.dmesg).replaceAll(r.workDir, '<work>');
    expect(strip(none)).toBe(strip(full));
  }, 60_000);

  test('a bad imageStore or traceFilter is refused before anything is built', async () => {
    await expect(
      runScenario(lifecycle, { engine: 'sim', imageStore: 'tmpfs' as unknown as 'memory' }),
    ).rejects.toThrow('imageStore must be one of disk, memory, got "tmpfs"');
    await expect(
      runScenario(lifecycle, { engine: 'sim', traceFilter: 'none' as unknown as () => boolean }),
    ).rejects.toThrow('runScenario: traceFilter must be a function');
  });
});
