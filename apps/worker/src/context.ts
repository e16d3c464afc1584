// What the worker hands a stage runner: the stage-kit hooks wired to this job (abort signal, checkpoints in the
// artifact store, metrics/samples/progress as events on the Redis stream) plus the device runtime and the store.
import type { ArtifactStore, CheckpointFiles } from '@rlhf/artifacts';
import type { Logger } from '@rlhf/config';
import type { StageJobData, StageJobResult, StageKind } from '@rlhf/contracts';
import type { Runtime } from '@rlhf/runtime';
import type { StageHooks } from '@rlhf/stage-kit';
import type { Tasks } from './tasks.js';

export interface StageContext {
  /** 'cpu' or 'cuda:N' sessions on a worker thread; the worker owns it (do not close it). */
  runtime: Runtime;
  /** Datasets and earlier stages' models (job.inputs keys). */
  artifacts: ArtifactStore;
  /**
   * The one stage contract (@rlhf/stage-kit): the signal aborts with SHUTDOWN (worker stopping: checkpoint, then
   * StageAbortedError) or a cancel; checkpoints resume a re-taken job; reports become stream events.
   */
  hooks: StageHooks;
  /** Programmatic rewards this worker knows by name (a PPO config's groundTruth). */
  tasks: Tasks;
  /** Writes the finished model under final/ and reports it; returns the key for StageJobResult.modelKey. */
  saveFinal(files: CheckpointFiles): Promise<string>;
  logger: Logger;
}

/** A stage kind's runner: job.inputs already resolved (models of the earlier stages of the run). */
export type StageRunner = (job: StageJobData, ctx: StageContext) => Promise<StageJobResult>;
export type StageRunners = Partial<Record<StageKind, StageRunner>>;
