// One iteration's rollout, laid out for the train graph: rewards → which rows train → per-token advantages, and
// the host-side statistics the metrics and sample tables report.
import type { GrpoConfig } from '@rlhf/contracts';
import {
  flatGroups,
  grpoAdvantages,
  meanGroupStd,
  perTokenAdvantages,
  rlooAdvantages,
  zeroSpreadGroups,
} from './advantages.js';
import { reinforcePpAdvantages } from './reinforce-pp.js';

export interface RolloutInput {
  config: GrpoConfig;
  /** [rows] reward of each response; rows come in groups of G answers to one prompt. */
  scores: readonly number[];
  /** [rows][N] 1 = a real response token. */
  responseMask: readonly (readonly number[])[];
  /** [rows][N] log π_old and log π_ref of the sampled tokens (equal when β = 0). */
  old: readonly (readonly number[])[];
  ref: readonly (readonly number[])[];
}

export interface RolloutTensors {
  /** [rows × N] per-token advantages. */
  advantages: Float32Array;
  /** [rows × N] the response mask with dropped rows zeroed. */
  lossMask: Float32Array;
  /** Rows in the update (all of them unless dynamic sampling dropped flat groups). */
  keptRows: number;
  /** Share of groups left out of the update. */
  droppedGroups: number;
  rewardStd: number;
  zeroStdGroups: number;
}

/**
 * DAPO dynamic sampling (Yu et al. 2025 eq. 8's constraint 0 < |{correct}| < G, for any reward: the G rewards not
 * all equal), done by masking: a flat group's rows leave the loss and REINFORCE++'s batch statistics. Nothing is
 * resampled, so an iteration trains on fewer rows.
 */
export function rolloutTensors(input: RolloutInput): RolloutTensors {
  const { config, scores, responseMask } = input;
  const G = config.groupSize;
  const rows = scores.length;
  const width = responseMask[0]?.length ?? 0;
  const flat = flatGroups(scores, G);
  const dropped = flat.map((f) => config.dynamicSampling && f);
  const lossMask = new Float32Array(rows * width);
  let keptRows = 0;
  for (let r = 0; r < rows; r++) {
    if (dropped[Math.floor(r / G)]) continue;
    keptRows++;
    for (let t = 0; t < width; t++) lossMask[r * width + t] = responseMask[r][t];
  }
  let advantages: Float32Array;
  if (config.advantage === 'reinforce_pp') {
    advantages = reinforcePpAdvantages({
      scores,
      logprobs: Float32Array.from(input.old.flat()),
      refLogprobs: Float32Array.from(input.ref.flat()),
      mask: lossMask,
      beta: config.beta,
    });
  } else {
    const sequence =
      config.advantage === 'rloo' ? rlooAdvantages(scores, G) : grpoAdvantages(scores, G, config.scaleByStd);
    advantages = perTokenAdvantages(sequence, lossMask, width);
  }
  return {
    advantages,
    lossMask,
    keptRows,
    droppedGroups: dropped.filter(Boolean).length / dropped.length,
    rewardStd: meanGroupStd(scores, G),
    zeroStdGroups: zeroSpreadGroups(scores, G),
  };
}

/** Mean of [rows][N] values over the positions where mask is 1 (0 with none). */
export function tokenMean(
  values: readonly (readonly number[])[],
  mask: readonly (readonly number[])[],
): number {
  let sum = 0;
  let count = 0;
  values.forEach((row, r) => {
    row.forEach((x, t) => {
      if (!mask[r][t]) return;
      sum += x;
      count++;
    });
  });
  return count > 0 ? sum / count : 0;
}

/** Σ_t (log π_old − log π_ref) of each response: the k1 KL of the sample table (Sample.kl). */
export function sequenceKl(
  old: readonly (readonly number[])[],
  ref: readonly (readonly number[])[],
  mask: readonly (readonly number[])[],
): number[] {
  return old.map((row, r) => row.reduce((a, x, t) => a + (mask[r][t] ? x - ref[r][t] : 0), 0));
}

/** k3 KL(π ‖ π_ref) per token of the rollout, the train graph's `kl` at its first step (for iterations without one). */
export function rolloutK3(
  old: readonly (readonly number[])[],
  ref: readonly (readonly number[])[],
  mask: readonly (readonly number[])[],
): number {
  return tokenMean(
    old.map((row, r) => row.map((x, t) => Math.exp(ref[r][t] - x) - 1 - (ref[r][t] - x))),
    mask,
  );
}
