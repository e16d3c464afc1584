// PPO loss terms as graph functions, one per formula. Inputs are per-token [B, N] tensors of the response; `mask`
// (the dtype of the values, 1 = real response token) keeps prompt and padding positions out of every mean.
import { add, cast, clip, exp, greater, max, maskedMean, mul, neg, sub, type Tensor } from '@rlhf/graph';

export interface PolicyLoss {
  /** Scalar clipped-surrogate loss (to minimise). */
  loss: Tensor;
  /** Share of response tokens where the clipped term was the larger loss (policy/clipfrac). */
  clipFrac: Tensor;
}

/**
 * PPO clipped surrogate (Schulman et al. 2017, eq. 7), as a loss: mean over tokens of
 * max(−A·r, −A·clip(r, 1 − ε, 1 + ε_high)) with r = exp(log π − log π_old); ε_high defaults to ε
 * (DAPO's clip-higher, Yu et al. 2025, raises it).
 */
export function ppoPolicyLoss(
  logprobs: Tensor,
  oldLogprobs: Tensor,
  advantages: Tensor,
  mask: Tensor,
  clipRange: number,
  clipRangeHigh = clipRange,
): PolicyLoss {
  const ratio = exp(sub(logprobs, oldLogprobs));
  const unclipped = mul(neg(advantages), ratio);
  const clipped = mul(neg(advantages), clip(ratio, 1 - clipRange, 1 + clipRangeHigh));
  return {
    loss: maskedMean(max(unclipped, clipped), mask),
    clipFrac: maskedMean(cast(greater(clipped, unclipped), mask.dtype), mask),
  };
}

export interface ValueLoss {
  /** Scalar clipped value loss. */
  loss: Tensor;
  /** Share of response tokens where the clipped error was the larger one (val/clipfrac). */
  clipFrac: Tensor;
}

/**
 * Clipped value loss (TRL PPOTrainer; Schulman et al. 2017 baselines): 0.5·mean max((V − R)², (V_clip − R)²) with
 * V_clip = V_old + clip(V − V_old, −ε_v, ε_v), so one update cannot move a value far from the rollout's.
 */
export function clippedValueLoss(
  values: Tensor,
  oldValues: Tensor,
  returns: Tensor,
  mask: Tensor,
  clipRangeValue: number,
): ValueLoss {
  const clippedValues = add(oldValues, clip(sub(values, oldValues), -clipRangeValue, clipRangeValue));
  const unclipped = square(sub(values, returns));
  const clipped = square(sub(clippedValues, returns));
  return {
    loss: mul(maskedMean(max(unclipped, clipped), mask), 0.5),
    clipFrac: maskedMean(cast(greater(clipped, unclipped), mask.dtype), mask),
  };
}

/** Entropy bonus (Mnih et al. 2016; Schulman et al. 2017 eq. 9): mean policy entropy over response tokens. */
export function entropyBonus(entropy: Tensor, mask: Tensor): Tensor {
  return maskedMean(entropy, mask);
}

/**
 * Approximate KL(π_old ‖ π) with the k3 estimator (Schulman 2020, "Approximating KL Divergence"): mean of
 * (r − 1) − log r, r = exp(log π − log π_old); unbiased and never negative (policy/approxkl).
 */
export function approxKlK3(logprobs: Tensor, oldLogprobs: Tensor, mask: Tensor): Tensor {
  const logRatio = sub(logprobs, oldLogprobs);
  return maskedMean(sub(sub(exp(logRatio), 1), logRatio), mask);
}

/**
 * The PPO objective as one loss (Schulman et al. 2017 eq. 9, signs for minimisation):
 * L = L_clip + c_v·L_value − c_ent·entropy.
 */
export function ppoLoss(
  policy: Tensor,
  value: Tensor,
  entropy: Tensor,
  vfCoef: number,
  entCoef: number,
): Tensor {
  const withValue = add(policy, mul(value, vfCoef));
  return entCoef === 0 ? withValue : sub(withValue, mul(entropy, entCoef));
}

const square = (x: Tensor): Tensor => mul(x, x);
