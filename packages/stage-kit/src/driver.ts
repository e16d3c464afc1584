// The stage driver: every stage kind is a step body run by this one loop, which owns resume (and the check that a
// checkpoint belongs to the stage), the abort/shutdown checkpoint, checkpoint cadence, the NaN/Inf guard and
// metric, sample and progress reporting. A body only advances its own state and says what to save.
import { StepInterrupted } from './budget.js';
import type { CheckpointFiles } from './checkpoints.js';
import { trainerJsonFile, trainerJsonFromFiles } from './files.js';
import {
  checkpointsOnAbort,
  NonFiniteError,
  NonFiniteValue,
  nonFiniteParam,
  type SampleRow,
  StageAbortedError,
  type StageHooks,
} from './hooks.js';

/** Where a resumed stage starts: the latest checkpoint's step, files and trainer.json (less stage and step). */
export interface ResumePoint {
  step: number;
  files: CheckpointFiles;
  state: Record<string, unknown>;
}

/** What one call of a body's step did. */
export interface StepOutput {
  /** Steps completed by this call (>= 1): fused optimizer steps, or one PPO iteration. */
  steps: number;
  /** Metrics of the call's last metrics.length steps, in order (one per step, or only the last step's). */
  metrics: Record<string, number>[];
  /** A sample table for the last step of the call. */
  samples?: SampleRow[];
}

export interface StageBody<Result> {
  /** Metrics of the starting weights, reported at step 0 of a fresh (not resumed) stage. */
  initialMetrics?(): Promise<Record<string, number>>;
  /** Advances from `step` (steps completed so far). Throw NonFiniteValue for a bad intermediate value. */
  step(step: number): Promise<StepOutput>;
  /** Current trainable weights, checked for NaN/Inf after each step and before each checkpoint. */
  weights(): ReadonlyMap<string, ArrayLike<number>>;
  /** Files of a checkpoint of the current state, and what trainer.json should hold besides stage and step. */
  checkpoint(): Promise<{ files: CheckpointFiles; state: Record<string, unknown> }>;
  /** The stage's result after its last step (also when it resumed at the end). */
  finish(): Promise<Result>;
  /** Frees sessions; always called. */
  release(): Promise<void>;
}

export interface StageDefinition<Result> {
  /** Stage kind, recorded in trainer.json and checked when resuming. */
  stage: string;
  totalSteps: number;
  checkpointEvery: number;
  hooks?: StageHooks;
  /** Builds the body from the resume point, or from the starting weights when there is none. */
  start(resume: ResumePoint | null): Promise<StageBody<Result>>;
}

export interface StageRun<Result> {
  result: Result;
  /** Steps completed (= totalSteps). */
  step: number;
  /** The step the stage resumed from, null when it started fresh. */
  resumedFrom: number | null;
}

/** Runs (or resumes) a stage to its last step. */
export async function runStage<Result>(definition: StageDefinition<Result>): Promise<StageRun<Result>> {
  const { stage, totalSteps, hooks = {} } = definition;
  const saved = await hooks.checkpoints?.latest();
  let resume: ResumePoint | null = null;
  if (saved) {
    const { stage: savedStage, step: _step, ...state } = trainerJsonFromFiles(saved.files);
    if (savedStage !== stage)
      throw new Error(
        `checkpoint at step ${saved.step} belongs to stage '${String(savedStage)}', not '${stage}'`,
      );
    resume = { step: saved.step, files: saved.files, state };
    hooks.log?.(`${stage}: resuming from the checkpoint at step ${saved.step} of ${totalSteps}`);
  }
  let step = resume?.step ?? 0;
  let lastCheckpoint = resume?.step ?? null;
  const body = await definition.start(resume);

  // metrics[i] belongs to step firstStep + i.
  const guard = (metrics: Record<string, number>[], firstStep: number) => {
    metrics.forEach((values, i) => {
      for (const [metric, value] of Object.entries(values))
        if (!Number.isFinite(value)) throw new NonFiniteError(metric, firstStep + i, value, lastCheckpoint);
    });
    const badParam = nonFiniteParam(body.weights());
    if (badParam) throw new NonFiniteError(`parameter ${badParam}`, step, Number.NaN, lastCheckpoint);
  };
  const saveCheckpoint = async () => {
    if (!hooks.checkpoints || lastCheckpoint === step) return;
    guard([], step);
    const { files, state } = await body.checkpoint();
    await hooks.checkpoints.save(step, {
      ...files,
      ...trainerJsonFile({ stage, step, totalSteps, ...state }),
    });
    lastCheckpoint = step;
  };

  try {
    try {
      if (resume === null && body.initialMetrics) {
        const values = await body.initialMetrics();
        guard([values], 0);
        await hooks.onMetrics?.(0, values);
      }
      while (step < totalSteps) {
        const signal = hooks.signal;
        if (signal?.aborted) {
          const keep = checkpointsOnAbort(signal.reason);
          if (keep) await saveCheckpoint();
          throw new StageAbortedError(signal.reason, step, keep && lastCheckpoint === step);
        }
        const first = step;
        const out = await body.step(first);
        if (!(out.steps >= 1 && out.metrics.length <= out.steps))
          throw new Error(
            `${stage}: a step reported ${out.metrics.length} metric sets for ${out.steps} steps`,
          );
        step = first + out.steps;
        const metricsFrom = step - out.metrics.length + 1;
        guard(out.metrics, metricsFrom);
        for (const [i, values] of out.metrics.entries()) await hooks.onMetrics?.(metricsFrom + i, values);
        if (out.samples) await hooks.onSamples?.(step, out.samples);
        hooks.onProgress?.(step, totalSteps);
        const crossed =
          Math.floor(step / definition.checkpointEvery) > Math.floor(first / definition.checkpointEvery);
        if (crossed || step === totalSteps) await saveCheckpoint();
      }
    } catch (error) {
      // Aborted inside a step: a checkpoint now is the step's start only while the step changed nothing yet.
      if (error instanceof StepInterrupted) {
        const keep = checkpointsOnAbort(error.reason);
        if (keep && error.clean) await saveCheckpoint();
        throw new StageAbortedError(error.reason, step, keep && lastCheckpoint === step);
      }
      // A body names a bad value; the driver knows which checkpoint is the last good one.
      if (error instanceof NonFiniteValue)
        throw new NonFiniteError(error.metric, error.step, error.value, lastCheckpoint);
      throw error;
    }
    return { result: await body.finish(), step, resumedFrom: resume?.step ?? null };
  } finally {
    await body.release();
  }
}
