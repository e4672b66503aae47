/** The blktap2 kernel driver's public surface. */
export * from './abi.js';
export { BlktapDriver, type BlktapOptions, type DestroySemantics, installBlktap } from './driver.js';
export { BlktapRingMapping } from './ring.js';
export { Blktap, tapdevDiskName } from './tap.js';
