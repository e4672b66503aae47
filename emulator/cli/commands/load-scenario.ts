/**
 * Loading a scenario file for a command: the loader's `file:line:column` errors go to stderr and the command
 * exits 2, the same way for every command that takes a scenario file.
 */
import { ScenarioError } from '../../scenario/errors.js';
import { loadRunnableScenario } from '../../scenario/run-demo.js';

export type LoadedScenario = ReturnType<typeof loadRunnableScenario>;

/** The loaded scenario, or undefined after printing why it is invalid. Other errors propagate. */
export function loadScenarioOrReport(file: string, err: (line: string) => void): LoadedScenario | undefined {
  try {
    return loadRunnableScenario(file);
  } catch (e) {
    if (e instanceof ScenarioError) {
      for (const line of e.format().split('\n')) err(line);
      return undefined;
    }
    throw e;
  }
}
