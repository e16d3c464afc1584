// Pairwise win rates of model A over model B: counts, ties as half a win, and a percentile bootstrap
// interval over prompts (a prompt judged several times, e.g. several seeds, is resampled as one unit).
import {
  type BootstrapOptions,
  bootstrapRng,
  type Interval,
  percentileInterval,
  resampleIndices,
  resolveBootstrap,
} from './bootstrap.js';

/** The verdict on one comparison, from model A's side. */
export type Outcome = 'win' | 'tie' | 'loss';

export interface WinRateOptions extends BootstrapOptions {
  /**
   * The prompt each outcome belongs to (same length as the outcomes); outcomes of one prompt are
   * resampled together. Default: every outcome is its own prompt.
   */
  groups?: readonly (string | number)[];
}

export interface WinRate {
  wins: number;
  ties: number;
  losses: number;
  /** Number of outcomes. */
  n: number;
  /** Number of distinct prompts resampled by the bootstrap. */
  prompts: number;
  /** (wins + ties / 2) / n. */
  winRate: number;
  /** Percentile bootstrap interval of the win rate over prompts. */
  interval: Interval;
  resamples: number;
}

/** The score an outcome gives A: 1 for a win, 1/2 for a tie, 0 for a loss. */
export function outcomeScore(outcome: Outcome): number {
  return outcome === 'win' ? 1 : outcome === 'tie' ? 0.5 : 0;
}

/** The same comparison seen from B's side. */
export function flipOutcome(outcome: Outcome): Outcome {
  return outcome === 'win' ? 'loss' : outcome === 'loss' ? 'win' : 'tie';
}

/** Win/tie/loss from a score difference: |a - b| ≤ tieMargin is a tie (a judge's indifference band). */
export function outcomeOfDifference(difference: number, tieMargin: number): Outcome {
  if (Math.abs(difference) <= tieMargin) return 'tie';
  return difference > 0 ? 'win' : 'loss';
}

/**
 * Outcomes of A vs B for judges that score each response (a reward model, a grader): per prompt, A's
 * score minus B's score, a tie within `tieMargin`.
 */
export function pairedOutcomes(
  scoresA: readonly number[],
  scoresB: readonly number[],
  tieMargin = 0,
): Outcome[] {
  if (scoresA.length !== scoresB.length) {
    throw new RangeError(`scoresA has ${scoresA.length} scores but scoresB has ${scoresB.length}`);
  }
  if (!(tieMargin >= 0) || !Number.isFinite(tieMargin)) {
    throw new RangeError(`tieMargin must be a finite number ≥ 0, got ${tieMargin}`);
  }
  return scoresA.map((a, i) => {
    const b = scoresB[i];
    if (!Number.isFinite(a) || !Number.isFinite(b)) {
      throw new RangeError(`score ${i} is not finite (A ${a}, B ${b})`);
    }
    return outcomeOfDifference(a - b, tieMargin);
  });
}

/** Win rate of A with ties counted as half (the AlpacaEval / Chatbot Arena convention). */
export function winRateOfCounts(wins: number, ties: number, losses: number): number {
  return (wins + ties / 2) / (wins + ties + losses);
}

/** Groups outcomes by prompt: per prompt, the sum of A's scores and the number of outcomes. */
function promptTotals(
  outcomes: readonly Outcome[],
  groups: readonly (string | number)[] | undefined,
): { scores: Float64Array; counts: Float64Array } {
  if (groups !== undefined && groups.length !== outcomes.length) {
    throw new RangeError(`groups has ${groups.length} entries but there are ${outcomes.length} outcomes`);
  }
  const index = new Map<string | number, number>();
  const scores: number[] = [];
  const counts: number[] = [];
  outcomes.forEach((outcome, i) => {
    const key = groups === undefined ? i : groups[i];
    let g = index.get(key);
    if (g === undefined) {
      g = scores.length;
      index.set(key, g);
      scores.push(0);
      counts.push(0);
    }
    scores[g] += outcomeScore(outcome);
    counts[g] += 1;
  });
  return { scores: Float64Array.from(scores), counts: Float64Array.from(counts) };
}

/** Counts, win rate (ties as half) and a seeded percentile-bootstrap interval over prompts. */
export function winRate(outcomes: readonly Outcome[], options: WinRateOptions = {}): WinRate {
  if (outcomes.length === 0) throw new RangeError('winRate needs at least one outcome');
  const { resamples, level, seed } = resolveBootstrap(options);
  let wins = 0;
  let ties = 0;
  let losses = 0;
  for (const outcome of outcomes) {
    if (outcome === 'win') wins++;
    else if (outcome === 'tie') ties++;
    else if (outcome === 'loss') losses++;
    else throw new RangeError(`unknown outcome ${String(outcome)}`);
  }
  const { scores, counts } = promptTotals(outcomes, options.groups);
  const prompts = scores.length;
  const rng = bootstrapRng(seed, 'win-rate');
  const statistics = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let score = 0;
    let count = 0;
    for (const g of resampleIndices(rng, prompts)) {
      score += scores[g];
      count += counts[g];
    }
    statistics[r] = score / count;
  }
  return {
    wins,
    ties,
    losses,
    n: outcomes.length,
    prompts,
    winRate: winRateOfCounts(wins, ties, losses),
    interval: percentileInterval(statistics, level),
    resamples,
  };
}
