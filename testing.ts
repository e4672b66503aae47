/**
 * `xenpv/testing`: run scenarios from vitest (or any test runner) and assert on the result.
 *
 *   import { runScenario, scenario } from 'xenpv/testing';
 *   const r = await runScenario('scenarios/hello-grant.yaml', { engine: 'sim', seed: 1 });
 *   expect(r.failures).toEqual([]);
 */
export { MACHINE_DEFAULT_VERSIONS, type MachineConfig } from './emulator/machine/config.js';
export { buildMachine, type Machine } from './emulator/machine/machine.js';
export { ScenarioError, type ScenarioIssue } from './emulator/scenario/errors.js';
export { checkExpectations, type EndState, type ExpectationCheck } from './emulator/scenario/expect.js';
export { loadScenarioFile, parseScenario, type ScenarioInput, scenario } from './emulator/scenario/load.js';
export type { Scenario } from './emulator/scenario/model.js';
export { type RunScenarioOptions, type RunScenarioResult, runScenario } from './emulator/scenario/run.js';
export { type DemoSpec, loadRunnableScenario, parseRunnableScenario } from './emulator/scenario/run-demo.js';
export type { StepRecord } from './emulator/scenario/run-steps.js';
