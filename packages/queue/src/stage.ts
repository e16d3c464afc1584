import type { ArtifactInfo, ArtifactStore } from '@rlhf/artifacts';
import type { Logger } from '@rlhf/config';
import type { StageJobData, StageJobResult, StageKind } from '@rlhf/contracts';
import type { Runtime } from '@rlhf/runtime';
import type { Checkpoint, CheckpointFiles } from './checkpoints.js';
import type { SampleRow } from './events.js';

// The one interface between the worker and the stage trainers (sft, reward-model, ppo). A trainer is a plain
// async function; the worker gives it a device runtime, the artifact store, an AbortSignal and a reporter.

/** Why the signal aborted: the run was cancelled, or the worker is shutting down (checkpoint, then stop). */
export type StopReason = 'cancel' | 'shutdown';

export interface StageReporter {
  /** Throttled by the worker (job progress + a stage.progress event at most every ~2 s; never the hot path). */
  progress(step: number, totalSteps: number | null): Promise<void>;
  /** One metrics event per call: call it per logging step with TRL names (@rlhf/contracts *Metrics). */
  metrics(step: number, values: Record<string, number>): Promise<void>;
  /** Sample rollouts table (PPO). */
  samples(step: number, rows: readonly SampleRow[]): Promise<void>;
  /** An artifact the runner wrote itself (saveCheckpoint and saveFinal report theirs). */
  artifact(kind: string, info: ArtifactInfo, step?: number): Promise<void>;
}

export interface StageContext {
  /** 'cpu' or 'cuda:N' sessions, run on a worker thread; the worker owns it (do not close it). */
  runtime: Runtime;
  artifacts: ArtifactStore;
  /**
   * Aborted with a StopReason. Check it between fused ONNX calls (an ORT run cannot be interrupted). On
   * 'shutdown' save a checkpoint first; then throw (StageStoppedError via throwIfStopped).
   */
  signal: AbortSignal;
  /** The newest complete checkpoint of this stage (a re-taken job), or null: start from step 0. */
  resume: Checkpoint | null;
  report: StageReporter;
  /** Writes checkpoints/step-{step}/ (files + state.json), reports it, keeps the newest few. */
  saveCheckpoint(step: number, files: CheckpointFiles, state?: Record<string, unknown>): Promise<Checkpoint>;
  /** Reads a file of a checkpoint (usually ctx.resume). */
  readCheckpointFile(checkpoint: Checkpoint, name: string): Promise<Uint8Array>;
  /** Writes the finished model under final/ and reports it; returns the key for StageJobResult.modelKey. */
  saveFinal(files: CheckpointFiles): Promise<string>;
  /** 1 for the first try of the job. */
  attempt: number;
  workerId: string;
  logger: Logger;
}

/**
 * A stage trainer. `job.inputs` is already resolved (models of the earlier stages of the run). Returns where
 * the final model is. Any throw fails the stage, unless the signal was aborted (cancelled / re-queued).
 */
export type StageRunner = (job: StageJobData, ctx: StageContext) => Promise<StageJobResult>;
export type StageRunners = Partial<Record<StageKind, StageRunner>>;

/** What a runner throws after its signal aborted. */
export class StageStoppedError extends Error {
  override name = 'StageStoppedError';
  constructor(readonly reason: StopReason) {
    super(reason === 'cancel' ? 'stage cancelled' : 'stage stopped for worker shutdown');
  }
}

/** The reason the signal aborted, or null while it has not. */
export function stopReason(signal: AbortSignal): StopReason | null {
  if (!signal.aborted) return null;
  return signal.reason === 'shutdown' ? 'shutdown' : 'cancel';
}

/** Throws StageStoppedError once the signal aborted; call it between fused calls. */
export function throwIfStopped(signal: AbortSignal): void {
  const reason = stopReason(signal);
  if (reason) throw new StageStoppedError(reason);
}
