/**
 * Domain lifecycle in libxl: create (libxl__domain_make, the xenstore ring page and event channel of
 * xc_dom, libxl__build_post's INTRODUCE, the disks, boot and unpause), shutdown requests, destroy
 * (libxl_domain_destroy: pause, devices, /vm and /local/domain, xc_domain_destroy), and the domain list.
 */

import type { DomainInfo } from '../../../hypervisor/domain.js';
import {
  GNTTAB_RESERVED_XENSTORE,
  GRANT_ENTRY_DOMID,
  GRANT_ENTRY_FLAGS,
  GRANT_ENTRY_FRAME,
  GRANT_ENTRY_V1_SIZE,
  GTF_permit_access,
} from '../../../hypervisor/layout.js';
import { defaultUuid } from '../../xenstored/layout.js';
import { domainPath } from '../../xenstored/paths.js';
import { DISABLE_UDEV_PATH } from '../hotplug/udev-gate.js';
import { type LibxlCtx, LibxlError } from './context.js';
import { type DiskRequest, deviceDiskAdd } from './device-disk.js';
import { devicesDestroy, xendReleaseDevices } from './device-remove.js';
import type { GuestStartInfo } from './host.js';
import { libxlRunsHotplugScripts } from './hotplug-exec.js';
import { joinXendCleanups } from './xend-device.js';

export type DomainAction = 'destroy' | 'restart' | 'preserve' | 'rename-restart';

export interface DomainSpec {
  name: string;
  memoryMb: number;
  vcpus: number;
  uuid?: string;
  extra: string;
  disks: DiskRequest[];
  onPoweroff: DomainAction;
  onReboot: DomainAction;
  onCrash: DomainAction;
}

/** libxl_domain_info for one domain, or undefined when the hypervisor does not know it. */
export function domainInfo(ctx: LibxlCtx, domid: number): DomainInfo | undefined {
  const r = ctx.hc.domainInfo(domid);
  return typeof r === 'number' ? undefined : r;
}

/** libxl_domid_to_name: /local/domain/<id>/name, undefined once xenstore has forgotten it. */
export function domidToName(ctx: LibxlCtx, domid: number): Promise<string | undefined> {
  return ctx.xs.tryRead(`${domainPath(domid)}/name`);
}

/** libxl_name_to_domid: the first live domain whose xenstore name matches. */
export async function nameToDomid(ctx: LibxlCtx, name: string): Promise<number | undefined> {
  const list = ctx.hc.domains();
  if (typeof list === 'number') return undefined;
  for (const d of list) if ((await domidToName(ctx, d.domid)) === name) return d.domid;
  return undefined;
}

/** Writes the ring page grant into a guest's table as xc_dom_gnttab_seed does (flags last). */
function seedStoreGrant(ctx: LibxlCtx, domid: number, storeMfn: number): void {
  const guest = ctx.host.privcmd.foreign(domid);
  const setup = guest.setupTable(1);
  const frame = setup.frameList?.[0];
  if (setup.status !== 0 || frame === undefined) {
    throw new Error(`gnttab setup_table for d${domid} failed with status ${setup.status}`);
  }
  const page = guest.page(frame);
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const off = GNTTAB_RESERVED_XENSTORE * GRANT_ENTRY_V1_SIZE;
  view.setUint16(off + GRANT_ENTRY_DOMID, 0, true);
  view.setUint32(off + GRANT_ENTRY_FRAME, storeMfn, true);
  const flags = new Uint16Array(page.buffer, page.byteOffset, page.byteLength / 2);
  Atomics.store(flags, (off + GRANT_ENTRY_FLAGS) / 2, GTF_permit_access);
}

