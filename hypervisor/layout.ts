/**
 * Constants and byte layouts shared by the hypervisor and the guest kernels, as Xen defines them
 * (xen/include/public/{xen.h,grant_table.h,event_channel.h,sched.h}, xen/common/grant_table.c).
 */

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;

// ---- domain ids (xen.h) ----
export const DOMID_FIRST_RESERVED = 0x7ff0;
export const DOMID_SELF = 0x7ff0;
export const DOMID_IO = 0x7ff1;
export const DOMID_XEN = 0x7ff2;
export const DOMID_COW = 0x7ff3;
export const DOMID_INVALID = 0x7ff4;
export const DOMID_ANY = 0x7ff5;
export const DOMID_IDLE = 0x7fff;

// ---- grant_entry_v1: flags u16 @0, domid u16 @2, frame u32 @4 ----
export const GRANT_ENTRY_V1_SIZE = 8;
export const GRANT_ENTRY_FLAGS = 0;
export const GRANT_ENTRY_DOMID = 2;
export const GRANT_ENTRY_FRAME = 4;
export const GRANT_ENTRIES_PER_FRAME = PAGE_SIZE / GRANT_ENTRY_V1_SIZE; // 512
/** Refs 0..7 are reserved for the toolstack (0 console, 1 xenstore); guests allocate from 8. */
export const GNTTAB_NR_RESERVED_ENTRIES = 8;
/** grant_table.h GNTTAB_RESERVED_CONSOLE / GNTTAB_RESERVED_XENSTORE: the refs the toolstack fills in. */
export const GNTTAB_RESERVED_CONSOLE = 0;
export const GNTTAB_RESERVED_XENSTORE = 1;
/** Xen's opt_max_grant_frames default. */
export const DEFAULT_MAX_GRANT_FRAMES = 64;
/** Xen's opt_max_maptrack_frames default. */
export const DEFAULT_MAX_MAPTRACK_FRAMES = 1024;
/** Xen grows every grant table to at least this many frames at creation. */
export const INITIAL_NR_GRANT_FRAMES = 1;
/** GNTTAB_LIST_END / GRANT_REF_INVALID. */
export const GRANT_REF_INVALID = 0xffffffff;

export const GTF_invalid = 0;
export const GTF_permit_access = 1;
export const GTF_accept_transfer = 2;
export const GTF_transitive = 3;
export const GTF_type_mask = 3;
export const GTF_readonly = 1 << 2;
export const GTF_reading = 1 << 3;
export const GTF_writing = 1 << 4;
export const GTF_PWT = 1 << 5;
export const GTF_PCD = 1 << 6;
export const GTF_PAT = 1 << 7;
export const GTF_sub_page = 1 << 8;

export const GNTMAP_device_map = 1 << 0;
export const GNTMAP_host_map = 1 << 1;
export const GNTMAP_readonly = 1 << 2;
export const GNTMAP_application_map = 1 << 3;
export const GNTMAP_contains_pte = 1 << 4;

export const GNTCOPY_source_gref = 1 << 0;
export const GNTCOPY_dest_gref = 1 << 1;

export const GNTTABOP_map_grant_ref = 0;
export const GNTTABOP_unmap_grant_ref = 1;
export const GNTTABOP_setup_table = 2;
export const GNTTABOP_dump_table = 3;
export const GNTTABOP_transfer = 4;
export const GNTTABOP_copy = 5;
export const GNTTABOP_query_size = 6;
export const GNTTABOP_unmap_and_replace = 7;

export const GNTST_okay = 0;
export const GNTST_general_error = -1;
export const GNTST_bad_domain = -2;
export const GNTST_bad_gntref = -3;
export const GNTST_bad_handle = -4;
export const GNTST_bad_virt_addr = -5;
export const GNTST_bad_dev_addr = -6;
export const GNTST_no_device_space = -7;
export const GNTST_permission_denied = -8;
export const GNTST_bad_page = -9;
export const GNTST_bad_copy_arg = -10;
export const GNTST_address_too_big = -11;
export const GNTST_eagain = -12;
export const GNTST_no_space = -13;

/** GNTTABOP_error_msgs from grant_table.h, indexed by -status. */
export const GNTST_MESSAGES: readonly string[] = [
  'okay',
  'undefined error',
  'unrecognised domain id',
  'invalid grant reference',
  'invalid mapping handle',
  'invalid virtual address',
  'invalid device address',
  'no spare translation slot in the I/O MMU',
  'permission denied',
  'bad page',
  'copy arguments cross page boundary',
  'page address size too large',
  'operation not done; try again',
  'out of space',
];

export function gntstMessage(status: number): string {
  return GNTST_MESSAGES[-status] ?? `unknown status ${status}`;
}

/**
 * Active-entry pin counter: four 8-bit fields (grant_table.c GNTPIN_*). Xen refuses a new pin
 * while any field has its top bit set (pin & 0x80808080).
 */
export const GNTPIN_hstw_inc = 1 << 0;
export const GNTPIN_hstr_inc = 1 << 8;
export const GNTPIN_devw_inc = 1 << 16;
export const GNTPIN_devr_inc = 1 << 24;
export const GNTPIN_hstw_mask = 0xff << 0;
export const GNTPIN_hstr_mask = 0xff << 8;
export const GNTPIN_devw_mask = 0xff << 16;
export const GNTPIN_devr_mask = 0xff << 24;
export const GNTPIN_overflow_mask = 0x80808080;

