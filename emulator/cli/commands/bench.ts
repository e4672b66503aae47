/** `xenpv bench [--json]`: every benchmark figure with its ratio to the transport limit. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { runBench } from '../../../bench/main.js';

interface BenchArgs {
  json: boolean;
}

export const benchCommand: CommandModule<object, BenchArgs> = {
  command: 'bench',
  describe: 'Measure throughput on the threads engine, each figure as a ratio to the transport limit',
  builder: (y: Argv) =>
    y
      .option('json', {
        type: 'boolean',
        default: false,
        describe: 'Print [{name, value, unit, baseline, ratio}]',
      })
      .example('$0 bench', 'a table of figures')
      .example('$0 bench --json > bench.json', 'for comparing runs') as Argv<BenchArgs>,
  handler: async (argv: ArgumentsCamelCase<BenchArgs>) => {
    await runBench({ json: argv.json, log: (line) => console.log(line) });
  },
};

export default benchCommand;
