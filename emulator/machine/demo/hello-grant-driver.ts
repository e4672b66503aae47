/**
 * The controller's side of hello-grant: dom0 builds two domains (kernels hello-ping and hello-pong)
 * into the slots of guests `ping` and `pong`, the controller hands pong the offer ping made (ref and
 * port), both exchange `messages` messages concurrently, pong unmaps, ping ends foreign access, and
 * dom0 destroys both.
 */
import type { Controller } from '../../runtime/engine.js';
import type { HelloOffer } from './hello-grant.js';

export const HELLO_PING = 'ping';
export const HELLO_PONG = 'pong';

export interface HelloGrantResult {
  pingDomid: number;
  pongDomid: number;
  offer: HelloOffer;
  messages: number;
  endedAccess: boolean;
  unmapped: boolean;
}

export async function driveHelloGrant(
  ctl: Controller,
  engineDomainOf: (name: string) => number,
  messages: number,
): Promise<HelloGrantResult> {
  const ping = engineDomainOf(HELLO_PING);
  const pong = engineDomainOf(HELLO_PONG);
  const pingDomid = (await ctl.call(0, 'createDomain', HELLO_PING, 'hello-ping')) as number;
  const pongDomid = (await ctl.call(0, 'createDomain', HELLO_PONG, 'hello-pong')) as number;
  await waitBooted(ctl, ping);
  await waitBooted(ctl, pong);
  const offer = (await ctl.call(ping, 'offer', pongDomid)) as HelloOffer;
  await ctl.call(pong, 'accept', pingDomid, offer);
  // One task cannot await two calls at once: pong's side runs in a task of its own.
  const q = ctl.env.waitQueue('hello-grant pong side');
  let pongDone = false;
  let pongError: Error | undefined;
  ctl.env.spawn('pong-side', async () => {
    try {
      await ctl.call(pong, 'exchange', messages);
      await ctl.call(pong, 'finish');
    } catch (e) {
      pongError = e as Error;
    }
    pongDone = true;
    q.wakeAll();
  });
  const r = (await ctl.call(ping, 'exchange', messages)) as { messages: number };
  await ctl.env.wait(q, () => pongDone, { what: "pong's exchange to finish" });
  if (pongError !== undefined) throw pongError;
  const { endedAccess } = (await ctl.call(ping, 'finish')) as { endedAccess: boolean };
  await ctl.call(0, 'destroyDomain', pingDomid);
  await ctl.call(0, 'destroyDomain', pongDomid);
  return { pingDomid, pongDomid, offer, messages: r.messages, endedAccess, unmapped: true };
}

/** Boots are asynchronous (an upcall in the slot): wait for the slot to report its kernel booted. */
export async function waitBooted(ctl: Controller, engineDomid: number): Promise<number> {
  return (await ctl.call(engineDomid, 'waitBooted')) as number;
}