/** Maptrack entry {ref u32 @0, flags u16 @4, domid u16 @6, vcpu u32 @8, pad} (16 bytes). */
export const MAPTRACK_ENTRY_SIZE = 16;
export const MAPTRACK_PER_FRAME = PAGE_SIZE / MAPTRACK_ENTRY_SIZE; // 256

/** Active entry (Xen-private, our layout): pin u32 @0, domid u32 @4, frame u32 @8, pad. */
export const ACTIVE_ENTRY_SIZE = 16;
export const ACTIVE_PER_FRAME = PAGE_SIZE / ACTIVE_ENTRY_SIZE; // 256
export const ACTIVE_FRAMES_PER_GRANT_FRAME = GRANT_ENTRIES_PER_FRAME / ACTIVE_PER_FRAME; // 2

// ---- event channels (event_channel.h) ----
export const EVTCHNOP_bind_interdomain = 0;
export const EVTCHNOP_bind_virq = 1;
export const EVTCHNOP_bind_pirq = 2;
export const EVTCHNOP_close = 3;
export const EVTCHNOP_send = 4;
export const EVTCHNOP_status = 5;
export const EVTCHNOP_alloc_unbound = 6;
export const EVTCHNOP_bind_ipi = 7;
export const EVTCHNOP_bind_vcpu = 8;
export const EVTCHNOP_unmask = 9;

export const EVTCHNSTAT_closed = 0;
export const EVTCHNSTAT_unbound = 1;
export const EVTCHNSTAT_interdomain = 2;
export const EVTCHNSTAT_pirq = 3;
export const EVTCHNSTAT_virq = 4;
export const EVTCHNSTAT_ipi = 5;

/** Xen-internal channel states (xen/include/xen/sched.h ECS_*). */
export const ECS_FREE = 0;
export const ECS_RESERVED = 1;
export const ECS_UNBOUND = 2;
export const ECS_INTERDOMAIN = 3;
export const ECS_PIRQ = 4;
export const ECS_VIRQ = 5;
export const ECS_IPI = 6;

/** EVTCHN_2L_NR_CHANNELS: (sizeof xen_ulong_t)^2 * 64. */
export const EVTCHN_2L_NR_CHANNELS_64 = 4096;
export const EVTCHN_2L_NR_CHANNELS_32 = 1024;
/** libxl's default `event_channels` (max_evtchn_port). */
export const DEFAULT_MAX_EVTCHN_PORT = 1023;

export const NR_VIRQS = 24;
export const VIRQ_TIMER = 0;
export const VIRQ_DEBUG = 1;
export const VIRQ_CONSOLE = 2;
export const VIRQ_DOM_EXC = 3;
/** Global VIRQs are bound by one domain for the whole host (the hardware domain by default). */
export const GLOBAL_VIRQS: ReadonlySet<number> = new Set([VIRQ_CONSOLE, VIRQ_DOM_EXC]);

// ---- shared_info / vcpu_info (xen.h, arch-x86/xen.h) ----
export const XEN_LEGACY_MAX_VCPUS = 32;
export const VCPU_INFO_SIZE = 64;
export const VCPU_INFO_UPCALL_PENDING = 0;
export const VCPU_INFO_UPCALL_MASK = 1;

export type GuestAbi = 'x86_64' | 'x86_32';

export interface SharedInfoLayout {
  readonly abi: GuestAbi;
  /** Bits per xen_ulong_t (one selector bit covers this many ports). */
  readonly wordBits: 32 | 64;
  /** evtchn_pending_sel offset inside a vcpu_info. */
  readonly pendingSelOffset: number;
  readonly evtchnPendingOffset: number;
  readonly evtchnMaskOffset: number;
  /** 2-level ABI port limit. */
  readonly nrChannels: number;
}

export const SHARED_INFO_X86_64: SharedInfoLayout = {
  abi: 'x86_64',
  wordBits: 64,
  pendingSelOffset: 8,
  evtchnPendingOffset: 2048,
  evtchnMaskOffset: 2560,
  nrChannels: EVTCHN_2L_NR_CHANNELS_64,
};

export const SHARED_INFO_X86_32: SharedInfoLayout = {
  abi: 'x86_32',
  wordBits: 32,
  pendingSelOffset: 4,
  evtchnPendingOffset: 2048,
  evtchnMaskOffset: 2176,
  nrChannels: EVTCHN_2L_NR_CHANNELS_32,
};

export function sharedInfoLayout(abi: GuestAbi): SharedInfoLayout {
  return abi === 'x86_64' ? SHARED_INFO_X86_64 : SHARED_INFO_X86_32;
}

// ---- sched.h shutdown reasons ----
export const SHUTDOWN_poweroff = 0;
export const SHUTDOWN_reboot = 1;
export const SHUTDOWN_suspend = 2;
export const SHUTDOWN_crash = 3;
export const SHUTDOWN_watchdog = 4;
export const SHUTDOWN_soft_reset = 5;
export const SHUTDOWN_MAX = 5;
