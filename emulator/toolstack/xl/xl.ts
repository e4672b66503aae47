/**
 * The `xl` command (tools/libxl/xl_cmdimpl.c): create (with the daemon that waits for the domain's
 * death and carries out on_poweroff/on_reboot/on_crash), shutdown [-w], destroy, list, block-attach and
 * block-detach. Each invocation is a process of dom0 with its own libxl context; messages go to the
 * process's output with xl's wording.
 */
import {
  SHUTDOWN_crash,
  SHUTDOWN_poweroff,
  SHUTDOWN_reboot,
  SHUTDOWN_watchdog,
} from '../../../hypervisor/layout.js';
import type { Process, Program } from '../../kernel/process.js';
import { parseDiskSpec } from '../disk-spec.js';
import { LibxlCtx } from '../libxl/context.js';
import { deviceDiskAdd, diskDevNumber, specWantsTap } from '../libxl/device-disk.js';
import { deviceRemove, domainVbds } from '../libxl/device-remove.js';
import {
  type DomainAction,
  type DomainSpec,
  domainCreate,
  domainDestroy,
  domainInfo,
  domainShutdown,
  domidToName,
  nameToDomid,
} from '../libxl/domain.js';
import type { ToolstackHost } from '../libxl/host.js';
import { domainSpecFromConfig, parseXlConfig, XlConfigError } from './config.js';
import { formatXlListRow, XL_LIST_HEADER } from './list.js';

/** exit(-1) as the shell sees it. */
const EXIT_FAIL = 255;

class XlExit extends Error {
  constructor(readonly code: number) {
    super(`xl exit ${code}`);
  }
}

/** find_domain (domain_qualifier_to_domid): a number is taken as a domid, anything else as a name. */
async function findDomain(ctx: LibxlCtx, p: string): Promise<number> {
  if (/^[0-9]+$/.test(p)) return Number(p);
  const domid = await nameToDomid(ctx, p);
  if (domid === undefined) {
    ctx.proc.print(`${p} is an invalid domain identifier (rc=-6)`);
    throw new XlExit(2);
  }
  return domid;
}

function actionFor(spec: DomainSpec, reason: number): DomainAction | 'ignore' {
  switch (reason) {
    case SHUTDOWN_poweroff:
      return spec.onPoweroff;
    case SHUTDOWN_reboot:
      return spec.onReboot;
    case SHUTDOWN_crash:
      return spec.onCrash;
    case SHUTDOWN_watchdog:
      return 'destroy';
    default:
      return 'ignore'; // suspend: the saver handles it
  }
}

/**
 * The xl create daemon: waits on @releaseDomain for the domain to shut down or die, then applies the
 * configured action. Its lines are what /var/log/xen/xl-<name>.log holds.
 */
function createDaemon(host: ToolstackHost, spec: DomainSpec, firstDomid: number): Program {
  return async (proc: Process) => {
    const ctx = new LibxlCtx(proc, host);
    let domid = firstDomid;
    await ctx.xs.watch('@releaseDomain', 'domain-death');
    proc.print(`Waiting for domain ${spec.name} (domid ${domid}) to die [pid ${proc.pid}]`);
    for (;;) {
      await ctx.xs.readWatch({ what: `death of domain ${domid} (@releaseDomain)` });
      const info = domainInfo(ctx, domid);
      if (info === undefined || info.dying) {
        proc.print(`Domain ${domid} has been destroyed.`);
        return 0;
      }
      if (!info.shutdown) continue;
      const reason = info.shutdownReason ?? 0;
      proc.print(`Domain ${domid} has shut down, reason code ${reason} 0x${reason.toString(16)}`);
      const action = actionFor(spec, reason);
      if (action === 'ignore') continue;
      proc.print(`Action for shutdown reason code ${reason} is ${action}`);
      if (action === 'preserve') {
        proc.print('Done. Exiting now');
        return 0;
      }
      if (action === 'rename-restart') {
        proc.print('not implemented: on_* = rename-restart');
        return 1;
      }
      proc.print(`Domain ${domid} needs to be cleaned up: destroying the domain`);
      await domainDestroy(ctx, domid);
      if (action === 'destroy') {
        proc.print('Done. Exiting now');
        return 0;
      }
      proc.print('Done. Rebooting now');
      const r = await domainCreate(ctx, spec);
      if (r.rc) {
        proc.print(`cannot make domain: ${r.rc}`);
        return 1;
      }
      domid = r.domid;
    }
  };
}

async function cmdCreate(ctx: LibxlCtx, args: string[]): Promise<number> {
  const host = ctx.host;
  const file = args.find((a) => !a.startsWith('-'));
  if (file === undefined) {
    ctx.proc.print('xl create: a config file is required');
    return 2;
  }
  ctx.proc.print(`Parsing config from ${file}`);
  const text = host.files?.get(file);
  if (text === undefined) {
    ctx.proc.print(`Failed to read config file: ${file}: No such file or directory`);
    return 1;
  }
  let spec: DomainSpec;
  try {
    spec = domainSpecFromConfig(parseXlConfig(text, file), file);
  } catch (e) {
    if (!(e instanceof XlConfigError)) throw e;
    ctx.proc.print(e.message);
    ctx.proc.print('Failed to parse config file: Invalid argument');
    return 1;
  }
  const r = await domainCreate(ctx, spec);
  if (r.rc) {
    ctx.proc.print(`cannot make domain: ${r.rc}`);
    return 3;
  }
  const pid = await ctx.proc.spawn(createDaemon(host, spec, r.domid), [file], {
    name: 'xl',
    daemonize: true,
  });
  ctx.proc.print(`Daemon running with PID ${pid}`);
  return 0;
}

