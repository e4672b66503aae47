/**
 * `xl list` (xl_cmdimpl.c list_domains): the header and one line per domain, dying ones included,
 * with "(null)" where xenstore no longer has a name (printf of a NULL pointer in glibc).
 */
import type { DomainInfo } from '../../../hypervisor/domain.js';

export const XL_LIST_HEADER = 'Name                                        ID   Mem VCPUs\tState\tTime(s)';

export function formatXlListRow(name: string | undefined, info: DomainInfo, cpuTimeS = 0): string {
  const memMb = Math.floor((info.totPages * 4) / 1024);
  return `${(name ?? '(null)').padEnd(40)} ${String(info.domid).padStart(5)} ${String(memMb).padStart(5)} ${String(info.vcpus).padStart(5)}     ${info.flags}  ${cpuTimeS.toFixed(1).padStart(8)}`;
}
