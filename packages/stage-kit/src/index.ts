// @rlhf/stage-kit: what every stage trainer shares — checkpoints, hooks, data helpers and the supervised loop.
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
  type LrSettings,
  lrScheduleOf,
  padRight,
  permutation,
  shuffled,
  splitTrainValidation,
  stackSteps,
  type TokenizedExample,
  tokenizeExample,
} from './data.js';
export {
  type FilesOptions,
  type ModelWeights,
  modelFiles,
  modelFromFiles,
  type OptimizerMoments,
  trainerFiles,
  trainerFromFiles,
} from './files.js';
export {
  firstNonFinite,
  NonFiniteError,
  nonFiniteParam,
  type SampleRow,
  SHUTDOWN,
  StageAbortedError,
  type StageHooks,
  type StageResult,
} from './hooks.js';
export {
  optimizerOf,
  runSupervisedLoop,
  type SupervisedConfig,
  type SupervisedLoop,
  type SupervisedResult,
  totalStepsOf,
} from './loop.js';
