// A team's leaderboard: every comparison of its models so far → Bradley–Terry ratings, best first.
import {
  type BradleyTerryOptions,
  bradleyTerry,
  type Comparison,
  type ModelRating,
} from './bradley-terry.js';
import type { Outcome } from './win-rate.js';

export interface LeaderboardRow extends ModelRating {
  /** 1 for the highest rating; equal ratings share a rank. */
  rank: number;
}

export interface Leaderboard {
  rows: LeaderboardRow[];
  comparisons: number;
  /** False when the fit did not converge (possible only with priorGames 0). */
  converged: boolean;
}

/** The comparisons an evaluation of `a` against `b` contributes: one per judged prompt. */
export function comparisonsOf(a: string, b: string, outcomes: readonly Outcome[]): Comparison[] {
  return outcomes.map((outcome) => ({ a, b, outcome }));
}

/** Ratings with intervals and games played, sorted best first (ties in rating broken by name). */
export function leaderboard(
  comparisons: readonly Comparison[],
  options: BradleyTerryOptions = {},
): Leaderboard {
  const fit = bradleyTerry(comparisons, options);
  const sorted = [...fit.ratings].sort((x, y) => y.rating - x.rating || x.model.localeCompare(y.model));
  let rank = 0;
  const rows = sorted.map((rating, k): LeaderboardRow => {
    if (k === 0 || rating.rating !== sorted[k - 1].rating) rank = k + 1;
    return { ...rating, rank };
  });
  return { rows, comparisons: comparisons.length, converged: fit.converged };
}
