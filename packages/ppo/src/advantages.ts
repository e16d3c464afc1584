import type { Floats, Mask } from './rewards.js';

export interface GaeInput {
  /** [B, T] per-token rewards (klPenaltyRewards). */
  rewards: Floats;
  /** [B, T] value estimates V(s_t) from the rollout. */
  values: Floats;
  /** [B, T] response mask: positions with 0 are skipped as if absent. */
  mask: Mask;
  /** [B, T] */
  shape: readonly [number, number];
  /** discount γ (1 in RLHF) */
  gamma: number;
  /** GAE λ (0.95 by default) */
  lam: number;
}

/**
 * Generalized advantage estimation (Schulman et al. 2016, eq. 16):
 * δ_t = r_t + γ·V_{t+1} − V_t, A_t = δ_t + γλ·A_{t+1}, returns R_t = A_t + V_t (the value target).
 * The episode is the response: after its last token V = 0 (no bootstrap). Masked-out positions
 * contribute nothing and get A = R = 0.
 */
export function gae(input: GaeInput): { advantages: Float32Array; returns: Float32Array } {
  const { rewards, values, mask, gamma, lam } = input;
  const [batch, seqLen] = input.shape;
  const n = batch * seqLen;
  if (rewards.length !== n || values.length !== n || mask.length !== n) {
    throw new RangeError(
      `gae: expected [${batch}, ${seqLen}] rewards, values and mask, got lengths ${rewards.length}, ${values.length}, ${mask.length}`,
    );
  }
  const advantages = new Float32Array(n);
  const returns = new Float32Array(n);
  for (let b = 0; b < batch; b++) {
    let nextValue = 0;
    let nextAdvantage = 0;
    for (let t = seqLen - 1; t >= 0; t--) {
      const i = b * seqLen + t;
      if (!mask[i]) continue;
      const delta = rewards[i] + gamma * nextValue - values[i];
      nextAdvantage = delta + gamma * lam * nextAdvantage;
      nextValue = values[i];
      advantages[i] = nextAdvantage;
      returns[i] = nextAdvantage + values[i];
    }
  }
  return { advantages, returns };
}

/** Mean of a host array over the positions where mask is 1 (all positions without a mask); graph maskedMean is its in-graph twin. */
export function arrayMaskedMean(x: Floats, mask?: Mask): number {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < x.length; i++) {
    if (mask && !mask[i]) continue;
    sum += x[i];
    count++;
  }
  if (count === 0) throw new RangeError('arrayMaskedMean: no unmasked positions');
  return sum / count;
}

/** Variance of x over the mask; unbiased (n − 1) like TRL's masked_var. */
export function arrayMaskedVar(x: Floats, mask?: Mask, unbiased = true): number {
  const mean = arrayMaskedMean(x, mask);
  let squares = 0;
  let count = 0;
  for (let i = 0; i < x.length; i++) {
    if (mask && !mask[i]) continue;
    squares += (x[i] - mean) ** 2;
    count++;
  }
  if (unbiased && count < 2)
    throw new RangeError('arrayMaskedVar: an unbiased variance needs at least 2 positions');
  return squares / (unbiased ? count - 1 : count);
}

const WHITEN_EPS = 1e-8;

/**
 * (x − mean) / sqrt(var + 1e-8) over the masked positions (TRL masked_whiten; advantages are whitened
 * per batch, PPO "advantage normalisation"). With shiftMean false the mean is added back (used for
 * rewards, whose sign carries meaning). Masked-out positions are 0.
 */
export function whiten(x: Floats, mask?: Mask, shiftMean = true): Float32Array {
  if (mask && mask.length !== x.length) {
    throw new RangeError(`whiten: mask has ${mask.length} entries, x has ${x.length}`);
  }
  const mean = arrayMaskedMean(x, mask);
  const scale = 1 / Math.sqrt(arrayMaskedVar(x, mask) + WHITEN_EPS);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    if (mask && !mask[i]) continue;
    out[i] = (x[i] - mean) * scale + (shiftMean ? 0 : mean);
  }
  return out;
}
