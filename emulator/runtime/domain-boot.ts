/**
 * Loading domain programs, shared by both engines: check a DomainSpec, import its module, call its
 * boot export, check what it returned. Also the error form that crosses `call` (structured clone).
 */
import type { DomainBoot, DomainContext, DomainProgram, DomainSpec } from './engine.js';

/** DOMID_FIRST_RESERVED (xen/include/public/xen.h): ids from 0x7FF0 up are special. */
export const DOMID_FIRST_RESERVED = 0x7ff0;

export function checkDomainSpec(spec: DomainSpec, existing: ReadonlySet<number>): void {
  if (spec === null || typeof spec !== 'object') throw new Error('addDomain: spec must be an object');
  const { domid, name, module } = spec;
  if (!Number.isInteger(domid) || domid < 0 || domid >= DOMID_FIRST_RESERVED) {
    throw new Error(`addDomain: domid must be an integer in 0..${DOMID_FIRST_RESERVED - 1}, got ${domid}`);
  }
  if (existing.has(domid)) throw new Error(`addDomain: domid ${domid} is already in use`);
  if (typeof name !== 'string' || name.length === 0) {
    throw new Error(`addDomain dom${domid}: name must be a non-empty string, got ${JSON.stringify(name)}`);
  }
  if (typeof module !== 'string' || !module.startsWith('file:')) {
    throw new Error(
      `addDomain dom${domid}: module must be a file URL (file:///...), got ${JSON.stringify(module)}`,
    );
  }
  if (spec.exportName !== undefined && (typeof spec.exportName !== 'string' || spec.exportName === '')) {
    throw new Error(`addDomain dom${domid}: exportName must be a non-empty string, got ${spec.exportName}`);
  }
}

type DomainModule = Record<string, unknown>;

/**
 * Modules already loaded, by URL. Node caches the module itself, but every `import()` still asks the
 * loader to resolve the URL, and under a loader with off-thread hooks (tsx: vitest, `npx tsx`) that is
 * a round trip to the hooks thread: the main thread idles once per domain per run (a sim lifecycle
 * otherwise never leaves the microtask queue). A failed import is not kept, so it is retried.
 */
const loadedModules = new Map<string, DomainModule>();

async function loadDomainModule(url: string): Promise<DomainModule> {
  const hit = loadedModules.get(url);
  if (hit !== undefined) return hit;
  const mod = (await import(url)) as DomainModule;
  loadedModules.set(url, mod);
  return mod;
}

export async function bootDomain(spec: DomainSpec, ctx: DomainContext): Promise<DomainProgram> {
  const exportName = spec.exportName ?? 'boot';
  const mod = await loadDomainModule(spec.module);
  const boot = mod[exportName];
  if (typeof boot !== 'function') {
    throw new Error(`addDomain dom${spec.domid}: ${spec.module} has no function export '${exportName}'`);
  }
  const program = await (boot as DomainBoot)(ctx);
  if (program === null || typeof program !== 'object') {
    throw new Error(`addDomain dom${spec.domid}: ${exportName}() must return an object of methods`);
  }
  return program;
}

/** Find a program method or say precisely what is wrong. */
export function programMethod(
  program: DomainProgram,
  domid: number,
  method: string,
): (...args: unknown[]) => Promise<unknown> {
  const fn = typeof method === 'string' ? program[method] : undefined;
  if (typeof fn !== 'function' || !Object.hasOwn(program, method)) {
    const names = Object.keys(program).filter((k) => typeof program[k] === 'function');
    throw new Error(
      `call: dom${domid} has no method '${String(method)}' (methods: ${names.join(', ') || 'none'})`,
    );
  }
  return (...args) => fn.apply(program, args);
}

export interface WireError {
  name: string;
  message: string;
  stack?: string;
}

export function errorToWire(e: unknown): WireError {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: 'Error', message: String(e) };
}

/** An Error with the same name and message as the one thrown on the other side. */
export function wireToError(w: WireError): Error {
  const e = new Error(w.message);
  e.name = w.name;
  if (w.stack !== undefined) e.stack = w.stack;
  return e;
}
