/**
 * XenbusState (xen/include/public/io/xenbus.h) and the Linux helpers that move a device through it
 * (drivers/xen/xenbus/xenbus_client.c): xenbus_switch_state, xenbus_dev_error, xenbus_dev_fatal,
 * xenbus_frontend_closed, xenbus_read_driver_state.
 */
import type { Env } from '../../emulator/runtime/engine.js';
import type { XenbusClient } from './client.js';
import { isXenstoreError, XenstoreError } from './errors.js';
import { XS_ERRNO } from './xs-wire.js';

export const XenbusState = {
  Unknown: 0,
  Initialising: 1,
  InitWait: 2,
  Initialised: 3,
  Connected: 4,
  Closing: 5,
  Closed: 6,
  Reconfiguring: 7,
  Reconfigured: 8,
} as const;
/** A state as read from xenstore: one of XenbusState's values, or whatever number the other end wrote. */
export type XenbusStateValue = number;

/** XenbusState names (xen/include/public/io/xenbus.h), index = value. */
export const XENBUS_STATE_NAMES = [
  'Unknown',
  'Initialising',
  'InitWait',
  'Initialised',
  'Connected',
  'Closing',
  'Closed',
  'Reconfiguring',
  'Reconfigured',
] as const;

/** Linux xenbus_strstate: the name, or "INVALID" outside 0-8. */
export function xenbusStateName(state: number): string {
  return Number.isInteger(state) && state >= 0 && state < XENBUS_STATE_NAMES.length
    ? XENBUS_STATE_NAMES[state]!
    : 'INVALID';
}

/** sscanf "%d" as xenbus_scanf uses it: optional blanks and sign, then digits; anything after is ignored. */
export function scanDecimal(text: string): number | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?[0-9]+)/.exec(text);
  if (!m) return undefined;
  return Number.parseInt(m[1]!, 10) | 0;
}

/** sscanf "%i": like %d but "0x" means hex and a leading 0 means octal. */
export function scanInteger(text: string): number | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)/.exec(text);
  if (!m) return undefined;
  const body = m[2]!;
  let v: number;
  if (/^0[xX]/.test(body)) v = Number.parseInt(body.slice(2), 16);
  else if (body.length > 1 && body.startsWith('0')) v = Number.parseInt(body.slice(1), 8);
  else v = Number.parseInt(body, 10);
  return (m[1] === '-' ? -v : v) | 0;
}

/** Join a node under a directory as Linux's join(dir, name) does ("" names the directory itself). */
export function joinPath(dir: string, node: string): string {
  return node === '' ? dir : `${dir}/${node}`;
}

/** xenbus_read_driver_state: `<path>/state` as a number, Unknown (0) when missing or unparsable. */
export async function readDriverState(client: XenbusClient, path: string): Promise<XenbusStateValue> {
  try {
    return scanDecimal(await client.read(joinPath(path, 'state'))) ?? XenbusState.Unknown;
  } catch (e) {
    if (e instanceof XenstoreError) return XenbusState.Unknown;
    throw e;
  }
}

/** What the state helpers need from a device (struct xenbus_device's nodename, state, and the client). */
export interface StatefulDevice {
  readonly nodename: string;
  state: XenbusStateValue;
  readonly client: XenbusClient;
  /** For the kernel log lines the helpers write. */
  readonly env: Pick<Env, 'trace'>;
}

/** errno of an error a xenstore call threw (positive); EIO for anything that is not a XenstoreError. */
function errnoOf(e: unknown): number {
  return e instanceof XenstoreError ? e.errno : XS_ERRNO.EIO;
}

/**
 * xenbus_switch_state. A no-op when the cached state is already `state`. Otherwise, in a transaction:
 * read `<nodename>/state` and abort silently if it is gone (a removed device is never resurrected),
 * write the new value, commit, and redo on EAGAIN. Errors are reported with xenbus_dev_fatal semantics
 * (written to the error node, then Closing), never thrown. The cached state is updated whenever the
 * transaction ended without error, including the silent abort, as Linux does.
 */
export async function switchState(dev: StatefulDevice, state: XenbusStateValue): Promise<void> {
  await switchStateDepth(dev, state, 0);
}

async function switchStateDepth(dev: StatefulDevice, state: XenbusStateValue, depth: number): Promise<void> {
  if (state === dev.state) return;
  const client = dev.client;
  for (;;) {
    let tx: Awaited<ReturnType<XenbusClient['transactionStart']>>;
    try {
      tx = await client.transactionStart();
    } catch (e) {
      await switchFatal(dev, depth, errnoOf(e), 'starting transaction');
      return;
    }
    let abort = true;
    try {
      const current = await client.tryRead(joinPath(dev.nodename, 'state'), tx);
      if (current !== undefined && scanDecimal(current) !== undefined) {
        try {
          await client.write(joinPath(dev.nodename, 'state'), String(state), tx);
          abort = false;
        } catch (e) {
          if (!(e instanceof XenstoreError)) throw e;
          await switchFatal(dev, depth, e.errno, 'writing new state');
        }
      }
    } catch (e) {
      // The read failed for another reason than absence (EACCES...): Linux treats it like absence.
      if (!(e instanceof XenstoreError)) throw e;
    }
    try {
      await client.transactionEnd(tx, abort);
    } catch (e) {
      if (isXenstoreError(e, 'EAGAIN') && !abort) continue;
      await switchFatal(dev, depth, errnoOf(e), 'ending transaction');
      return;
    }
    dev.state = state;
    return;
  }
}

async function switchFatal(
  dev: StatefulDevice,
  depth: number,
  errno: number,
  message: string,
): Promise<void> {
  await devError(dev, errno, message);
  if (depth === 0) await switchStateDepth(dev, XenbusState.Closing, 1);
}

/**
 * xenbus_dev_error: log "<errno> <message>" and write it to `error/<nodename>/error` (relative to the
 * domain's home). `errno` may be given negative, as Linux callers pass -ENOMEM; the text carries it
 * positive.
 */
export async function devError(dev: StatefulDevice, errno: number, message: string): Promise<void> {
  const text = `${Math.abs(errno)} ${message}`;
  dev.env.trace.log('xenbus', `${dev.nodename}: ${text}`);
  try {
    await dev.client.write(`error/${dev.nodename}/error`, text);
  } catch (e) {
    if (!(e instanceof XenstoreError)) throw e;
    dev.env.trace.log('xenbus', `failed to write error node for ${dev.nodename} (${text})`);
  }
}

/** xenbus_dev_fatal: xenbus_dev_error, then switch to Closing. */
export async function devFatal(dev: StatefulDevice, errno: number, message: string): Promise<void> {
  await devError(dev, errno, message);
  await switchState(dev, XenbusState.Closing);
}
