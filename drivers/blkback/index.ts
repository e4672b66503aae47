/** blkback, the dom0 block backend: control path (xenbus.ts) and data path (ring-thread.ts, blkback.ts). */
export * from './common.js';
export * from './context.js';
export * from './persistent-grants.js';
export { BlkifRing, type RingStats } from './ring-thread.js';
export { vbdHolder, XenVbd } from './vbd.js';
export { XenBlkif } from './xen-blkif.js';
export * from './xenbus.js';
