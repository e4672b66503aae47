/**
 * hello-grant: two guests share one page through a grant and signal each other over an event channel.
 *
 * ping grants a page of its memory to pong and allocates an unbound port for it (`offer`); pong maps
 * the grant and binds the port (`accept`). Then, message after message, ping writes "ping <n>" into the
 * page and notifies; pong's upcall wakes its task, which reads it, writes "pong <n>" back in the same
 * page and notifies; ping checks the answer. At the end pong unmaps and notifies, and ping ends foreign
 * access (which only succeeds once the mapping is gone) and frees the page.
 *
 * The peers learn each other's ref and port from the controller, where a real driver would use xenstore.
 *
 * Page layout (little-endian u32): 0 ping's sequence number, 4 pong's, 8 text length, 16.. text.
 */

import { GuestEvents } from '../../../drivers/events.js';
import { GrantTable } from '../../../drivers/grant-table.js';
import { GNTST_okay } from '../../../hypervisor/layout.js';
import type { KernelContext, KernelInstance } from '../kernel.js';

const OFF_PING = 0;
const OFF_PONG = 4;
const OFF_LEN = 8;
const OFF_TEXT = 16;
const MAX_TEXT = 4096 - OFF_TEXT;

export interface HelloOffer {
  ref: number;
  port: number;
}

export interface ExchangeResult {
  messages: number;
  /** Virtual ms from the first send to the last answer. */
  elapsed: number;
}

/** Trace every message only when there are few of them (a readable timeline). */
const TRACE_EACH_UP_TO = 64;

function writeText(page: Uint8Array, text: string): void {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length > MAX_TEXT)
    throw new RangeError(`hello-grant: message of ${bytes.length} bytes does not fit`);
  page.set(bytes, OFF_TEXT);
  new DataView(page.buffer, page.byteOffset, page.byteLength).setUint32(OFF_LEN, bytes.length, true);
}

function readText(page: Uint8Array): string {
  const len = new DataView(page.buffer, page.byteOffset, page.byteLength).getUint32(OFF_LEN, true);
  if (len > MAX_TEXT)
    throw new RangeError(`hello-grant: text length ${len} in the shared page is out of range`);
  return new TextDecoder().decode(page.subarray(OFF_TEXT, OFF_TEXT + len));
}

function word(page: Uint8Array): Int32Array {
  return new Int32Array(page.buffer, page.byteOffset, 4);
}

/** What both demo kernels start with: event channels, a wait queue for the peer, an upcall counter. */
function helloBoot(k: KernelContext, role: 'ping' | 'pong') {
  const { env, hc } = k;
  const events = new GuestEvents(hc);
  events.attach(env);
  const q = env.waitQueue(`hello-${role} ${role === 'ping' ? 'answers' : 'messages'}`);
  let upcalls = 0;
  env.trace.emit('hello', 'boot', { domid: k.domid, role });
  const onEvent = (p: number): void => {
    upcalls++;
    if (upcalls <= TRACE_EACH_UP_TO) env.trace.emit('hello', 'upcall', { port: p });
    q.wakeAll();
  };
  return { events, q, onEvent };
}

