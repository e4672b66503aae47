/**
 * The `xenpv` command line. Each subcommand lives in its own file under emulator/cli/commands/ and is
 * registered here. Exit codes: 0 success (expectations held), 1 expectations failed, 2 invalid input.
 */
import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { tapCtlAttachModule, xenstoreAttachModule, xlAttachModule } from './commands/attach.js';
import { benchCommand } from './commands/bench.js';
import { exploreCommandModule } from './commands/explore.js';
import { runCommandModule } from './commands/run.js';
import { scenariosCommandModule } from './commands/scenarios.js';
import { shellCommandModule } from './commands/shell.js';
import { traceCommandModule } from './commands/trace.js';
import { xenstoredCommand } from './commands/xenstored.js';

function packageVersion(): string {
  // dist/emulator/cli/main.js when built, emulator/cli/main.ts from source (tests, tsx).
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version: string;
      };
      if (pkg.name === 'xenpv') return pkg.version;
    } catch {
      // not at this level
    }
  }
  return 'unknown';
}

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const parser = yargs(argv)
    .scriptName('xenpv')
    .usage('$0 <command> [options]\n\nAn emulator of the Xen paravirtual block path.')
    .version(packageVersion())
    .strict()
    .command(runCommandModule)
    .command(exploreCommandModule)
    .command(scenariosCommandModule)
    .command(shellCommandModule)
    .command(benchCommand)
    .command(traceCommandModule)
    .command(xenstoredCommand)
    .command(tapCtlAttachModule)
    .command(xlAttachModule)
    .command(xenstoreAttachModule)
    .demandCommand(1, 'Name a command; see the list above.')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((msg, err, y) => {
      if (err) throw err;
      console.error(y.help === undefined ? msg : `${msg}\n\nRun "xenpv --help" for the list of commands.`);
      exitCode = 2;
    });
  await parser.parseAsync();
  // Commands report their verdict through process.exitCode (run: 1 when expectations fail).
  return exitCode !== 0 ? exitCode : Number(process.exitCode ?? 0);
}
