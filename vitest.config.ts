import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const source = (file: string) => fileURLToPath(new URL(file, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests import the package by its name (`xenpv/testing`, as users do); Node would resolve that
    // through package.json `exports` into dist/, which needs a build. Tests use the sources instead;
    // test/package/exports.test.ts checks that the exports map matches what the build writes.
    alias: [
      { find: /^xenpv\/testing$/, replacement: source('./testing.ts') },
      { find: /^xenpv$/, replacement: source('./index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Worker-thread tests start real workers; keep files in separate forks.
    pool: 'forks',
  },
});
