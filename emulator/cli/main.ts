/**
 * The `xenpv` command line. Each subcommand lives in its own file under emulator/cli/commands/ and is
 * registered here. Exit codes: 0 success (expectations held), 1 expectations failed, 2 invalid input.
 */
import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { xenstoredCommand } from './commands/xenstored.js';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const parser = yargs(argv)
    .scriptName('xenpv')
    .usage('$0 <command> [options]\n\nAn emulator of the Xen paravirtual block path.')
    .version(packageVersion())
    .strict()
    .command(xenstoredCommand)
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
  return exitCode;
}
