#!/usr/bin/env node
// Entry point of the `xenpv` command: runs the built CLI (npm run build makes dist/).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = new URL('../dist/emulator/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(built))) {
  console.error('xenpv: dist/ is missing; run `npm run build` first (or `npm ci && npm run build`).');
  process.exit(2);
}
const { main } = await import(built.href);
process.exitCode = await main(process.argv.slice(2));
