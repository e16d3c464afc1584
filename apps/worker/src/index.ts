// The worker as a library: tests and custom entry points start workers in-process.
export { childArgs, parseDeviceList, parseWorkerArgs, type WorkerArgs } from './args.js';
export type { StageContext, StageRunner, StageRunners } from './context.js';
export { runners } from './stages.js';
export { type GroundTruth, groundTruthOf, type Tasks } from './tasks.js';
export { type Supervisor, type SupervisorOptions, superviseWorkers } from './supervisor.js';
export { type RunningWorker, startWorker, type WorkerOptions } from './worker.js';
export {
  type InferenceRequestLog,
  type InferenceStats,
  type InferenceWorkerOptions,
  type RunningInferenceWorker,
  startInferenceWorker,
} from './inference.js';
export {
  type EvaluationWorkerOptions,
  type RunningEvaluationWorker,
  runEvaluation,
  startEvaluationWorker,
} from './evaluations.js';
