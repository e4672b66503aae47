/** `xenpv bench [--json]`: every benchmark figure with its ratio to the transport limit. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { runBench } from '../../../bench/main.js';

interface BenchArgs {
  json: boolean;
  only?: string;
}

export const benchCommand: CommandModule<object, BenchArgs> = {
  command: 'bench',
  describe: 'Measure throughput (threads and sim engines), each figure as a ratio to the transport limit',
  builder: (y: Argv) =>
    y
      .option('json', {
        type: 'boolean',
        default: false,
        describe: 'Print [{name, value, unit, baseline, ratio}]',
      })
      .option('only', {
        type: 'string',
        describe: 'Only the figures whose name contains this text (and their baselines)',
      })
      .example('$0 bench', 'a table of figures')
      .example('$0 bench --only lifecycles', 'the sim lifecycle figures')
      .example('$0 bench --json > bench.json', 'for comparing runs') as Argv<BenchArgs>,
  handler: async (argv: ArgumentsCamelCase<BenchArgs>) => {
    try {
      await runBench({
        json: argv.json,
        ...(argv.only !== undefined ? { only: argv.only } : {}),
        log: (line) => console.log(line),
      });
    } catch (e) {
      console.error(`xenpv bench: ${(e as Error).message}`);
      process.exitCode = 2;
    }
  },
};

export default benchCommand;
