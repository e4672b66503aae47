/**
 * Temp dirs for tests: `xenpv-<prefix>-XXXXXX` under the host's temp dir, removed when the importing
 * test file's tests are done. Image files, sockets and work dirs made through it never outlive the run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const made: string[] = [];

// Registered when a test file (or its harness) imports this module, on that file's root suite.
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function testTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `xenpv-${prefix}-`));
  made.push(dir);
  return dir;
}
