/**
 * Where a command's lines go: `out` and `err`, and the colour level its output may use. Commands take
 * this (plus their own extras) so tests run them without a process; the yargs handlers pass the console.
 */

export interface CommandIo {
  out: (line: string) => void;
  err: (line: string) => void;
  colorLevel: 0 | 1 | 2 | 3;
}

/** chalk's level for this stdout: 0 when it is not a TTY or NO_COLOR is set. */
export function terminalColorLevel(stream: NodeJS.WriteStream = process.stdout): 0 | 1 | 2 | 3 {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return 0;
  if (!stream.isTTY) return 0;
  const depth = stream.getColorDepth?.() ?? 1;
  return depth >= 24 ? 3 : depth >= 8 ? 2 : 1;
}

/** stdout and stderr of this process, coloured as the terminal allows. */
export function consoleIo(): CommandIo {
  return { out: (l) => console.log(l), err: (l) => console.error(l), colorLevel: terminalColorLevel() };
}
