// Reward-model calibration on held-out preference pairs: how often the chosen response outscores the
// rejected one, overall and by score margin, against what the Bradley–Terry reading of the scores predicts.
import type { BootstrapOptions, Interval } from './bootstrap.js';
import { pairedOutcomes, type WinRate, winRate } from './win-rate.js';

export interface CalibrationOptions extends BootstrapOptions {
  /** Number of equal-count margin buckets (quantiles of |chosen − rejected|), default 5. */
  buckets?: number;
}

export interface MarginBucket {
  /** Smallest and largest |margin| in the bucket. */
  lower: number;
  upper: number;
  count: number;
  /** Fraction of the bucket's pairs where the chosen response scored higher (ties as half). */
  accuracy: number;
  /** Mean σ(|margin|): the accuracy a Bradley–Terry-calibrated reward model would have here. */
  predicted: number;
}

export interface RewardCalibration {
  pairs: number;
  /** Held-out pair accuracy, ties as half. */
  accuracy: number;
  interval: Interval;
  /** Mean of chosen − rejected. */
  meanMargin: number;
  buckets: MarginBucket[];
  /** Expected calibration error Σ_b (n_b / N)·|accuracy_b − predicted_b| (Naeini et al. 2015). */
  expectedCalibrationError: number;
}

/** P(chosen ≻ rejected) under the reward model's Bradley–Terry reading: σ(r_chosen − r_rejected). */
export function bradleyTerryPreference(margin: number): number {
  return 1 / (1 + Math.exp(-margin));
}

/** The score a pair gives the accuracy: 1 when the chosen response outscores, 1/2 on a tie, else 0. */
function pairCorrect(margin: number): number {
  return margin > 0 ? 1 : margin === 0 ? 0.5 : 0;
}

/** Held-out accuracy of a reward model (with a bootstrap interval) and its accuracy by margin bucket. */
export function rewardCalibration(
  chosen: readonly number[],
  rejected: readonly number[],
  options: CalibrationOptions = {},
): RewardCalibration {
  if (chosen.length !== rejected.length) {
    throw new RangeError(`chosen has ${chosen.length} scores but rejected has ${rejected.length}`);
  }
  const outcomes = pairedOutcomes(chosen, rejected, 0);
  if (outcomes.length === 0) throw new RangeError('rewardCalibration needs at least one pair');
  const bucketCount = options.buckets ?? 5;
  if (!Number.isInteger(bucketCount) || bucketCount < 1) {
    throw new RangeError(`buckets must be a positive integer, got ${bucketCount}`);
  }
  const overall: WinRate = winRate(outcomes, options);
  const margins = chosen.map((c, i) => c - rejected[i]);
  const order = margins.map((_, i) => i).sort((x, y) => Math.abs(margins[x]) - Math.abs(margins[y]));
  const n = margins.length;
  const used = Math.min(bucketCount, n);
  const buckets: MarginBucket[] = [];
  let calibrationError = 0;
  for (let b = 0; b < used; b++) {
    // Equal-count buckets by rank: bucket b holds ranks ⌊b·n/B⌋ .. ⌊(b+1)·n/B⌋ − 1.
    const members = order.slice(Math.floor((b * n) / used), Math.floor(((b + 1) * n) / used));
    const accuracy = members.reduce((s, i) => s + pairCorrect(margins[i]), 0) / members.length;
    const predicted =
      members.reduce((s, i) => s + bradleyTerryPreference(Math.abs(margins[i])), 0) / members.length;
    calibrationError += (members.length / n) * Math.abs(accuracy - predicted);
    buckets.push({
      lower: Math.abs(margins[members[0]]),
      upper: Math.abs(margins[members[members.length - 1]]),
      count: members.length,
      accuracy,
      predicted,
    });
  }
  return {
    pairs: n,
    accuracy: overall.winRate,
    interval: overall.interval,
    meanMargin: margins.reduce((s, m) => s + m, 0) / n,
    buckets,
    expectedCalibrationError: calibrationError,
  };
}
