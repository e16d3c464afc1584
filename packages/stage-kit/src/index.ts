// @rlhf/stage-kit: what every stage trainer shares — checkpoints, hooks, data helpers and the supervised loop.
export {
  type BudgetedTrainerOptions,
  createBudgetedTrainer,
  StepInterrupted,
  throwIfInterrupted,
} from './budget.js';
export {
  type CheckpointFiles,
  type CheckpointStore,
  checkFileNames,
  type DirectoryStoreOptions,
  directoryCheckpointStore,
} from './checkpoints.js';
export {
  batchOrder,
  effectiveMaxSeqLen,
  framedPromptText,
  type LrSettings,
  lrScheduleOf,
  padRight,
  permutation,
  promptText,
  promptTokens,
  shuffled,
  splitHeldOut,
  splitTrainValidation,
  stackSteps,
  type TokenizedExample,
  tokenizeConversation,
  tokenizeExample,
} from './data.js';
export { conversationTokens, type Ends, type Framing, framingOf, textEndsOf } from './framing.js';
export {
  maxResponses,
  type RankedBatch,
  type RankedExample,
  type RankingRow,
  rankedBatch,
  rankedPairs,
  rankedResponses,
  scoreRankings,
  tokenizeRanking,
} from './ranked.js';
export { type BatchReward, taskReward } from './reward.js';
export { type BudgetedGeneratorOptions, budgetedGenerator } from './generation.js';
export { type BudgetedRowsOptions, type RowSplitter, rowSplitter, joinRows } from './rows.js';
export { budgetedScorer } from './scoring.js';
export { type SampledGroups, type SampleGroupsRequest, sampleGroups } from './sampling.js';
export {
  type ResumePoint,
  runStage,
  type StageBody,
  type StageDefinition,
  type StageRun,
  type StepOutput,
} from './driver.js';
export {
  type FilesOptions,
  type ModelWeights,
  modelFiles,
  modelFromFiles,
  type OptimizerMoments,
  optimizerFiles,
  optimizerFromFiles,
  trainerFiles,
  trainerFromFiles,
  trainerJsonFile,
  trainerJsonFromFiles,
} from './files.js';
export {
  assertFinite,
  checkpointsOnAbort,
  firstNonFinite,
  NonFiniteError,
  NonFiniteValue,
  nonFiniteParam,
  PAUSE,
  type SampleRow,
  SHUTDOWN,
  StageAbortedError,
  type StageAdapter,
  type StageHooks,
  type StageResult,
} from './hooks.js';
export {
  frozenLoraShapes,
  loraBaseInput,
  loraLoopAdapter,
  loraSharedInputs,
  loraSummary,
  loraTrainParams,
  mergedModel,
  stageAdapter,
} from './lora.js';
export {
  microBatchFeeds,
  microBatchSize,
  optimizerOf,
  runSupervisedLoop,
  type SupervisedConfig,
  type SupervisedLoop,
  type SupervisedResult,
  totalStepsOf,
} from './loop.js';
