// The worker as a library: tests and custom entry points start workers in-process.
export { childArgs, parseDeviceList, parseWorkerArgs, type WorkerArgs } from './args.js';
export { runners } from './runners.js';
export { type Supervisor, type SupervisorOptions, superviseWorkers } from './supervisor.js';
export { type RunningWorker, startWorker, type WorkerOptions } from './worker.js';
