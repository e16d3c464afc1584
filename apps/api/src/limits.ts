// Limits derived from the model a run trains: a stage whose one optimizer step would need more memory than a
// worker has is refused at submission (400 naming the field) instead of failing, or swapping, on a worker.
import type { FieldError, ModelPreset, RunSpec } from '@rlhf/contracts';
import { type GptConfig, presetConfig } from '@rlhf/model';

/** Memory one optimizer step may use on a worker by default (the API's `maxStepBytes` option). */
export const DEFAULT_MAX_STEP_BYTES = 16 * 2 ** 30;

/**
 * Bytes of the largest per-step tensors: the logits over the vocabulary of every token of the step, with their
 * log-softmax and gradient (3 float32 copies). Weights and activations of the trunk are smaller for every model
 * a run can name; this is the term that grows with batch × sequence × vocabulary.
 */
export function stepBytes(tokensPerStep: number, vocabSize: number): number {
  return tokensPerStep * vocabSize * 4 * 3;
}

// One micro-batch is in memory at a time: a step's batch over its gradientAccumulation.
const microBatch = (config: { batchSize: number; gradientAccumulation: number }) =>
  config.batchSize / config.gradientAccumulation;

/** The field that sets a stage's rows per step and its tokens per step (sequence length capped at the context). */
function stepShape(stage: RunSpec['stages'][number], context: number): { field: string; tokens: number } {
  switch (stage.kind) {
    case 'sft':
      return {
        field: 'batchSize',
        tokens: microBatch(stage.config) * Math.min(stage.config.maxSeqLen, context),
      };
    case 'reward_model':
    case 'dpo':
    case 'pro':
      // A ranking brings at least two responses, each a whole sequence.
      return {
        field: 'batchSize',
        tokens: 2 * microBatch(stage.config) * Math.min(stage.config.maxSeqLen, context),
      };
    case 'raft':
      return {
        field: 'batchSize',
        tokens:
          stage.config.batchSize * Math.min(stage.config.maxPromptLen + stage.config.maxNewTokens, context),
      };
    case 'grpo': {
      const rows = (stage.config.promptsPerIteration * stage.config.groupSize) / stage.config.minibatches;
      return {
        field: 'minibatches',
        tokens: rows * Math.min(stage.config.maxPromptLen + stage.config.maxNewTokens, context),
      };
    }
    case 'eval':
      // Generation only: no optimizer step, no logits gradient.
      return { field: 'maxNewTokens', tokens: 0 };
    case 'ppo': {
      const rows = stage.config.rolloutBatchSize / stage.config.minibatches;
      return {
        field: 'minibatches',
        tokens: rows * Math.min(stage.config.maxPromptLen + stage.config.maxNewTokens, context),
      };
    }
  }
}

/** The shape facts the limit needs: a preset's, or a registered model's config. */
export type ModelShape = Pick<GptConfig, 'maxPositions' | 'vocabSize'>;

/** Stages of a run on `model` (a preset or a registered model's shape) whose one step would exceed `maxStepBytes`. */
export function stepMemoryErrors(
  spec: RunSpec,
  shape: ModelPreset | ModelShape,
  maxStepBytes = DEFAULT_MAX_STEP_BYTES,
): FieldError[] {
  const model = typeof shape === 'string' ? presetConfig(shape) : shape;
  return spec.stages.flatMap((stage, i) => {
    const { field, tokens } = stepShape(stage, model.maxPositions);
    const bytes = stepBytes(tokens, model.vocabSize);
    if (bytes <= maxStepBytes) return [];
    const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
    return [
      {
        path: `/stages/${i}/config/${field}`,
        message: `one step of ${tokens} tokens over the ${model.vocabSize}-token vocabulary needs about ${gib(bytes)}, more than a worker's ${gib(maxStepBytes)}: lower batchSize or maxSeqLen (or raise gradientAccumulation / minibatches)`,
      },
    ];
  });
}