/** libxl__domain_make's xenstore part (the nodes of emulator/xenstored/layout.ts createDomainLayout). */
async function writeDomainLayout(ctx: LibxlCtx, domid: number, name: string, uuid: string): Promise<void> {
  const dom = domainPath(domid);
  const vm = `/vm/${uuid}`;
  const ro = ['n0', `r${domid}`];
  const rw = [`n${domid}`];
  await ctx.xs.transaction(async (t) => {
    const mknod = async (path: string, perms: string[]) => {
      await ctx.xs.mkdir(path, t);
      await ctx.xs.setPerms(path, perms, t);
    };
    await ctx.xs.tryRm(dom, t);
    await mknod(dom, ro);
    await ctx.xs.tryRm(vm, t);
    await mknod(vm, ro);
    await ctx.xs.write(`${dom}/vm`, vm, t);
    for (const p of ['device', 'data', 'drivers', 'feature', 'attr', 'error']) await mknod(`${dom}/${p}`, rw);
    await mknod(`${dom}/control`, ro);
    await mknod(`${dom}/control/shutdown`, rw);
    await ctx.xs.write(`${vm}/uuid`, uuid, t);
    await ctx.xs.write(`${vm}/name`, name, t);
    await ctx.xs.write(`${dom}/name`, name, t);
    await ctx.xs.write(`${dom}/domid`, String(domid), t);
    await ctx.xs.tryRm(`/libxl/${domid}`, t);
    await mknod(`/libxl/${domid}`, ['n0']);
    // 4.2 with run_hotplug_scripts=1 (xl.conf's default): libxl, not udev, runs the hotplug scripts.
    if (libxlRunsHotplugScripts(ctx.version))
      await ctx.xs.write(`/local/domain/0/${DISABLE_UDEV_PATH}`, '1', t);
  });
  ctx.op(`xs_transaction domain_make ${dom} ${vm}`);
}

/** Creates, fills and starts a domain; its domid, or a libxl error (negative). */
export async function domainCreate(ctx: LibxlCtx, spec: DomainSpec): Promise<{ rc: number; domid: number }> {
  const where = 'libxl_create.c:libxl__domain_make';
  if ((await nameToDomid(ctx, spec.name)) !== undefined) {
    ctx.log('error', 'libxl_create.c:domain_create', `Domain with name "${spec.name}" already exists.`);
    return { rc: LibxlError.ERROR_INVAL, domid: -1 };
  }
  const maxPages = spec.memoryMb * 256;
  const domid = ctx.hc.createDomain({ maxPages, vcpus: spec.vcpus });
  if (domid < 0) {
    ctx.logErrno('error', where, -domid, 'domain creation fail');
    return { rc: LibxlError.ERROR_FAIL, domid: -1 };
  }
  ctx.op(`xc_domain_create ${domid}`);
  const uuid = spec.uuid ?? defaultUuid(domid);
  await writeDomainLayout(ctx, domid, spec.name, uuid);

  // xc_dom: the store ring page in guest memory, granted to dom0 with the reserved ref, and the
  // guest's unbound store event channel for dom0.
  let storeMfn: number;
  let storePort: number;
  try {
    storeMfn = ctx.host.privcmd.foreign(domid).allocPages(1)[0]!;
    seedStoreGrant(ctx, domid, storeMfn);
    storePort = ctx.hc.evtchnAllocUnbound(0, domid);
    if (storePort < 0) throw new Error(`evtchn alloc_unbound for d${domid}: error ${storePort}`);
  } catch (e) {
    ctx.log(
      'error',
      'libxl_dom.c:libxl__build_pv',
      `xc_dom setup of d${domid} failed: ${(e as Error).message}`,
    );
    await domainDestroy(ctx, domid);
    return { rc: LibxlError.ERROR_FAIL, domid: -1 };
  }
  // libxl__build_post
  const dom = domainPath(domid);
  await ctx.xs.transaction(async (t) => {
    await ctx.xs.write(`${dom}/memory/static-max`, String(spec.memoryMb * 1024), t);
    await ctx.xs.write(`${dom}/memory/target`, String(spec.memoryMb * 1024), t);
    await ctx.xs.write(`${dom}/store/port`, String(storePort), t);
    await ctx.xs.write(`${dom}/store/ring-ref`, String(storeMfn), t);
  });
  await ctx.xs.introduce(domid, storeMfn, storePort);
  ctx.op(`xs_introduce_domain ${domid} ${storeMfn} ${storePort}`);

  for (const disk of spec.disks) {
    const rc = await deviceDiskAdd(ctx, domid, disk);
    if (rc) {
      ctx.log('error', 'libxl_create.c:domcreate_devmodel_started', 'unable to add disk devices');
      await domainDestroy(ctx, domid);
      return { rc, domid: -1 };
    }
  }
  const startInfo: GuestStartInfo = {
    domid,
    name: spec.name,
    uuid,
    memoryKb: spec.memoryMb * 1024,
    storeMfn,
    storeEvtchn: storePort,
    storeGrantRef: GNTTAB_RESERVED_XENSTORE,
    cmdline: spec.extra,
  };
  await ctx.host.builder.boot(domid, spec.name, startInfo);
  const urc = ctx.hc.unpauseDomain(domid);
  ctx.op(`xc_domain_unpause ${domid}`, { rc: urc });
  return { rc: 0, domid };
}

