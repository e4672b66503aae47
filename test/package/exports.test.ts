// The published shape: package.json's `exports` (and `bin`'s entry) name files that `npm run build`
// writes, i.e. the outDir image of sources the build compiles; and the test alias maps the same names
// to those sources.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import vitestConfig from '../../vitest.config.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const readJson = (file: string) => JSON.parse(readFileSync(`${root}${file}`, 'utf8'));

const pkg = readJson('package.json') as {
  name: string;
  exports: Record<string, string>;
  bin: Record<string, string>;
};
const base = readJson('tsconfig.json') as {
  compilerOptions: { outDir: string; rootDir: string; declaration?: boolean };
};
const build = readJson('tsconfig.build.json') as {
  extends: string;
  include: string[];
  compilerOptions?: { outDir?: string; rootDir?: string; declaration?: boolean };
};
const outDir = (build.compilerOptions?.outDir ?? base.compilerOptions.outDir)
  .replace(/^\.\//, '')
  .replace(/\/$/, '');
const rootDir = build.compilerOptions?.rootDir ?? base.compilerOptions.rootDir;

/** The source file the build compiles to `target` (./dist/x/y.js -> x/y.ts), or why there is none. */
function sourceOf(target: string): string {
  const rel = target.replace(/^\.\//, '');
  if (!rel.startsWith(`${outDir}/`)) throw new Error(`${target} is not under the build's outDir ${outDir}/`);
  if (!rel.endsWith('.js')) throw new Error(`${target} is not a .js file the build writes`);
  return rel.slice(outDir.length + 1, -3) + '.ts';
}

describe('package.json exports', () => {
  it('the build compiles from the repository root with declarations', () => {
    expect(build.extends).toBe('./tsconfig.json');
    expect(rootDir).toBe('.');
    expect(build.compilerOptions?.declaration ?? base.compilerOptions.declaration).toBe(true);
  });

  it.each(Object.entries(pkg.exports))('%s -> %s is written by npm run build', (subpath, target) => {
    const src = sourceOf(target);
    expect(existsSync(`${root}${src}`)).toBe(true);
    // tsconfig.build.json compiles it: a root file listed by name, or a file under a listed folder.
    expect(build.include.some((inc) => src === inc || src.startsWith(`${inc}/`))).toBe(true);
    expect(subpath === '.' || subpath === './testing').toBe(true);
  });

  it('has exactly the two entries the README documents', () => {
    expect(Object.keys(pkg.exports).sort()).toEqual(['.', './testing']);
    expect(sourceOf(pkg.exports['./testing'])).toBe('testing.ts');
    expect(sourceOf(pkg.exports['.'])).toBe('index.ts');
  });

  it("bin's launcher imports the CLI from where the build writes it", () => {
    const launcher = readFileSync(`${root}${pkg.bin.xenpv}`, 'utf8');
    const m = /new URL\('\.\.\/([^']+)'/.exec(launcher);
    expect(m).not.toBeNull();
    expect(sourceOf(`./${m![1]}`)).toBe('emulator/cli/main.ts');
    expect(existsSync(`${root}emulator/cli/main.ts`)).toBe(true);
  });

  it('the test alias maps each package name to the source the build compiles for it', () => {
    const aliases = vitestConfig.resolve?.alias as { find: RegExp; replacement: string }[];
    for (const [subpath, target] of Object.entries(pkg.exports)) {
      const name = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
      const hits = aliases.filter((a) => a.find.test(name));
      expect(hits, name).toHaveLength(1);
      expect(hits[0].replacement).toBe(`${root}${sourceOf(target)}`);
    }
  });
});
