// What trainPpo takes and returns, and what it resolves before its first iteration: the hyperparameters it
// records, the critic's starting weights and the prompt tokens.
import type { PpoConfig, PpoConfigInput, PromptRow } from '@rlhf/contracts';
import type { GptConfig, LoraSettings, Tokenizer } from '@rlhf/model';
import { type RewardNormalisation, rewardNormalisation } from '@rlhf/reward-model';
import type { Runtime } from '@rlhf/runtime';
import type { ModelWeights, StageAdapter, StageHooks } from '@rlhf/stage-kit';

export interface TrainPpoOptions {
  /** A full config or any part of one (@rlhf/contracts defaults fill the rest). */
  config: PpoConfig | PpoConfigInput;
  /** The SFT policy: the initial policy and the frozen reference. */
  policy: ModelWeights;
  /** The frozen reward model (config.scalarHead); the critic starts as a copy of it. */
  rewardModel: ModelWeights;
  /**
   * score' = (score − mean) / std on every reward-model score, folded into the critic's initial head too.
   * Default: the one the reward model was saved with (@rlhf/reward-model metadata); null = raw scores.
   */
  rewardNormalisation?: RewardNormalisation | null;
  prompts: readonly PromptRow[];
  runtime: Runtime;
  hooks?: StageHooks;
  /** Programmatic ground truth; only feeds objective/ground_truth (reward hacking shows as scores ↑, it ↓). */
  groundTruth?: (prompt: string, response: string) => number;
  /** Tokenizer of policy and reward model (default ByteTokenizer). */
  tokenizer?: Tokenizer;
  /** With config.lora: the policy base's name or location, recorded as the adapter's base_model_name_or_path. */
  baseModel?: string;
}

export interface PpoResult {
  /** Iterations completed. */
  step: number;
  /** The trained policy. */
  model: ModelWeights;
  /** The trained critic (value model). With config.lora both are merged (W + s·BA). */
  critic: ModelWeights;
  /** With config.lora: the policy's adapter (settings, tensors, PEFT files). */
  adapter?: StageAdapter;
  /** Metrics of the last iteration. */
  summary: Record<string, number>;
  /** Every resolved setting: the config, the model configs, the effective caps. */
  hyperparameters: PpoHyperparameters;
}

export interface PpoHyperparameters {
  config: PpoConfig;
  policyModel: GptConfig;
  rewardModel: GptConfig;
  criticModel: GptConfig;
  criticInit: 'reward_model';
  rewardNormalisation: RewardNormalisation | null;
  /** Prompt tokens kept (bos included): maxPromptLen capped by the contexts minus maxNewTokens. */
  effectiveMaxPromptLen: number;
  miniBatchSize: number;
  /** AdamW steps per iteration, all in one session run: ppoEpochs × minibatches. */
  stepsPerIteration: number;
  approxKl: 'k3';
  /** With config.lora: each adapter's settings and trainable size. */
  lora?: Record<'policy' | 'critic', LoraSettings & { trainableParams: number }>;
}

/**
 * The critic starts as the reward model (TRL: value model = reward model checkpoint; OpenRLHF the same): it already
 * reads the score off a response, which is the return of its last token. With a normalisation, the head is rescaled
 * so the critic's initial values are on the normalised reward scale: w/std, (b − mean)/std.
 */
export function criticFromRewardModel(
  rewardModel: ModelWeights,
  normalisation?: RewardNormalisation,
): ModelWeights {
  const params = new Map([...rewardModel.params].map(([name, data]) => [name, Float32Array.from(data)]));
  if (normalisation) {
    const { mean, std } = normalisation;
    params.set(
      'score.weight',
      params.get('score.weight')!.map((w) => w / std),
    );
    params.set(
      'score.bias',
      params.get('score.bias')!.map((b) => (b - mean) / std),
    );
  }
  return { config: rewardModel.config, params };
}

export function resolveHyperparameters(
  options: TrainPpoOptions,
  config: PpoConfig,
  tokenizer: Tokenizer,
): PpoHyperparameters {
  const { policy, rewardModel } = options;
  if (options.prompts.length === 0) throw new Error('trainPpo: no prompts');
  if (!rewardModel.config.scalarHead)
    throw new Error('trainPpo: the reward model needs a scalar head (config.scalarHead)');
  if (policy.config.scalarHead)
    throw new Error('trainPpo: the policy must be a language model without a scalar head');
  for (const [what, c] of [
    ['policy', policy.config],
    ['reward model', rewardModel.config],
  ] as const)
    if (c.vocabSize !== tokenizer.vocabSize)
      throw new Error(
        `trainPpo: the ${what} has vocabSize ${c.vocabSize}, the tokenizer ${tokenizer.vocabSize}`,
      );
  if (config.rolloutBatchSize % config.minibatches !== 0)
    throw new Error(
      `trainPpo: minibatches (${config.minibatches}) must divide rolloutBatchSize (${config.rolloutBatchSize})`,
    );
  const context = Math.min(policy.config.maxPositions, rewardModel.config.maxPositions);
  const effectiveMaxPromptLen = Math.min(config.maxPromptLen, context - config.maxNewTokens);
  if (effectiveMaxPromptLen < 1)
    throw new Error(
      `trainPpo: maxNewTokens ${config.maxNewTokens} leaves no room for a prompt in a context of ${context}`,
    );
  const norm =
    options.rewardNormalisation === undefined
      ? rewardNormalisation(rewardModel)
      : options.rewardNormalisation;
  if (norm && !(Number.isFinite(norm.mean) && norm.std > 0))
    throw new Error(
      `trainPpo: reward normalisation needs a finite mean and std > 0, got ${JSON.stringify(norm)}`,
    );
  return {
    config,
    policyModel: policy.config,
    rewardModel: rewardModel.config,
    criticModel: rewardModel.config,
    criticInit: 'reward_model',
    rewardNormalisation: norm ?? null,
    effectiveMaxPromptLen,
    miniBatchSize: config.rolloutBatchSize / config.minibatches,
    stepsPerIteration: config.ppoEpochs * config.minibatches,
    approxKl: 'k3',
  };
}
