// @rlhf/queue: the protocol between apps/api and apps/worker, in Redis: flows, events, cancel, heartbeats, keys.
// The contract, in words: README.md next to this folder's package.json.
export { isCancelRequested, requestCancel, subscribeCancel } from './cancel.js';
export { isPauseRequested, PARKED_DELAY_MS, requestPause, resumeRunJobs, subscribePause } from './pause.js';
export { createRedis } from './connection.js';
export {
  ackEvents,
  createEventGroup,
  EVENTS_MAXLEN,
  publishEvent,
  type ReadEventsOptions,
  readEvents,
  type SampleRow,
  type StageEvent,
  type StageEventType,
  type StreamEvent,
  tailEvents,
} from './events.js';
export {
  addRunFlow,
  createFlowProducer,
  createStageQueue,
  getStageStates,
  type RunFlow,
  removeRunJobs,
  resolveInputs,
  type StageJob,
  type StageJobState,
  type StageQueue,
  upstreamResults,
} from './flows.js';
export {
  HEARTBEAT_INTERVAL_MS,
  HEARTBEAT_TTL_MS,
  listWorkers,
  removeHeartbeat,
  type WorkerHeartbeat,
  writeHeartbeat,
} from './heartbeat.js';
export {
  CANCEL_CHANNEL,
  DEFAULT_PREFIX,
  deletePrefix,
  EVENTS_STREAM,
  HYPERPARAMETERS_FILE,
  keys,
  redisKeys,
  STAGE_QUEUE,
} from './keys.js';
export {
  type ChatTurn,
  cancelInference,
  enqueueInference,
  INFERENCE_GROUP,
  INFERENCE_STREAM_MAXLEN,
  type InferenceReply,
  type InferenceRequest,
  inferenceKeys,
  publishInferenceReply,
  type TokenLogprob,
} from './inference.js';
export {
  addEvaluationJob,
  createEvaluationQueue,
  EVALUATION_QUEUE,
  type EvaluationJob,
  type EvaluationJobResult,
  type EvaluationQueue,
} from './evaluations.js';