/** libxl_domain_shutdown(req=poweroff|reboot): the PV control node the guest watches. */
export async function domainShutdown(
  ctx: LibxlCtx,
  domid: number,
  req: 'poweroff' | 'reboot',
): Promise<number> {
  if (domainInfo(ctx, domid) === undefined) return LibxlError.ERROR_INVAL;
  await ctx.xs.write(`${domainPath(domid)}/control/shutdown`, req);
  ctx.op(`xs_write ${domainPath(domid)}/control/shutdown ${req}`);
  return 0;
}

/** libxl_domain_destroy(domid, force=0). */
export function domainDestroy(ctx: LibxlCtx, domid: number): Promise<number> {
  return ctx.teardown('domain-destroy', `domain ${domid}`, () => destroyDomain(ctx, domid));
}

async function destroyDomain(ctx: LibxlCtx, domid: number): Promise<number> {
  const where = 'libxl.c:libxl_domain_destroy';
  if (domainInfo(ctx, domid) === undefined) {
    ctx.log('error', where, `non-existant domain ${domid}`);
    return LibxlError.ERROR_INVAL;
  }
  const dom = domainPath(domid);
  const prc = ctx.hc.pauseDomain(domid);
  ctx.op(`xc_domain_pause ${domid}`, { rc: prc });
  if (prc < 0) ctx.logErrno('error', where, -prc, `xc_domain_pause failed for ${domid}`);
  // xend: destroyDevice(force=False) per device now, its cleanup threads joined once the domain's
  // directory is gone (xend-device.ts).
  const xendCleanups = ctx.version === 'xend' ? await xendReleaseDevices(ctx, domid) : undefined;
  const drc = xendCleanups === undefined ? await devicesDestroy(ctx, domid) : 0;
  if (drc) ctx.log('error', where, `libxl__devices_destroy failed for ${domid}`);
  const vm = await ctx.xs.tryRead(`${dom}/vm`);
  if (vm !== undefined && !(await ctx.xs.tryRm(vm))) ctx.log('error', where, `xs_rm failed for ${vm}`);
  if (!(await ctx.xs.tryRm(dom))) ctx.log('error', where, `xs_rm failed for ${dom}`);
  await ctx.xs.tryRm(`/libxl/${domid}`);
  ctx.op(`xs_rm ${vm ?? '(no vm)'} ${dom}`);
  if (xendCleanups !== undefined) await joinXendCleanups(ctx, xendCleanups);
  const rc = ctx.hc.destroyDomain(domid);
  ctx.op(`xc_domain_destroy ${domid}`, { rc });
  if (rc < 0) {
    ctx.logErrno('error', where, -rc, `xc_domain_destroy failed for ${domid}`);
    return LibxlError.ERROR_FAIL;
  }
  // Simplification: C xenstored releases a dying domain itself (VIRQ_DOM_EXC → domain_cleanup); the
  // model's daemon does not watch the hypervisor, so the toolstack sends RELEASE for it.
  try {
    await ctx.xs.release(domid);
  } catch {
    // never introduced (creation failed early) or already released
  }
  await ctx.host.builder.destroyed?.(domid);
  return 0;
}
