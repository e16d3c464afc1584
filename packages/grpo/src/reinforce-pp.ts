// REINFORCE++ (Hu et al. 2025, arXiv 2501.03262): critic-free per-token advantages — the sequence reward with a
// per-token KL penalty to the reference, summed to the end of the response, normalised over the whole batch.
import { klPenaltyRewards, type Mask } from '@rlhf/ppo';

/**
 * Discounted reward-to-go G_t = Σ_{i ≥ t} γ^{i−t} r_i over each row's real tokens (Williams 1992, REINFORCE;
 * REINFORCE++ uses γ = 1). Rewards and mask are [rows, width] row-major; masked positions are skipped and get 0.
 */
export function rewardToGo(
  rewards: ArrayLike<number>,
  mask: ArrayLike<number>,
  width: number,
  gamma = 1,
): Float32Array {
  if (rewards.length !== mask.length || width < 1 || rewards.length % width !== 0)
    throw new RangeError(
      `rewardToGo: ${rewards.length} rewards and ${mask.length} mask entries are not [rows, ${width}]`,
    );
  const out = new Float32Array(rewards.length);
  for (let start = 0; start < rewards.length; start += width) {
    let sum = 0;
    for (let t = width - 1; t >= 0; t--) {
      const i = start + t;
      if (!mask[i]) continue;
      sum = rewards[i] + gamma * sum;
      out[i] = sum;
    }
  }
  return out;
}

/**
 * Global advantage normalisation (REINFORCE++ eq. A_norm = (A − mean_batch A) / std_batch A): the mean and the
 * (unbiased) std over every real token of the batch, not per group; ε = 1e-8 under the root as TRL's whiten.
 * Masked positions are 0. With fewer than two tokens there is no spread: the values are only centred.
 */
export function batchNormalise(x: ArrayLike<number>, mask: ArrayLike<number>): Float32Array {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < x.length; i++)
    if (mask[i]) {
      sum += x[i];
      count++;
    }
  const out = new Float32Array(x.length);
  if (count === 0) return out;
  const mean = sum / count;
  let squares = 0;
  for (let i = 0; i < x.length; i++) if (mask[i]) squares += (x[i] - mean) ** 2;
  const scale = count > 1 ? 1 / Math.sqrt(squares / (count - 1) + 1e-8) : 0;
  for (let i = 0; i < x.length; i++) if (mask[i]) out[i] = (x[i] - mean) * scale;
  return out;
}

export interface ReinforcePpInput {
  /** [rows] sequence reward of each response. */
  scores: ArrayLike<number>;
  /** [rows, width] log π_old of the sampled tokens (the policy that sampled them). */
  logprobs: Float32Array;
  /** [rows, width] log π_ref of the same tokens. */
  refLogprobs: Float32Array;
  /** [rows, width] 1 = a real response token of a row in the update (dropped rows are all 0). */
  mask: Mask;
  /** Weight of the per-token KL penalty in the reward. */
  beta: number;
}

/**
 * REINFORCE++ advantages (Hu et al. 2025, arXiv 2501.03262): token rewards r_t = [t = last]·r(x, y) − β·KL_t with
 * KL_t = log π_old(a_t) − log π_ref(a_t) (k1), so A_t = r(x, y) − β·Σ_{i ≥ t} KL_i (the γ = 1 return), then
 * normalised over all tokens of the batch. Rows whose mask is all 0 (left out of the update) get 0 and do not
 * enter the batch statistics. [rows, width] row-major.
 */
export function reinforcePpAdvantages(input: ReinforcePpInput): Float32Array {
  const { scores, logprobs, refLogprobs, mask, beta } = input;
  const rows = scores.length;
  const width = logprobs.length / Math.max(rows, 1);
  const kept: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < width; t++)
      if (mask[r * width + t]) {
        kept.push(r);
        break;
      }
  }
  if (kept.length === 0) return new Float32Array(rows * width);
  // klPenaltyRewards needs a token in every row: score the kept rows only, then put them back in place.
  const pick = (x: ArrayLike<number>) => {
    const out = new Float32Array(kept.length * width);
    kept.forEach((r, k) => {
      for (let t = 0; t < width; t++) out[k * width + t] = x[r * width + t];
    });
    return out;
  };
  const keptMask = pick(mask);
  const { rewards } = klPenaltyRewards({
    scores: Float32Array.from(kept, (r) => scores[r]),
    logprobs: pick(logprobs),
    refLogprobs: pick(refLogprobs),
    mask: keptMask,
    beta,
  });
  const normalised = batchNormalise(rewardToGo(rewards, keptMask, width), keptMask);
  const out = new Float32Array(rows * width);
  kept.forEach((r, k) => {
    out.set(normalised.subarray(k * width, (k + 1) * width), r * width);
  });
  return out;
}