export async function bootHelloPing(k: KernelContext): Promise<KernelInstance> {
  const { env, hc } = k;
  const gt = new GrantTable(hc, { env });
  const { events, q, onEvent } = helloBoot(k, 'ping');
  let page: Uint8Array | undefined;
  let mfn = -1;
  let ref = -1;
  let port = -1;
  let peer = -1;

  return {
    methods: {
      async offer(peerDomid: number): Promise<HelloOffer> {
        if (page !== undefined) throw new Error('hello-ping: already offered a page');
        peer = peerDomid;
        [mfn] = hc.allocPages(1);
        page = hc.page(mfn);
        page.fill(0);
        ref = gt.grantForeignAccess(peer, mfn, false);
        if (ref < 0) throw new Error(`hello-ping: no grant reference free (${ref})`);
        env.trace.emit('hello', 'grant', { ref, mfn, to: peer });
        port = events.allocUnbound(peer, onEvent);
        if (port <= 0) throw new Error(`hello-ping: evtchn_alloc_unbound failed (${port})`);
        env.trace.emit('hello', 'evtchn-alloc', { port, remote: peer });
        return { ref, port };
      },

      async exchange(n: number): Promise<ExchangeResult> {
        const p = page;
        if (p === undefined) throw new Error('hello-ping: offer a page first');
        if (!Number.isInteger(n) || n < 1)
          throw new RangeError(`hello-ping: messages must be >= 1, got ${n}`);
        const w = word(p);
        const t0 = env.now();
        for (let i = 1; i <= n; i++) {
          writeText(p, `ping ${i}`);
          Atomics.store(w, OFF_PING / 4, i);
          if (n <= TRACE_EACH_UP_TO) env.trace.emit('hello', 'send', { port, seq: i, text: `ping ${i}` });
          events.notify(port);
          await env.wait(q, () => Atomics.load(w, OFF_PONG / 4) >= i, {
            what: `pong's answer ${i} in the granted page`,
          });
          const text = readText(p);
          if (text !== `pong ${i}`)
            throw new Error(`hello-ping: answer ${i} was "${text}", expected "pong ${i}"`);
          if (n <= TRACE_EACH_UP_TO) env.trace.emit('hello', 'recv', { seq: i, text });
        }
        return { messages: n, elapsed: env.now() - t0 };
      },

      /** Wait for pong to unmap, end foreign access, free the page, close the port. */
      async finish(): Promise<{ endedAccess: boolean }> {
        const p = page;
        if (p === undefined) throw new Error('hello-ping: nothing to finish');
        // Pong notifies after unmapping; events coalesce, so the condition (not a count) decides.
        await env.wait(q, () => gt.queryForeignAccess(ref) === 0, {
          what: `pong to unmap grant ${ref}`,
        });
        const endedAccess = gt.tryEndForeignAccess(ref);
        env.trace.emit('hello', 'end-access', { ref, ok: endedAccess });
        if (endedAccess) hc.freePage(mfn);
        events.close(port);
        page = undefined;
        return { endedAccess };
      },
    },
  };
}

export async function bootHelloPong(k: KernelContext): Promise<KernelInstance> {
  const { env, hc } = k;
  const { events, q, onEvent } = helloBoot(k, 'pong');
  let page: Uint8Array | undefined;
  let handle = -1;
  let port = -1;
  let peer = -1;

  return {
    methods: {
      async accept(peerDomid: number, offer: HelloOffer): Promise<void> {
        peer = peerDomid;
        const m = hc.mapGrant(peer, offer.ref);
        if (m.status !== GNTST_okay || !(m.page instanceof Uint8Array)) {
          throw new Error(
            `hello-pong: mapping grant ${offer.ref} of d${peer} failed with status ${m.status}`,
          );
        }
        page = m.page;
        handle = m.handle;
        env.trace.emit('hello', 'map', { ref: offer.ref, from: peer, handle });
        port = events.bindInterdomain(peer, offer.port, onEvent);
        if (port <= 0) throw new Error(`hello-pong: binding to d${peer} port ${offer.port} failed (${port})`);
        env.trace.emit('hello', 'evtchn-bind', { port, remote: peer, remotePort: offer.port });
      },

      async exchange(n: number): Promise<ExchangeResult> {
        const p = page;
        if (p === undefined) throw new Error('hello-pong: accept an offer first');
        const w = word(p);
        const t0 = env.now();
        for (let i = 1; i <= n; i++) {
          await env.wait(q, () => Atomics.load(w, OFF_PING / 4) >= i, {
            what: `ping's message ${i} in the granted page`,
          });
          const text = readText(p);
          if (text !== `ping ${i}`)
            throw new Error(`hello-pong: message ${i} was "${text}", expected "ping ${i}"`);
          if (n <= TRACE_EACH_UP_TO) env.trace.emit('hello', 'recv', { seq: i, text });
          writeText(p, `pong ${i}`);
          Atomics.store(w, OFF_PONG / 4, i);
          if (n <= TRACE_EACH_UP_TO) env.trace.emit('hello', 'send', { port, seq: i, text: `pong ${i}` });
          events.notify(port);
        }
        return { messages: n, elapsed: env.now() - t0 };
      },

      async finish(): Promise<{ unmapped: boolean }> {
        if (page === undefined) throw new Error('hello-pong: nothing mapped');
        const status = hc.unmapGrant(handle);
        page = undefined;
        env.trace.emit('hello', 'unmap', { handle, status });
        events.notify(port);
        events.close(port);
        return { unmapped: status === GNTST_okay };
      },
    },
  };
}
