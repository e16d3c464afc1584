/** Float batches are row-major [B, T] (or [B]) arrays. */
export type Floats = Float32Array | Float64Array;
/** 1 marks a real response token (EOS included), 0 a prompt or padding position. */
export type Mask = Uint8Array | Float32Array | Float64Array;

export interface KlPenaltyInput {
  /** [B] reward-model score of each response. */
  scores: Floats;
  /** [B, T] log π(a_t | s_t) of the taken tokens under the policy being trained. */
  logprobs: Floats;
  /** [B, T] the same under the frozen reference (SFT) policy. */
  refLogprobs: Floats;
  /** [B, T] response mask; each row needs at least one response token. */
  mask: Mask;
  /** KL coefficient β (kl_ctl/value). */
  beta: number;
  /** [B] 1 where the response hit maxNewTokens without generating EOS. */
  truncated?: Mask;
  /** Subtracted from the score of a truncated response (TRL's missing_eos_penalty); null/undefined = none. */
  missingEosPenalty?: number | null;
}

export interface KlPenaltyRewards {
  /** [B, T] per-token rewards: −β·kl everywhere on the response, plus the score on its last token. */
  rewards: Float32Array;
  /** [B, T] per-token k1 KL estimate log π − log π_ref; 0 off the mask. */
  kl: Float32Array;
  /** [B] Σ_t kl of each response (the KL of the sample table, mean = objective/kl). */
  klSums: Float32Array;
  /** [B] scores after the missing-EOS penalty (mean = objective/scores). */
  scores: Float32Array;
  /** [B] −β·Σ_t kl (mean = objective/non_score_reward). */
  nonScoreRewards: Float32Array;
}

/**
 * Per-token RLHF reward r_t = −β·(log π(a_t) − log π_ref(a_t)) + [t = last response token]·score
 * (Ziegler et al. 2019 eq. 2; InstructGPT eq. 2; TRL PPOTrainer). The score sits on the last real
 * response token — the EOS when one was generated. A response cut off without EOS keeps its score on
 * its last token, minus `missingEosPenalty` (TRL subtracts; it does not replace the score), so
 * rambling past the budget costs reward instead of being silently scored like a finished answer.
 */
export function klPenaltyRewards(input: KlPenaltyInput): KlPenaltyRewards {
  const { scores, logprobs, refLogprobs, mask, beta, truncated } = input;
  const batch = scores.length;
  const seqLen = logprobs.length / batch;
  if (
    !Number.isInteger(seqLen) ||
    refLogprobs.length !== logprobs.length ||
    mask.length !== logprobs.length
  ) {
    throw new RangeError(
      `klPenaltyRewards: expected [${batch}, T] logprobs, refLogprobs and mask, got lengths ${logprobs.length}, ${refLogprobs.length}, ${mask.length}`,
    );
  }
  if (truncated && truncated.length !== batch) {
    throw new RangeError(`klPenaltyRewards: truncated has ${truncated.length} entries, expected ${batch}`);
  }
  const penalty = input.missingEosPenalty ?? 0;
  const rewards = new Float32Array(logprobs.length);
  const kl = new Float32Array(logprobs.length);
  const klSums = new Float32Array(batch);
  const finalScores = new Float32Array(batch);
  const nonScoreRewards = new Float32Array(batch);
  for (let b = 0; b < batch; b++) {
    let last = -1;
    let sum = 0;
    for (let t = 0; t < seqLen; t++) {
      const i = b * seqLen + t;
      if (!mask[i]) continue;
      const k = logprobs[i] - refLogprobs[i]; // k1 estimator of KL(π ‖ π_ref) at this token
      kl[i] = k;
      rewards[i] = -beta * k;
      sum += k;
      last = i;
    }
    if (last < 0) throw new RangeError(`klPenaltyRewards: row ${b} has no response tokens`);
    const score = scores[b] - (truncated?.[b] ? penalty : 0);
    rewards[last] += score;
    klSums[b] = sum;
    finalScores[b] = score;
    nonScoreRewards[b] = -beta * sum;
  }
  return { rewards, kl, klSums, scores: finalScores, nonScoreRewards };
}
