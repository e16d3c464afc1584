// The host side of one PPO iteration: the train step's inputs, the iteration's metrics, the guard on its values
// and the views between the models' weights and the train step's role-prefixed ones.
import { type PpoConfig, PpoMetrics } from '@rlhf/contracts';
import { type GptConfig, leftPad, paramShapes, type Tokenizer } from '@rlhf/model';
import type { RewardNormalisation } from '@rlhf/reward-model';
import { float32, type HostTensor, int64, type Weights } from '@rlhf/runtime';
import { NonFiniteValue, permutation } from '@rlhf/stage-kit';
import { type ModelRole, paramName, ROLLOUT_INPUTS, TRAIN_METRICS } from './graphs.js';
import { type Rollout, samplerLogprobDiff } from './rollout.js';
import { explainedVariance, type PpoTargets, sequenceEntropy } from './targets.js';

/** int64 [K, 1, miniBatchSize]: each PPO epoch visits every rollout row once, in a fresh seeded order. */
export function minibatchRows(B: number, miniBatchSize: number, config: PpoConfig, it: number): HostTensor {
  const rows: number[] = [];
  for (let epoch = 0; epoch < config.ppoEpochs; epoch++)
    rows.push(...permutation(B, config.seed, `minibatches-${it}-${epoch}`));
  return int64([config.ppoEpochs * config.minibatches, 1, miniBatchSize], rows);
}

/** The rollout tensors the training graph gathers its minibatches from. */
export function trainInputs(
  rollout: Rollout,
  targets: PpoTargets,
  padId: number,
): Record<string, HostTensor> {
  const [B, N] = rollout.shape;
  const prompt = leftPad(rollout.prompts, padId);
  const R = ROLLOUT_INPUTS;
  return {
    [R.promptIds]: prompt.ids,
    [R.promptMask]: prompt.mask,
    [R.responseIds]: int64([B, N], rollout.responses.flat()),
    [R.responseMask]: int64([B, N], rollout.mask),
    [R.oldLogprobs]: float32([B, N], rollout.logprobs),
    [R.oldValues]: float32([B, N], rollout.values),
    [R.advantages]: float32([B, N], targets.advantages),
    [R.returns]: float32([B, N], targets.returns),
  };
}

/**
 * The iteration's metrics (names from @rlhf/contracts PpoMetrics, as TRL logs them). Rollout statistics are means
 * over the batch's responses; policy/*, val/* and loss/* are means over the K fused updates. policy/approxkl uses the
 * k3 estimator; rollout/sampler_logprob_diff is the max |sampler − scoring| log-prob over response tokens;
 * timing/* are seconds; perf/tokens_per_sec = generated response tokens per second of the whole iteration.
 */
export function iterationMetrics(
  rollout: Rollout,
  targets: PpoTargets,
  report: { loss: number[]; gradNorm: number[]; metrics: Record<string, number[]> },
  beta: number,
  seconds: { train: number; step: number },
): Record<string, number> {
  const [B] = rollout.shape;
  const mean = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, x) => a + x, 0) / xs.length;
  const train = (name: string) => mean(report.metrics[name]);
  const M = PpoMetrics;
  const T = TRAIN_METRICS;
  const scores = mean(targets.scores);
  const nonScore = mean(targets.nonScoreRewards);
  const tokens = rollout.mask.reduce((a, x) => a + x, 0);
  return {
    [M.kl]: mean(targets.klSums),
    [M.entropy]: sequenceEntropy(rollout.logprobs, rollout.mask, B),
    [M.nonScoreReward]: nonScore,
    [M.rlhfReward]: scores + nonScore,
    [M.scores]: scores,
    [M.approxKl]: train(T.approxKl),
    [M.clipFrac]: train(T.clipFrac),
    [M.policyEntropy]: train(T.entropy),
    [M.policyLoss]: train(T.policyLoss),
    [M.valueLoss]: train(T.valueLoss),
    [M.valLoss]: train(T.valueLoss),
    [M.valClipFrac]: train(T.valueClipFrac),
    [M.explainedVar]: explainedVariance(rollout.values, targets.returns, rollout.mask),
    [M.responseLenMean]: tokens / B,
    [M.eosRate]: rollout.finished.filter(Boolean).length / B,
    [M.samplerLogprobDiff]: samplerLogprobDiff(rollout),
    [M.klCoef]: beta,
    [M.timeGenerate]: rollout.timing.generate,
    [M.timeScore]: rollout.timing.score,
    [M.timeTrain]: seconds.train,
    [M.timeStep]: seconds.step,
    [M.tokensPerSec]: tokens / seconds.step,
    'train/grad_norm': mean(report.gradNorm),
  };
}

/** The response as text: tokens under the mask, specials (EOS) left out. */
export function responseText(
  tokenizer: Tokenizer,
  tokens: number[],
  mask: Uint8Array,
  row: number,
  width: number,
): string {
  return tokenizer.decode(
    tokens.filter((_, t) => mask[row * width + t]),
    { skipSpecialTokens: true },
  );
}

export function normalise(scores: Float32Array, norm: RewardNormalisation | null): Float32Array {
  return norm ? scores.map((s) => (s - norm.mean) / norm.std) : scores;
}

/** Every value of an iteration's series is finite, else NonFiniteValue naming the series. */
export function checkFinite(series: Record<string, ArrayLike<number>>, iteration: number): void {
  for (const [metric, values] of Object.entries(series)) {
    const bad = Array.from(values).find((x) => !Number.isFinite(x));
    if (bad !== undefined) throw new NonFiniteValue(metric, iteration, bad);
  }
}

/** A model's weights under the train step's names: `${role}.${name}` (same arrays, no copies). */
export function withRole(weights: Weights, role: 'policy' | 'critic'): Weights {
  return new Map([...weights].map(([name, data]) => [paramName(role, name), data]));
}

/** One role's weights out of the train step's (views, no copies): the model's, or the tensors `shapes` names. */
export function ofRole(
  weights: Weights,
  config: GptConfig,
  role: ModelRole,
  shapes: readonly { name: string }[] = paramShapes(config),
): Weights {
  return new Map(shapes.map(({ name }) => [name, weights.get(paramName(role, name))!]));
}
