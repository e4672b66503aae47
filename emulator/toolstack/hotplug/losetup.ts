/**
 * util-linux `losetup` as a dom0 program, the subset the block hotplug script uses:
 *   losetup -f                    print the first unbound /dev/loopN
 *   losetup -f --show [-r] FILE   bind FILE to the first unbound /dev/loopN and print its name
 *   losetup [-r] /dev/loopN FILE  bind FILE to that device
 *   losetup -d /dev/loopN         unbind it
 *   losetup -a                    one line per bound device: `/dev/loopN: (FILE)`
 * Errors print `losetup: ...` and exit 1, as util-linux does.
 * Simplification: it calls the loop driver directly instead of through ioctls on /dev/loop-control and
 * /dev/loopN; `-a` leaves out the backing file's [device]:inode pair, which the kernel model has no
 * notion of.
 */
import { isKernelError } from '../../kernel/errno.js';
import { type LoopDevices, loopDevice as loopDeviceName } from '../../kernel/loop.js';
import type { Process, Program } from '../../kernel/process.js';

export const LOSETUP_PATH = '/sbin/losetup';

export function losetupProgram(loops: LoopDevices): Program {
  return async (proc: Process, args: readonly string[]): Promise<number> => {
    const fail = (msg: string) => {
      proc.print(`losetup: ${msg}`);
      return 1;
    };
    const flags = new Set(args.filter((a) => a.startsWith('-')));
    const operands = args.filter((a) => !a.startsWith('-'));
    for (const f of flags) {
      if (!['-f', '--show', '-r', '-d', '-a'].includes(f)) return fail(`invalid option -- '${f}'`);
    }
    const readOnly = flags.has('-r');
    try {
      if (flags.has('-a')) {
        for (const b of loops.list()) proc.print(`${b.device}: (${b.backingFile})`);
        return 0;
      }
      if (flags.has('-d')) {
        if (operands.length !== 1) return fail('-d takes exactly one loop device');
        loops.clrFd(loops.indexOf(operands[0]!));
        return 0;
      }
      if (flags.has('-f')) {
        // `losetup -f` alone prints the first unused device (the block script's $(losetup -f)).
        if (operands.length === 0 && !flags.has('--show')) {
          proc.print(loopDeviceName(loops.getFree()));
          return 0;
        }
        if (operands.length !== 1) return fail('-f needs exactly one backing file');
        const b = loops.setFd(loops.getFree(), operands[0]!, { readOnly });
        if (flags.has('--show')) proc.print(b.device);
        return 0;
      }
      if (operands.length === 2) {
        loops.setFd(loops.indexOf(operands[0]!), operands[1]!, { readOnly });
        return 0;
      }
      return fail(
        'usage: losetup -f --show [-r] FILE | losetup [-r] /dev/loopN FILE | losetup -d /dev/loopN | losetup -a',
      );
    } catch (e) {
      if (!isKernelError(e)) throw e;
      if (e.code === 'ENOSPC') return fail('cannot find an unused loop device');
      return fail(e.message);
    }
  };
}
