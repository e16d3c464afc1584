// The two PPO graphs besides generation:
// - rollout scoring: one forward pass of each model over the sampled prompt + response batch (old log-probs of the
//   policy, log-probs of the frozen reference, values of the critic, score of the frozen reward model);
// - the training step: ppoEpochs × minibatches AdamW steps over policy + critic in one fused ONNX Loop.
// Both read the policy through model's scoreResponses, so the old log-probs of the ratio come from the same code
// as the log-probs being trained (TRL recomputes them the same way). With LoRA (PpoLora) the policy is an adapter on
// the reference's weights and the critic an adapter (and its own value head) on the reward model's: two weight
// copies instead of four, and only the adapters train.
import type { PpoConfig } from '@rlhf/contracts';
import {
  buildTrainStep,
  cast,
  gather,
  Graph,
  type ParamSpec,
  type Tensor,
  type TrainStep,
} from '@rlhf/graph';
import {
  adaptedParams,
  type GptConfig,
  type GptParams,
  gptHidden,
  type LoraSettings,
  loraParamShapes,
  type ParamShape,
  paramShapes,
  type ResponseBatch,
  responseValues,
  scalarHead,
  scoreResponses,
  sequenceOf,
} from '@rlhf/model';
import { optimizerOf } from '@rlhf/stage-kit';
import { adaptedFromShared, frozenBaseInputs } from './lora-base.js';
import { approxKlK3, clippedValueLoss, entropyBonus, ppoLoss, ppoPolicyLoss } from './losses.js';

/** Graph input names of the four models' parameters: `policy.h.0.ln_1.weight`, `critic.score.weight`, ... */
export type ModelRole = 'policy' | 'ref' | 'critic' | 'rm';
export const paramName = (role: ModelRole, name: string): string => `${role}.${name}`;

/** The parameter inputs of one model, named `${role}.${name}`, as the GptParams map model's graphs take. */
function roleParams(params: (name: string) => Tensor, config: GptConfig, role: ModelRole): GptParams {
  return new Map(paramShapes(config).map(({ name }) => [name, params(paramName(role, name))]));
}

function declareParams(g: Graph, config: GptConfig, role: ModelRole): GptParams {
  return declareShapes(g, paramShapes(config), role);
}

function declareShapes(g: Graph, shapes: readonly ParamShape[], role: ModelRole): GptParams {
  return new Map(shapes.map(({ name, shape }) => [name, g.input(paramName(role, name), 'float32', shape)]));
}

/** LoRA PPO: the policy's adapter (on the reference's weights) and the critic's (on the reward model's). */
export interface PpoLora {
  policy: LoraSettings;
  /** Trains the value head (`score`) in full beside the adapter: modulesToSave includes it. */
  critic: LoraSettings;
}

/** The tensors the train step updates for a role: the whole model's, or its adapter's. */
export function trainedShapes(models: PpoModels, role: 'policy' | 'critic', lora?: PpoLora): ParamShape[] {
  const config = role === 'policy' ? models.policy : models.critic;
  return lora ? loraParamShapes(config, lora[role]) : paramShapes(config);
}

/** Values [B, N] of the states before each response token: the critic's scalar head over the sequence. */
export function criticValues(params: GptParams, config: GptConfig, batch: ResponseBatch): Tensor {
  const { ids, mask } = sequenceOf(batch);
  const { hidden } = gptHidden(params, config, ids, { attentionMask: mask });
  return responseValues(scalarHead(params, hidden), batch.responseIds);
}

export interface PpoModels {
  /** Policy and frozen reference (same architecture). */
  policy: GptConfig;
  /** Critic: the reward model's architecture (it starts as a copy of the reward model). */
  critic: GptConfig;
  rewardModel: GptConfig;
}

/**
 * Rollout scoring graph. Inputs: `policy.*`, `ref.*`, `critic.*`, `rm.*` parameters; `prompt_ids`,
 * `prompt_mask` int64 [B, P] (left-padded), `response_ids`, `response_mask` int64 [B, N] (the generator's output).
 * Outputs: `logprobs`, `ref_logprobs`, `values` [B, N] and `scores` [B] (reward model at the last real token).
 * Log-probs use the sampling temperature, as generation and training do.
 */
export function buildRolloutScoringGraph(models: PpoModels, temperature: number, lora?: PpoLora): Uint8Array {
  const g = new Graph('ppo_rollout_score');
  const ref = declareParams(g, models.policy, 'ref');
  const rm = declareParams(g, models.rewardModel, 'rm');
  // LoRA: `policy.*` / `critic.*` are the adapters; the reference is the bare base they sit on (adapter off).
  const policy = lora
    ? adaptedParams(ref, declareShapes(g, trainedShapes(models, 'policy', lora), 'policy'), lora.policy)
    : declareParams(g, models.policy, 'policy');
  const critic = lora
    ? adaptedParams(rm, declareShapes(g, trainedShapes(models, 'critic', lora), 'critic'), lora.critic)
    : declareParams(g, models.critic, 'critic');
  const batch: ResponseBatch = {
    promptIds: g.input('prompt_ids', 'int64', ['batch', 'prompt']),
    promptMask: g.input('prompt_mask', 'int64', ['batch', 'prompt']),
    responseIds: g.input('response_ids', 'int64', ['batch', 'response']),
    responseMask: g.input('response_mask', 'int64', ['batch', 'response']),
  };
  g.output(scoreResponses(policy, models.policy, batch, { temperature }).logprobs, 'logprobs');
  g.output(scoreResponses(ref, models.policy, batch, { temperature }).logprobs, 'ref_logprobs');
  g.output(criticValues(critic, models.critic, batch), 'values');
  g.output(scoreResponses(rm, models.rewardModel, batch).scores!, 'scores');
  return g.toBytes();
}

