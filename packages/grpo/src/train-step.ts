// The GRPO / RLOO / REINFORCE++ training graph: K = epochs × minibatches clipped-surrogate steps over the shared
// rollout tensors, fused in one graph run.
import type { GrpoConfig } from '@rlhf/contracts';
import { buildTrainStep, gather, maskedMean, type Tensor } from '@rlhf/graph';
import {
  type LoraSettings,
  loraParamShapes,
  paramShapes,
  type ResponseBatch,
  scoreResponses,
} from '@rlhf/model';
import { type ModelWeights, optimizerOf } from '@rlhf/stage-kit';
import { baseWeightInputs, loraPolicyParams } from './lora.js';
import { aggregateTokenLoss, clippedSurrogateTokens, k3KlTokens, withKlTokens } from './losses.js';

/** The metrics each fused step reports (means over the minibatch's tokens in the update). */
export const TRAIN_STEP_METRICS = ['kl', 'clipLow', 'clipHigh'] as const;

/**
 * Shared inputs: the rollout's prompt / response ids and masks, old and reference log-probs, per-token
 * `advantages` [rows, response] (GRPO / RLOO broadcast each sequence's advantage over its tokens) and
 * `loss_mask` [rows, response] (the response mask with the rows dynamic sampling dropped zeroed). The batch
 * input `rows` picks each step's minibatch. With `lora` only the adapter trains; the frozen base comes in as the
 * shared inputs `base.<name>` (no gradient, no AdamW state).
 */
export function grpoTrainStep(
  policy: ModelWeights['config'],
  config: GrpoConfig,
  rows: number,
  lora?: LoraSettings,
  /** Fused steps of one call (default the whole update, epochs × minibatches). */
  steps = config.epochs * config.minibatches,
) {
  const miniBatch = rows / config.minibatches;
  const perToken = (name: string) => ({ name, dtype: 'float32' as const, shape: ['rows', 'response'] });
  const ids = (name: string, length: string) => ({ name, dtype: 'int64' as const, shape: ['rows', length] });
  // REINFORCE++ puts the KL into the reward (advantages); GRPO and RLOO add it to the loss.
  const klInLoss = config.beta > 0 && config.advantage !== 'reinforce_pp';
  return buildTrainStep({
    name: 'grpo_train',
    params: lora ? loraParamShapes(policy, lora) : paramShapes(policy),
    batch: [{ name: 'rows', dtype: 'int64', shape: [miniBatch] }],
    shared: [
      ids('prompt_ids', 'prompt'),
      ids('prompt_mask', 'prompt'),
      ids('response_ids', 'response'),
      ids('response_mask', 'response'),
      perToken('old_logprobs'),
      perToken('ref_logprobs'),
      perToken('advantages'),
      perToken('loss_mask'),
      ...(lora ? baseWeightInputs(policy, lora) : []),
    ],
    steps,
    optimizer: optimizerOf(config),
    loss: (trained: Map<string, Tensor>, batch: Record<string, Tensor>, shared: Record<string, Tensor>) => {
      const params = lora ? loraPolicyParams(policy, lora, trained, shared) : trained;
      const pick = (name: string) => gather(shared[name], batch.rows, 0);
      const minibatch: ResponseBatch = {
        promptIds: pick('prompt_ids'),
        promptMask: pick('prompt_mask'),
        responseIds: pick('response_ids'),
        responseMask: pick('response_mask'),
      };
      const mask = pick('loss_mask');
      const { logprobs } = scoreResponses(params, policy, minibatch, { temperature: config.temperature });
      const surrogate = clippedSurrogateTokens(
        logprobs,
        pick('old_logprobs'),
        pick('advantages'),
        config.clipRange,
        config.clipRangeHigh,
      );
      const kl = k3KlTokens(logprobs, pick('ref_logprobs'));
      const perTokenLoss = klInLoss ? withKlTokens(surrogate.loss, kl, config.beta) : surrogate.loss;
      const loss = aggregateTokenLoss(perTokenLoss, mask, config.lossAggregation, {
        maxNewTokens: config.maxNewTokens,
        rows: miniBatch,
      });
      return {
        loss,
        metrics: {
          kl: maskedMean(kl, mask),
          clipLow: maskedMean(surrogate.clippedLow, mask),
          clipHigh: maskedMean(surrogate.clippedHigh, mask),
        },
      };
    },
  });
}
