/** The shell's commands: usage lines and help texts (`help`, `help <command>`). */

export interface CommandHelp {
  usage: string;
  summary: string;
  details: readonly string[];
}

export const COMMANDS: Record<string, CommandHelp> = {
  xl: {
    usage: 'xl SUBCOMMAND [ARGS...]',
    summary: "run dom0's xl (create, list, destroy, shutdown, block-attach ...) and print its output",
    details: [
      'The real toolstack code runs in dom0 at the libxl version of the host. Each guest of the host',
      'has a config file: xl create /etc/xen/<name>.cfg',
    ],
  },
  'tap-ctl': {
    usage: 'tap-ctl SUBCOMMAND [ARGS...]',
    summary: "run dom0's tap-ctl (list, create, destroy, allocate, spawn, attach, open ...)",
    details: ['tap-ctl talks to tapdisk over its control socket and to the blktap2 driver through /dev.'],
  },
  'xenstore-ls': {
    usage: 'xenstore-ls [PATH]',
    summary: 'print the xenstore tree under PATH (default /), as xenstore-ls does',
    details: ['Example: xenstore-ls /local/domain/0/backend/vbd'],
  },
  'xenstore-read': {
    usage: 'xenstore-read PATH...',
    summary: 'print the value of each PATH',
    details: [],
  },
  'xenstore-write': {
    usage: 'xenstore-write PATH VALUE [PATH VALUE...]',
    summary: 'write values as dom0',
    details: ['Example: xenstore-write /local/domain/0/backend/vbd/1/51712/online 0'],
  },
  'xenstore-rm': {
    usage: 'xenstore-rm PATH...',
    summary: 'remove nodes (with their children)',
    details: [],
  },
  dd: {
    usage: 'dd GUEST DISK write|read [offset=SIZE] [len=SIZE] [pattern=P] [verify=P]',
    summary: "I/O on a guest's disk, through its blkfront, the backend and the image",
    details: [
      'write fills len bytes at offset with pattern P (default seq); read reads them back and, with',
      'verify=P, compares them with the pattern. SIZE: 512, 4K, 64KiB, 1M ... (default offset 0,',
      'len 64K). P: seq, zero, ones, random:<seed>, pattern:<hex>.',
      'Example: dd guest1 xvda write offset=0 len=64K pattern=seq',
      '         dd guest1 xvda read offset=0 len=64K verify=seq',
    ],
  },
  ring: {
    usage: 'ring [GUEST [DISK]]',
    summary: "xen-ringwatch lines for blkback's rings, with BUSY/IDLE/STUCK",
    details: [
      'One block per ring snapshot blkback traced (req prod/cons/event, rsp prod/pvt/event). STUCK:',
      'work outstanding and no consumer progress since the previous sample of that ring.',
    ],
  },
  grants: {
    usage: 'grants [DOMAIN]',
    summary: 'grant entries in use (ref, domid, frame, GTF flags, pins) and the grants a domain maps',
    details: ["Read from the hypervisor's grant tables, like Xen's 'g' debug key. DOMAIN: name or domid."],
  },
  evtchn: {
    usage: 'evtchn [DOMAIN]',
    summary: 'event-channel ports: state, remote end, pending and masked bits',
    details: ["Read from the hypervisor's port tables and shared_info, like Xen's 'e' debug key."],
  },
  dmesg: {
    usage: 'dmesg DOMAIN',
    summary: "a domain's kernel log (Domain-0 or a guest name)",
    details: [],
  },
  ps: {
    usage: 'ps',
    summary: "dom0's processes with their state (R, S, D, Z) and what the sleeping ones wait for",
    details: [],
  },
  sleep: {
    usage: 'sleep DURATION',
    summary: 'let time pass (5s, 500ms ...; a bare number is seconds)',
    details: ['Timers that fall due run: timeouts, retries, the guests’ and daemons’ sleeps.'],
  },
  step: {
    usage: 'step [N]',
    summary: 'run the next N steps (default 1) of the loaded scenario',
    details: [],
  },
  continue: {
    usage: 'continue',
    summary: 'run the remaining steps of the loaded scenario',
    details: [],
  },
  run: {
    usage: 'run FILE',
    summary: 'load a scenario (its host, domains and versions on a fresh machine) and run all its steps',
    details: [],
  },
  timeline: {
    usage: 'timeline [--since T]',
    summary: 'what every component did, one line per event (since virtual time T, e.g. 2s)',
    details: [],
  },
  stalls: {
    usage: 'stalls',
    summary: 'every stall so far: the chain of waits and the timer that breaks it',
    details: [],
  },
  history: { usage: 'history', summary: 'the lines entered so far', details: [] },
  help: { usage: 'help [COMMAND]', summary: 'this list, or the details of one command', details: [] },
  quit: { usage: 'quit (or exit, or Ctrl-D)', summary: 'end the session', details: [] },
};

export const ALIASES: Record<string, string> = { exit: 'quit' };

export const TIME_HELP: readonly string[] = [
  'How time passes: with --engine sim (the default) time is virtual and moves only as far as the',
  'mechanism needs (a 5 s select() timeout takes no real time). A command ends once everything it',
  'set off has settled, timers it left running included (their stalls show in its output); then the',
  'machine is still until the next command. With --engine threads time is real (scaled by',
  '--time-scale) and keeps running between commands.',
  'Lines starting with # are comments. Errors go to stderr with the line number.',
];

export function helpLines(command?: string): string[] {
  if (command !== undefined) {
    const name = ALIASES[command] ?? command;
    const h = COMMANDS[name];
    if (h === undefined) throw new Error(`help: no command "${command}"`);
    return [`usage: ${h.usage}`, `  ${h.summary}`, ...h.details.map((d) => `  ${d}`)];
  }
  const width = Math.max(...Object.values(COMMANDS).map((h) => h.usage.length));
  const lines = ['Commands (help COMMAND for details):'];
  for (const h of Object.values(COMMANDS)) lines.push(`  ${h.usage.padEnd(width)}  ${h.summary}`);
  return [...lines, '', ...TIME_HELP];
}
