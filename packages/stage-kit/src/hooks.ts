// How a stage talks to whoever runs it (the worker, a test): abort signal, checkpoint store, metrics, samples.
import type { SampleRow } from '@rlhf/contracts';
import type { LoraSettings } from '@rlhf/model';
import type { Weights } from '@rlhf/runtime';
import type { CheckpointStore } from './checkpoints.js';
import type { ModelWeights } from './files.js';

/** One row of a sample table (PPO rollouts; SFT/RM may log decoded examples). */
export type { SampleRow };

export interface StageHooks {
  /**
   * Checked between fused session runs. Reason 'shutdown' (worker stopping) or 'pause' (run paused): save a
   * checkpoint, then throw StageAbortedError. Any other reason (a user's cancel): throw it without saving.
   */
  signal?: AbortSignal;
  /** Where checkpoints go and where a restarted stage resumes from. None: no checkpoints, no resume. */
  checkpoints?: CheckpointStore;
  onMetrics?(step: number, values: Record<string, number>): void | Promise<void>;
  onSamples?(step: number, rows: SampleRow[]): void | Promise<void>;
  onProgress?(step: number, total: number): void;
  log?(message: string): void;
}

/** The abort reason the worker uses when it shuts down (the stage checkpoints before it stops). */
export const SHUTDOWN = 'shutdown';
/** The abort reason when the run is paused: the stage checkpoints, then stops (it resumes from there). */
export const PAUSE = 'pause';
/** Reasons to save a checkpoint before stopping (any other reason, a cancel, stops without one). */
export const checkpointsOnAbort = (reason: unknown): boolean => reason === SHUTDOWN || reason === PAUSE;

/** The stage stopped because its signal was aborted. */
export class StageAbortedError extends Error {
  override name = 'StageAbortedError';
  constructor(
    readonly reason: unknown,
    /** Optimizer steps completed when it stopped. */
    readonly step: number,
    /** Whether a checkpoint at `step` was saved before stopping. */
    readonly checkpointed: boolean,
  ) {
    super(
      `stage aborted at step ${step} (${reason === SHUTDOWN || reason === PAUSE ? String(reason) : `cancelled: ${String(reason)}`})` +
        (checkpointed ? `, checkpoint saved at step ${step}` : ''),
    );
  }
}

/** A loss or metric became NaN/Inf: the stage stops; checkpoints saved before stay the latest good ones. */
export class NonFiniteError extends Error {
  override name = 'NonFiniteError';
  constructor(
    /** The metric (or 'params') that was not finite. */
    readonly metric: string,
    /** The optimizer step it belongs to (1-based: the step that produced it). */
    readonly step: number,
    readonly value: number,
    /** Step of the last checkpoint saved, null when none was. */
    readonly lastCheckpointStep: number | null,
  ) {
    super(
      `${metric} is ${value} at step ${step}; stopped. ` +
        (lastCheckpointStep === null
          ? 'No checkpoint was saved before it.'
          : `The last good checkpoint is step ${lastCheckpointStep}.`) +
        ' Lower the learning rate or check the data and initial weights.',
    );
  }
}

/** A body's bad intermediate value (e.g. a reward-model score); the driver turns it into a NonFiniteError. */
export class NonFiniteValue extends Error {
  override name = 'NonFiniteValue';
  constructor(
    readonly metric: string,
    readonly step: number,
    readonly value: number,
  ) {
    super(`${metric} is ${value} at step ${step}`);
  }
}

/** Throws NonFiniteValue for the first non-finite value among per-step series (values of steps first, first+1, ...). */
export function assertFinite(series: Record<string, ArrayLike<number>>, firstStep: number): void {
  const bad = firstNonFinite(series, firstStep);
  if (bad) throw new NonFiniteValue(bad.metric, bad.step, bad.value);
}

/** First non-finite value among per-step series ({ name: values of steps first, first+1, ... }), or null. */
export function firstNonFinite(
  series: Record<string, ArrayLike<number>>,
  firstStep: number,
): { metric: string; step: number; value: number } | null {
  let found: { metric: string; step: number; value: number } | null = null;
  for (const [metric, values] of Object.entries(series))
    for (let i = 0; i < values.length; i++)
      if (!Number.isFinite(values[i]) && (found === null || firstStep + i < found.step))
        found = { metric, step: firstStep + i, value: values[i] };
  return found;
}

/** Name of the first parameter with a NaN/Inf element, or null. */
export function nonFiniteParam(params: ReadonlyMap<string, ArrayLike<number>>): string | null {
  for (const [name, data] of params)
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return name;
  return null;
}

/** What every stage returns. */
export interface StageResult {
  /** Optimizer steps (or PPO iterations) completed. */
  step: number;
  model: ModelWeights;
  /** Final metrics (held-out loss, accuracy, ...), by metric name. */
  summary: Record<string, number>;
  /** Every resolved setting: the config with defaults, the model config, effective caps and sizes. */
  hyperparameters: Record<string, unknown>;
  /** With keepBest: `model` is the best evaluation's weights and these the last ones. */
  last?: ModelWeights;
  /** A LoRA stage's adapter; `model` (and `last`) are then merged models (base + s·BA). */
  adapter?: StageAdapter;
}

/** A trained LoRA adapter: its settings, tensors, PEFT files (adapter_config.json + adapter_model.safetensors). */
export interface StageAdapter {
  settings: LoraSettings;
  params: Weights;
  files: Record<string, Uint8Array>;
  /** The base it applies to, as adapter_config.json's base_model_name_or_path records it. */
  baseModel: string | null;
}
