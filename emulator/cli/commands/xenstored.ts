/**
 * `xenpv xenstored --socket PATH [--verbose]`: run the xenstore daemon on its own, serving dom0 clients
 * on a Unix socket (point Xen's xenstore-* tools at it with XENSTORED_PATH=PATH).
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { XsClient } from '../../xenstored/client.js';
import { XenstoreDaemon } from '../../xenstored/daemon.js';
import { createDom0Layout } from '../../xenstored/layout.js';
import { listenXenstoreSocket } from '../../xenstored/socket-server.js';

interface XenstoredArgs {
  socket: string;
  verbose: boolean;
}

export const xenstoredCommand: CommandModule<object, XenstoredArgs> = {
  command: 'xenstored',
  describe: 'Run the xenstore daemon on a Unix socket (use Xen tools with XENSTORED_PATH)',
  builder: (y: Argv) =>
    y
      .option('socket', {
        type: 'string',
        demandOption: true,
        describe: 'Path of the Unix socket to listen on',
      })
      .option('verbose', { type: 'boolean', default: false, describe: 'Log connections and daemon messages' })
      .example(
        '$0 xenstored --socket /tmp/xs.sock',
        'then: XENSTORED_PATH=/tmp/xs.sock xenstore-ls',
      ) as Argv<XenstoredArgs>,
  handler: async (argv: ArgumentsCamelCase<XenstoredArgs>) => {
    const log = argv.verbose ? (line: string) => console.error(`xenstored: ${line}`) : undefined;
    const daemon = new XenstoreDaemon({ logger: log });
    const boot = daemon.connect({ domid: 0, send: () => true, label: 'boot' });
    createDom0Layout(new XsClient(boot));
    daemon.disconnect(boot);
    const server = await listenXenstoreSocket(daemon, argv.socket, { log });
    console.log(`xenstored listening on ${server.path}`);
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        log?.(`${signal}: shutting down`);
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        server.close().then(resolve);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  },
};

export default xenstoredCommand;
