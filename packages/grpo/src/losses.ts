// Per-token loss terms of the critic-free stages and how they become one scalar, as graph functions, one per
// formula. Inputs are [rows, N] tensors of the response; `mask` (float, 1 = a real token of a row in the update)
// keeps padding and dropped rows out of every sum. PPO's ppoPolicyLoss is the token_mean of the same surrogate.
import {
  add,
  and,
  cast,
  clip,
  div,
  exp,
  greater,
  less,
  max,
  maskedMean,
  mul,
  neg,
  reduceSum,
  sub,
  type Tensor,
} from '@rlhf/graph';

export type LossAggregation = 'token_mean' | 'sequence_mean' | 'token_sum_norm';

export interface SurrogateTokens {
  /** [rows, N] max(−A·ρ, −A·clip(ρ, 1 − ε_low, 1 + ε_high)) at each token. */
  loss: Tensor;
  /** [rows, N] 1 where A < 0 and ρ < 1 − ε_low (the lower clip binds). */
  clippedLow: Tensor;
  /** [rows, N] 1 where A > 0 and ρ > 1 + ε_high (the upper clip binds). */
  clippedHigh: Tensor;
}

/**
 * The clipped surrogate per token (Schulman et al. 2017 eq. 7, as a loss) with DAPO's decoupled clip range
 * (clip-higher, Yu et al. 2025 eq. 8): ρ = exp(log π − log π_old), ε_high ≥ ε_low lets low-probability tokens
 * with positive advantage grow further before the clip stops them.
 */
export function clippedSurrogateTokens(
  logprobs: Tensor,
  oldLogprobs: Tensor,
  advantages: Tensor,
  clipLow: number,
  clipHigh: number,
): SurrogateTokens {
  const ratio = exp(sub(logprobs, oldLogprobs));
  const unclipped = mul(neg(advantages), ratio);
  const clipped = mul(neg(advantages), clip(ratio, 1 - clipLow, 1 + clipHigh));
  const dtype = logprobs.dtype;
  return {
    loss: max(unclipped, clipped),
    clippedLow: cast(and(less(ratio, 1 - clipLow), less(advantages, 0)), dtype),
    clippedHigh: cast(and(greater(ratio, 1 + clipHigh), greater(advantages, 0)), dtype),
  };
}

/**
 * k3 estimate of KL(π ‖ π_ref) at each sampled token (Schulman 2020; GRPO, Shao et al. 2024 eq. 4):
 * π_ref/π − log(π_ref/π) − 1, never negative.
 */
export function k3KlTokens(logprobs: Tensor, refLogprobs: Tensor): Tensor {
  const logRatio = sub(refLogprobs, logprobs);
  return sub(sub(exp(logRatio), 1), logRatio);
}

/**
 * One scalar from per-token losses [rows, N]:
 * - token_mean: Σ_{i,t} l·m / Σ_{i,t} m, every token of the minibatch weighs the same (DAPO, Yu et al. 2025 eq. 8);
 * - sequence_mean: (1/|rows|) Σ_i (Σ_t l·m / Σ_t m), each response weighs the same (GRPO, Shao et al. 2024
 *   eq. 3), over the rows with a token (dropped rows do not count);
 * - token_sum_norm: Σ_{i,t} l·m / (maxNewTokens × rows), a constant denominator (Dr. GRPO, Liu et al. 2025),
 *   so neither length nor the share of dropped rows rescales a token's gradient.
 */
export function aggregateTokenLoss(
  perToken: Tensor,
  mask: Tensor,
  mode: LossAggregation,
  budget: { maxNewTokens: number; rows: number },
): Tensor {
  if (mode === 'token_mean') return maskedMean(perToken, mask);
  if (mode === 'token_sum_norm')
    return div(reduceSum(mul(perToken, mask)), budget.maxNewTokens * budget.rows);
  const tokens = reduceSum(mask, [1]);
  const perSequence = div(reduceSum(mul(perToken, mask), [1]), max(tokens, 1));
  const sequences = reduceSum(cast(greater(tokens, 0), mask.dtype));
  return div(reduceSum(perSequence), max(sequences, 1));
}

/** The per-token objective of the critic-free stages: surrogate + β·k3 KL at each token (GRPO eq. 3). */
export function withKlTokens(surrogate: Tensor, kl: Tensor, beta: number): Tensor {
  return beta > 0 ? add(surrogate, mul(kl, beta)) : surrogate;
}
