/**
 * What the toolstack needs from the machine it runs on. The machine layer (emulator/machine) builds one
 * of these for dom0 and installs `xl` and the hotplug scripts into dom0's kernel with it.
 */
import type { XsDaemonConnector } from '../../../drivers/xenbus/direct-transport.js';
import type { Hypercalls } from '../../../hypervisor/hypercall.js';
import type { Kernel } from '../../kernel/kernel.js';
import type { Holder, HolderDirectory } from '../../runtime/engine.js';

/**
 * The teardown order to follow (teardown.md §3.1, §3.6): stable-4.1 with 8cc9dbccf0, unstable of July
 * 2012 (784528b67d/2dc6e6ef99), 4.2 after 4f6dda6a14, and xend's Blktap2Controller.
 */
export type LibxlVersion = '4.1' | '4.2-pre' | '4.2' | 'xend';
export const LIBXL_VERSIONS: readonly LibxlVersion[] = ['4.1', '4.2-pre', '4.2', 'xend'];

/** What the guest kernel learns at boot from the domain builder (start_info's store fields and more). */
export interface GuestStartInfo {
  domid: number;
  name: string;
  uuid: string;
  memoryKb: number;
  /** Machine frame of the xenstore ring page, in the guest's memory. */
  storeMfn: number;
  /** The guest's end of the store event channel (unbound, remote dom0). */
  storeEvtchn: number;
  /** GNTTAB_RESERVED_XENSTORE: the grant ref through which xenstored maps the ring. */
  storeGrantRef: number;
  /** The kernel command line from the config's `extra`. */
  cmdline: string;
}

/**
 * Starts the guest kernel of a domain libxl has built (xc_dom_boot_image's role). The machine layer
 * implements it; libxl calls `boot` after the domain's devices are in xenstore and before unpausing it.
 */
export interface DomainBuilder {
  boot(domid: number, name: string, startInfo: GuestStartInfo): void | Promise<void>;
  /** Called after xc_domain_destroy so the machine can stop the domain's tasks. */
  destroyed?(domid: number): void | Promise<void>;
}

/**
 * privcmd: dom0's hypercalls, and the foreign access the domain builder has to a domain it builds.
 * Simplification: Xen's builder populates and writes guest memory through foreign mappings; the
 * model's hypercall surface has none, so the builder uses the new (still paused) domain's own surface.
 */
export interface Privcmd {
  readonly dom0: Hypercalls;
  foreign(domid: number): Hypercalls;
}

export interface ToolstackHost {
  /** dom0's kernel: xl, the hotplug scripts and tapdisk run as its processes. */
  readonly kernel: Kernel;
  readonly xenstored: XsDaemonConnector;
  /** The xenstored task (for wait reports), when known. */
  readonly xenstoredHolder?: Holder;
  readonly privcmd: Privcmd;
  readonly builder: DomainBuilder;
  readonly libxl: LibxlVersion;
  /**
   * Files xl reads (domain configs). Simplification: the kernel model has no regular files, so
   * configs are handed over here by path.
   */
  readonly files?: ReadonlyMap<string, string>;
  /** Program spawned by tap_ctl_spawn (default /usr/sbin/tapdisk2). */
  readonly tapdiskProgram?: string;
  /**
   * The engine's holder directory (DomainContext.holders). When given, the toolstack publishes its
   * holder labelled "toolstack" (toolstack-holder.ts) there, so the wait-for graph can follow what
   * blkback waits for into the xl process that tears the device down.
   */
  readonly holders?: HolderDirectory;
}

/** Where libxl finds hotplug scripts (libxl__xen_script_dir_path()). */
export const XEN_SCRIPT_DIR = '/etc/xen/scripts';
/** Where xl is installed. */
export const XL_PATH = '/usr/sbin/xl';
