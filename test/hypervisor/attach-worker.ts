/** Worker side of attach.test.ts: dom0's backend in another thread, over the same buffers. */
import { parentPort, workerData } from 'node:worker_threads';
import { Hypervisor } from '../../hypervisor/index.js';

const { buffers, feDomid, ref, port } = workerData as {
  buffers: Record<string, SharedArrayBuffer>;
  feDomid: number;
  ref: number;
  port: number;
};
const kicked: number[] = [];
const hv = Hypervisor.attach(buffers as never, { kick: (d) => kicked.push(d) });
const d0 = hv.hypercalls(0);
const m = d0.mapGrant(feDomid, ref);
const page = m.page as Uint8Array;
const seen = page[0];
page.set([1, 2, 3, 4], 100);
const sendRc = d0.evtchnSend(port);
const unmapRc = d0.unmapGrant(m.handle);
parentPort?.postMessage({
  status: m.status,
  seen,
  sendRc,
  unmapRc,
  kicked,
  domains: hv.domains().map((d) => d.domid),
});
