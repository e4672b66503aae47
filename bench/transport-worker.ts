/**
 * One end of the transport-limit ring (see transport-limit.ts). The front produces requests and waits
 * for responses; the back copies 4 KiB out of the request's data page and answers. Each side sleeps on
 * its notification word only after the ring.h final check says nothing is left.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { BLKIF_ABI_X86_64 } from '../drivers/blkif.js';
import { BackRing, FrontRing, SharedRing, XEN_PAGE_SIZE } from '../drivers/ring.js';

const { buffer, slots, entries, role } = workerData as {
  buffer: SharedArrayBuffer;
  slots: number;
  entries: number;
  role: 'front' | 'back';
};
const sring = new SharedRing(buffer, 0, 1, BLKIF_ABI_X86_64.entrySize);
const words = new Int32Array(buffer, XEN_PAGE_SIZE * (1 + slots), 3);
const READY = 2;
const FRONT = 0;
const BACK = 1;
const data = new Uint8Array(buffer, XEN_PAGE_SIZE, XEN_PAGE_SIZE * slots);

function kick(word: number): void {
  Atomics.add(words, word, 1);
  Atomics.notify(words, word);
}

function sleepOn(word: number, seen: number): void {
  Atomics.wait(words, word, seen);
}

// Start together, so worker start-up is not measured.
Atomics.add(words, READY, 1);
Atomics.notify(words, READY);
while (Atomics.load(words, READY) < 2) Atomics.wait(words, READY, 1, 50);

if (role === 'front') {
  const started = performance.now();
  const front = FrontRing.attach(sring, 0);
  const view = sring.view;
  let sent = 0;
  let done = 0;
  while (done < entries) {
    while (sent < entries && front.freeRequests() > 0) {
      const idx = front.reqProdPvt;
      const off = front.requestSlot(idx);
      view.setUint8(off, 0); // BLKIF_OP_READ
      view.setBigUint64(off + 8, BigInt(idx & (slots - 1)), true);
      data[(idx & (slots - 1)) * XEN_PAGE_SIZE] = idx & 0xff;
      front.reqProdPvt = idx + 1;
      sent++;
    }
    if (front.pushRequestsAndCheckNotify()) kick(BACK);
    const seen = Atomics.load(words, FRONT);
    let n = front.unconsumedResponses();
    if (n === 0) n = front.finalCheckForResponses();
    if (n === 0) {
      sleepOn(FRONT, seen);
      continue;
    }
    front.rspCons = front.rspCons + n;
    done += n;
  }
  parentPort?.postMessage({ elapsedMs: performance.now() - started });
} else {
  const back = BackRing.attach(sring, 0);
  const view = sring.view;
  const bounce = new Uint8Array(XEN_PAGE_SIZE);
  let answered = 0;
  while (answered < entries) {
    const seen = Atomics.load(words, BACK);
    let n = back.unconsumedRequests();
    if (n === 0) n = back.finalCheckForRequests();
    if (n === 0) {
      sleepOn(BACK, seen);
      continue;
    }
    for (let i = 0; i < n; i++) {
      const reqOff = back.requestSlot(back.reqCons);
      const id = view.getBigUint64(reqOff + 8, true);
      back.reqCons = back.reqCons + 1;
      const page = Number(id) * XEN_PAGE_SIZE;
      bounce.set(data.subarray(page, page + XEN_PAGE_SIZE));
      const rspOff = back.responseSlot(back.rspProdPvt);
      view.setBigUint64(rspOff, id, true);
      view.setUint8(rspOff + 8, 0);
      view.setInt16(rspOff + 10, 0, true);
      back.rspProdPvt = back.rspProdPvt + 1;
      answered++;
    }
    if (back.pushResponsesAndCheckNotify()) kick(FRONT);
  }
}
