/** One entry point for both engines. */
import type { Engine, EngineKind, SimEngineOptions, ThreadsEngineOptions } from './engine.js';
import { createSimEngine } from './sim.js';
import { createThreadsEngine } from './threads.js';

export type EngineOptions<K extends EngineKind> = K extends 'sim' ? SimEngineOptions : ThreadsEngineOptions;

export function createEngine<K extends EngineKind>(kind: K, options: EngineOptions<K>): Engine {
  if (kind === 'sim') return createSimEngine(options as SimEngineOptions);
  if (kind === 'threads') return createThreadsEngine(options as ThreadsEngineOptions);
  throw new Error(`createEngine: kind must be 'sim' or 'threads', got ${JSON.stringify(kind)}`);
}
