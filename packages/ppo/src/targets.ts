// From a scored rollout to what the PPO update trains on: per-token rewards (score − β·KL), GAE advantages
// (whitened) and value targets, plus the rollout's statistics for the metrics.
import type { PpoConfig } from '@rlhf/contracts';
import { gae, arrayMaskedMean, arrayMaskedVar, whiten } from './advantages.js';
import { type KlPenaltyRewards, klPenaltyRewards } from './rewards.js';
import type { Rollout } from './rollout.js';

export interface PpoTargets extends KlPenaltyRewards {
  /** [B, N] whitened GAE advantages (0 off the mask). */
  advantages: Float32Array;
  /** [B, N] value targets R_t = A_t + V_t before whitening (0 off the mask). */
  returns: Float32Array;
}

type TargetSettings = Pick<PpoConfig, 'gamma' | 'lam' | 'missingEosPenalty' | 'whitenRewards'>;

/**
 * Rewards, advantages and returns of a rollout (TRL PPOTrainer order): klPenaltyRewards with the current β,
 * optionally whitened rewards (mean kept), GAE over the response, then advantages whitened over the batch.
 * `scores` are the reward model's scores after normalisation.
 */
export function ppoTargets(
  rollout: Rollout,
  scores: Float32Array,
  beta: number,
  settings: TargetSettings,
): PpoTargets {
  const { mask, shape } = rollout;
  const penalised = klPenaltyRewards({
    scores,
    logprobs: rollout.logprobs,
    refLogprobs: rollout.refLogprobs,
    mask,
    beta,
    truncated: Uint8Array.from(rollout.finished, (f) => (f ? 0 : 1)),
    missingEosPenalty: settings.missingEosPenalty,
  });
  const rewards = settings.whitenRewards ? whiten(penalised.rewards, mask, false) : penalised.rewards;
  const { advantages, returns } = gae({
    rewards,
    values: rollout.values,
    mask,
    shape,
    gamma: settings.gamma,
    lam: settings.lam,
  });
  return { ...penalised, rewards, advantages: whiten(advantages, mask), returns };
}

/**
 * 1 − Var(R − V) / Var(R) over response tokens: how much of the returns the critic explains (val/explained_var).
 * Constant returns leave it undefined; it is reported as 0 then (metrics stay finite numbers).
 */
export function explainedVariance(values: Float32Array, returns: Float32Array, mask: Uint8Array): number {
  const residual = returns.map((r, i) => r - values[i]);
  const total = arrayMaskedVar(returns, mask, false);
  return total === 0 ? 0 : 1 - arrayMaskedVar(residual, mask, false) / total;
}

/** Mean over rows of Σ_t −log π(a_t): the sampled responses' entropy estimate (TRL objective/entropy). */
export function sequenceEntropy(logprobs: Float32Array, mask: Uint8Array, batch: number): number {
  const perRow = new Float32Array(batch);
  const width = logprobs.length / batch;
  for (let i = 0; i < logprobs.length; i++) if (mask[i]) perRow[Math.floor(i / width)] -= logprobs[i];
  return arrayMaskedMean(perRow);
}