/** Per-token rollout tensors the training step reads (shared inputs, fed once per rollout batch). */
export const ROLLOUT_INPUTS = {
  promptIds: 'prompt_ids',
  promptMask: 'prompt_mask',
  responseIds: 'response_ids',
  responseMask: 'response_mask',
  oldLogprobs: 'old_logprobs',
  oldValues: 'old_values',
  advantages: 'advantages',
  returns: 'returns',
} as const;

/** Per-step metrics of the training step (graph metric name -> PPO metric it feeds). */
export const TRAIN_METRICS = {
  policyLoss: 'policy_loss',
  valueLoss: 'value_loss',
  approxKl: 'approx_kl',
  clipFrac: 'clip_frac',
  entropy: 'entropy',
  valueClipFrac: 'value_clip_frac',
} as const;

/** Trained parameters: the policy's and the critic's, in one optimizer (TRL's PolicyAndValueWrapper). */
export function trainedParams(models: PpoModels, lora?: PpoLora): ParamSpec[] {
  return (['policy', 'critic'] as const).flatMap((role) =>
    trainedShapes(models, role, lora).map(({ name, shape }) => ({
      name: paramName(role, name),
      shape,
    })),
  );
}

export interface PpoTrainStepOptions {
  models: PpoModels;
  config: PpoConfig;
  /** Rows per minibatch: rolloutBatchSize / minibatches. */
  miniBatchSize: number;
  /** Train adapters only; the frozen bases are shared inputs `ref.*` (policy) and `rm.*` (critic). */
  lora?: PpoLora;
  /** Fused steps of one call (default the whole update, ppoEpochs × minibatches). */
  steps?: number;
}

/**
 * The PPO update of one rollout batch as one graph: K = ppoEpochs × minibatches AdamW steps (buildTrainStep). The
 * rollout tensors are shared inputs [B, ...] fed once; each step's batch input is the int64 [miniBatchSize] row
 * indices of its minibatch (the host shuffles them per epoch), gathered inside the graph.
 */
export function buildPpoTrainStep({
  models,
  config,
  miniBatchSize,
  lora,
  steps = config.ppoEpochs * config.minibatches,
}: PpoTrainStepOptions): TrainStep {
  const R = ROLLOUT_INPUTS;
  const perToken = (name: string) => ({ name, dtype: 'float32' as const, shape: ['batch', 'response'] });
  const ids = (name: string, length: string) => ({ name, dtype: 'int64' as const, shape: ['batch', length] });
  return buildTrainStep({
    name: 'ppo_train',
    params: trainedParams(models, lora),
    batch: [{ name: 'rows', dtype: 'int64', shape: [miniBatchSize] }],
    shared: [
      ids(R.promptIds, 'prompt'),
      ids(R.promptMask, 'prompt'),
      ids(R.responseIds, 'response'),
      ids(R.responseMask, 'response'),
      perToken(R.oldLogprobs),
      perToken(R.oldValues),
      perToken(R.advantages),
      perToken(R.returns),
      ...(lora
        ? [
            ...frozenBaseInputs(models.policy, lora.policy, paramName('ref', '')),
            ...frozenBaseInputs(models.critic, lora.critic, paramName('rm', '')),
          ]
        : []),
    ],
    steps,
    optimizer: optimizerOf(config),
    loss: (params, batch, shared) => {
      const rows = (name: string) => gather(shared[name], batch.rows, 0);
      const minibatch: ResponseBatch = {
        promptIds: rows(R.promptIds),
        promptMask: rows(R.promptMask),
        responseIds: rows(R.responseIds),
        responseMask: rows(R.responseMask),
      };
      const mask = cast(minibatch.responseMask, 'float32');
      const param = (name: string) => params.get(name)!;
      const adapter = (role: 'policy' | 'critic'): GptParams =>
        new Map(trainedShapes(models, role, lora).map(({ name }) => [name, param(paramName(role, name))]));
      const policyParams = lora
        ? adaptedFromShared(models.policy, lora.policy, adapter('policy'), shared, paramName('ref', ''))
        : roleParams(param, models.policy, 'policy');
      const criticParams = lora
        ? adaptedFromShared(models.critic, lora.critic, adapter('critic'), shared, paramName('rm', ''))
        : roleParams(param, models.critic, 'critic');
      const policy = scoreResponses(policyParams, models.policy, minibatch, {
        temperature: config.temperature,
      });
      const values = criticValues(criticParams, models.critic, minibatch);
      const pg = ppoPolicyLoss(
        policy.logprobs,
        rows(R.oldLogprobs),
        rows(R.advantages),
        mask,
        config.clipRange,
      );
      const vf = clippedValueLoss(values, rows(R.oldValues), rows(R.returns), mask, config.clipRangeValue);
      const entropy = entropyBonus(policy.entropy, mask);
      const M = TRAIN_METRICS;
      return {
        loss: ppoLoss(pg.loss, vf.loss, entropy, config.vfCoef, config.entCoef),
        metrics: {
          [M.policyLoss]: pg.loss,
          [M.valueLoss]: vf.loss,
          [M.approxKl]: approxKlK3(policy.logprobs, rows(R.oldLogprobs), mask),
          [M.clipFrac]: pg.clipFrac,
          [M.entropy]: entropy,
          [M.valueClipFrac]: vf.clipFrac,
        },
      };
    },
  });
}
