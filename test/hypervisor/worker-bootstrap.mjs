// Node 20 cannot start a worker from a .ts file: register tsx, then import the entry named in workerData.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
