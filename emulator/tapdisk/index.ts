/** tapdisk's public surface: the program, its options and the control protocol. */
export * from './message.js';
export * from './options.js';
export { registerTapdisk, TAPDISK2_PATH, TapdiskServer, tapdiskProgram } from './server.js';
