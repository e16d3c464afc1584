// @rlhf/artifacts: the artifact store (datasets, checkpoints, exported models) and the checkpoint layout on it.
export {
  ArtifactKeyError,
  type ArtifactInfo,
  type ArtifactFs,
  type ArtifactStore,
  type ArtifactStoreOptions,
  assertSafeKey,
  createArtifactStore,
  isStoreFull,
  isStoreReadOnly,
} from './store.js';
export {
  CHECKPOINT_STATE_FILE,
  type Checkpoint,
  type CheckpointFiles,
  type CheckpointStoreOptions,
  checkpointDir,
  checkpointStore,
  checkpointsDir,
  latestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  pruneCheckpoints,
  readCheckpointFile,
  removeIncompleteCheckpoints,
  type StageRef,
  saveCheckpoint,
} from './checkpoints.js';
export {
  readTar,
  TarError,
  type TarLimits,
  type TarStreamMember,
  tarSize,
  writeTar,
  writeTarStream,
} from './tar.js';
export { readTarStream, type TarStreamLimits } from './tar-stream.js';
