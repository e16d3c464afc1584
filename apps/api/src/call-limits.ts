// Limits on one session call derived from the model and the machine (issue 18 item 7): a run whose fused call
// would carry more tokens than a worker's feeds hold, or take longer than the call budget on a fast worker
// (@rlhf/config WORKER_FLOPS_PER_SECOND), is refused at submission with a 400 naming the field to lower.
// Cancel and pause are checked between calls, so these bound how long a worker can ignore them.
import { MAX_CALL_TOKENS, WORKER_FLOPS_PER_SECOND } from '@rlhf/config';
import { CALL_BUDGET_SECONDS, type FieldError, type ModelPreset, type RunSpec } from '@rlhf/contracts';
import { countParams, type GptConfig, presetConfig } from '@rlhf/model';

/** FLOPs per token of a training step (forward + backward) and of generation (forward only), per parameter. */
const TRAIN_FLOPS_PER_PARAM = 6;
const FORWARD_FLOPS_PER_PARAM = 2;

/** One call a stage makes that cannot be split: its tokens, FLOPs per token per parameter and the field that sizes it. */
interface Call {
  field: string;
  what: string;
  tokens: number;
  flopsPerParam: number;
}

export interface CallLimits {
  budgetSeconds: number;
  flopsPerSecond: number;
  maxTokens: number;
}

export const DEFAULT_CALL_LIMITS: CallLimits = {
  budgetSeconds: CALL_BUDGET_SECONDS,
  flopsPerSecond: WORKER_FLOPS_PER_SECOND,
  maxTokens: MAX_CALL_TOKENS,
};

// The calls of a stage: a supervised stage's first fused call (stepsPerCall steps; the loop shrinks later ones),
// a sampling stage's generation of the iteration's rows and one update step (stage-kit splits the update there).
function callsOf(stage: RunSpec['stages'][number], context: number): Call[] {
  const seq = (n: number) => Math.min(n, context);
  switch (stage.kind) {
    case 'sft':
    case 'reward_model':
    case 'dpo':
    case 'pro': {
      const { batchSize, maxSeqLen, stepsPerCall } = stage.config;
      const perStep = (stage.kind === 'sft' ? 1 : 2) * batchSize * seq(maxSeqLen);
      return [
        {
          field: stepsPerCall > 1 ? 'stepsPerCall' : 'batchSize',
          what: `one fused call (${stepsPerCall} steps of batchSize ${batchSize})`,
          tokens: perStep * stepsPerCall,
          flopsPerParam: TRAIN_FLOPS_PER_PARAM,
        },
      ];
    }
    case 'raft': {
      const c = stage.config;
      return samplingCalls(seq(c.maxPromptLen + c.maxNewTokens), {
        field: 'promptsPerIteration',
        what: `the generation of ${c.promptsPerIteration} × ${c.samplesPerPrompt} responses`,
        rows: c.promptsPerIteration * c.samplesPerPrompt,
        stepField: 'batchSize',
        stepRows: c.batchSize,
      });
    }
    case 'grpo': {
      const c = stage.config;
      const rows = c.promptsPerIteration * c.groupSize;
      return samplingCalls(seq(c.maxPromptLen + c.maxNewTokens), {
        field: 'promptsPerIteration',
        what: `the generation of ${c.promptsPerIteration} × ${c.groupSize} responses`,
        rows,
        stepField: 'minibatches',
        stepRows: rows / c.minibatches,
      });
    }
    case 'ppo': {
      const c = stage.config;
      // Rollout: policy, reference, critic and reward model forwards; update: policy and critic trained.
      return samplingCalls(seq(c.maxPromptLen + c.maxNewTokens), {
        field: 'rolloutBatchSize',
        what: `the rollout of ${c.rolloutBatchSize} responses`,
        rows: c.rolloutBatchSize,
        stepField: 'minibatches',
        stepRows: c.rolloutBatchSize / c.minibatches,
        forwards: 4,
        trained: 2,
      });
    }
    case 'eval':
      return [];
  }
}

/** A sampling stage's iteration: the sampling call and one update step, with how many models each runs. */
interface Sampling {
  field: string;
  what: string;
  rows: number;
  stepField: string;
  stepRows: number;
  /** Models run forward over the sampled rows (1: the policy). */
  forwards?: number;
  /** Models trained in an update step (1: the policy). */
  trained?: number;
}

// Both calls carry rows of one length (prompt + response): the generation of all rows, an update step of a few.
function samplingCalls(length: number, s: Sampling): Call[] {
  return [
    {
      field: s.field,
      what: s.what,
      tokens: s.rows * length,
      flopsPerParam: (s.forwards ?? 1) * FORWARD_FLOPS_PER_PARAM,
    },
    {
      field: s.stepField,
      what: `one update step (${s.stepRows} rows)`,
      tokens: s.stepRows * length,
      flopsPerParam: (s.trained ?? 1) * TRAIN_FLOPS_PER_PARAM,
    },
  ];
}

/** Stages of a run on `model` (a preset or a registered model's config) with a call past the limits. */
export function callLimitErrors(
  spec: RunSpec,
  model: ModelPreset | GptConfig,
  limits: CallLimits = DEFAULT_CALL_LIMITS,
): FieldError[] {
  const config = typeof model === 'string' ? presetConfig(model) : model;
  const params = parameterCount(config);
  return spec.stages.flatMap((stage, i) => {
    for (const call of callsOf(stage, config.maxPositions)) {
      const path = `/stages/${i}/config/${call.field}`;
      if (call.tokens > limits.maxTokens)
        return [
          {
            path,
            message: `${call.what} carries ${call.tokens} tokens, more than a worker's ${limits.maxTokens} per call: lower ${call.field}`,
          },
        ];
      const seconds = (call.tokens * call.flopsPerParam * params) / limits.flopsPerSecond;
      if (Number.isFinite(seconds) && seconds > limits.budgetSeconds)
        return [
          {
            path,
            message: `${call.what} needs about ${seconds.toFixed(0)} s on a fast worker (${call.tokens} tokens × ${params} parameters), past the ${limits.budgetSeconds} s a call may take before a cancel is seen: lower ${call.field}`,
          },
        ];
    }
    return [];
  });
}

// A stored config the shape code cannot read leaves only the token cap (NaN skips the time estimate).
function parameterCount(config: GptConfig): number {
  try {
    return countParams(config);
  } catch {
    return Number.NaN;
  }
}
