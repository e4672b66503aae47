export * from './domain.js';
export * from './errno.js';
export type { EvtchnStatus } from './event-channel.js';
export type {
  GnttabCopy,
  GnttabCopyPtr,
  GnttabMapGrantRef,
  GnttabQuerySize,
  GnttabSetupTable,
  GnttabUnmapGrantRef,
} from './grant-table.js';
export * from './hypercall.js';
export * from './hypervisor.js';
export * from './layout.js';
export { ReadOnlyPage } from './readonly-page.js';
export type { HypervisorBuffers } from './shared-state.js';