async function cmdShutdown(ctx: LibxlCtx, args: string[]): Promise<number> {
  const wait = args.includes('-w');
  const p = args.find((a) => !a.startsWith('-'));
  if (p === undefined) {
    ctx.proc.print('Usage: xl shutdown [-w] <Domain>');
    return 2;
  }
  const domid = await findDomain(ctx, p);
  if (wait) await ctx.xs.watch('@releaseDomain', 'shutdown-wait');
  const rc = await domainShutdown(ctx, domid, 'poweroff');
  if (rc) {
    ctx.proc.print(`shutdown failed (rc=${rc})`);
    return EXIT_FAIL;
  }
  if (!wait) return 0;
  for (;;) {
    await ctx.xs.readWatch({ what: `domain ${domid} to shut down (@releaseDomain)` });
    const info = domainInfo(ctx, domid);
    // libxl_event_get_domain_death_info: shut down or dying. A domain already gone also ends the wait.
    if (info === undefined || info.shutdown || info.dying) {
      ctx.proc.print(`Domain ${domid} is dead`);
      return 0;
    }
  }
}

async function cmdDestroy(ctx: LibxlCtx, args: string[]): Promise<number> {
  const p = args[0];
  if (p === undefined) {
    ctx.proc.print('Usage: xl destroy <Domain>');
    return 2;
  }
  const domid = await findDomain(ctx, p);
  if (domid === 0) {
    ctx.proc.print('Cannot destroy privileged domain 0.');
    return EXIT_FAIL;
  }
  const rc = await domainDestroy(ctx, domid);
  if (rc) {
    ctx.proc.print(`destroy failed (rc=${rc})`);
    return EXIT_FAIL;
  }
  return 0;
}

async function cmdList(ctx: LibxlCtx, args: string[]): Promise<number> {
  const list = ctx.hc.domains();
  if (typeof list === 'number') {
    ctx.proc.print('libxl_list_domain failed.');
    return 1;
  }
  let shown = list;
  if (args[0] !== undefined) {
    const domid = await findDomain(ctx, args[0]);
    shown = list.filter((d) => d.domid === domid);
    if (shown.length === 0) {
      ctx.proc.print('libxl_domain_info failed.');
      return 1;
    }
  }
  ctx.proc.print(XL_LIST_HEADER);
  for (const d of shown) ctx.proc.print(formatXlListRow(await domidToName(ctx, d.domid), d));
  return 0;
}

async function cmdBlockAttach(ctx: LibxlCtx, args: string[]): Promise<number> {
  if (args.length < 2) {
    ctx.proc.print('Usage: xl block-attach <Domain> <disk-spec-component(s)>...');
    return 2;
  }
  const domid = await findDomain(ctx, args[0]!);
  const specs = args.slice(1);
  const r = parseDiskSpec(specs, 'command line');
  if (!r.ok) {
    for (const e of r.errors) ctx.proc.print(e.line);
    return 1;
  }
  const spec = specs.join(',');
  const rc = await deviceDiskAdd(ctx, domid, { disk: r.disk, tap: specWantsTap(spec, r.disk), spec });
  if (rc) {
    ctx.proc.print('libxl_device_disk_add failed.');
    return 1;
  }
  return 0;
}

async function cmdBlockDetach(ctx: LibxlCtx, args: string[]): Promise<number> {
  if (args.length !== 2) {
    ctx.proc.print('Usage: xl block-detach <Domain> <DevId>');
    return 2;
  }
  const domid = await findDomain(ctx, args[0]!);
  const devid = diskDevNumber(args[1]!);
  const dev = (await domainVbds(ctx, domid)).find((d) => d.devid === devid);
  if (dev === undefined) {
    ctx.proc.print(`Error: Device ${args[1]} not connected.`);
    return 1;
  }
  const rc = await deviceRemove(ctx, dev);
  if (rc) {
    ctx.proc.print('libxl_device_disk_remove failed.');
    return 1;
  }
  return 0;
}

const COMMANDS: Record<string, (ctx: LibxlCtx, args: string[]) => Promise<number>> = {
  create: cmdCreate,
  shutdown: cmdShutdown,
  destroy: cmdDestroy,
  list: cmdList,
  'block-attach': cmdBlockAttach,
  'block-detach': cmdBlockDetach,
};

/** The xl program: argv without the program name, e.g. ["destroy", "guest1"]. */
export function xlProgram(host: ToolstackHost): Program {
  return async (proc: Process, argv: readonly string[]): Promise<number> => {
    const [cmd, ...rest] = argv;
    const run = cmd === undefined ? undefined : COMMANDS[cmd];
    if (run === undefined) {
      proc.print(cmd === undefined ? 'Usage xl [-v] <subcommand> [args]' : `command not implemented`);
      return 1;
    }
    const ctx = new LibxlCtx(proc, host);
    try {
      return await run(ctx, rest);
    } catch (e) {
      if (e instanceof XlExit) return e.code;
      throw e;
    }
  };
}
