/**
 * bus_dma(9) flags and the Xen extensions of the 2018 GSoC busdma_xen layer (sys/xen/busdma_xen.h),
 * and the errors this layer reports. Return codes are positive errno values, as bus_dma returns them;
 * the numbers are Linux's (the emulator's kernels share one errno table).
 */
import { ERRNO } from '../../emulator/kernel/errno.js';

/** sys/bus_dma.h */
export const BUS_DMA_WAITOK = 0x00;
export const BUS_DMA_NOWAIT = 0x01;
export const BUS_DMA_ALLOCNOW = 0x02;
/** Private bus flags; BUS_DMA_XEN_PREALLOC_REFS is BUS_DMA_BUS2. */
export const BUS_DMA_BUS2 = 0x20;
export const BUS_DMA_XEN_PREALLOC_REFS = BUS_DMA_BUS2;

/** Tag create: the other end's domid lives in the upper 16 bits of the flags. */
export const BUS_DMA_XEN_DOMID_SHIFT = 16;
/** Map load: grant flags live in the upper 16 bits; RO = the device only reads memory (disk writes). */
export const BUS_DMA_XEN_GNTTAB_FLAGS_SHIFT = 16;
export const BUS_DMA_XEN_RO = 1 << BUS_DMA_XEN_GNTTAB_FLAGS_SHIFT;

export const EINPROGRESS = ERRNO.EINPROGRESS;
export const ECANCELED = ERRNO.ECANCELED;
export const EINVAL = ERRNO.EINVAL;
export const ENOMEM = ERRNO.ENOMEM;
export const ENOSPC = ERRNO.ENOSPC;
export const EFBIG = ERRNO.EFBIG;
export const EBUSY = ERRNO.EBUSY;

/** Misuse of the API (bad argument, wrong state): carries the errno and names the field or state. */
export class BusDmaError extends Error {
  override readonly name = 'BusDmaError';
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}
