// Bradley–Terry strengths from pairwise comparisons (ties as half a win to each side), fitted by the MM
// algorithm (Hunter 2004, "MM algorithms for generalized Bradley–Terry models", Ann. Statist. 32, eq. 3),
// reported on the Elo scale, with percentile-bootstrap intervals over comparisons.
import {
  type BootstrapOptions,
  bootstrapRng,
  type Interval,
  percentileInterval,
  resampleIndices,
  resolveBootstrap,
} from './bootstrap.js';
import { type Outcome, outcomeScore } from './win-rate.js';

/** One judged comparison of model `a` against model `b`; `outcome` is from a's side. */
export interface Comparison {
  a: string;
  b: string;
  outcome: Outcome;
}

/** Where the Elo scale is pinned: the mean rating of all models, or one named model's rating. */
export type RatingAnchor = { mean: number } | { model: string; rating: number };

export interface BradleyTerryOptions extends BootstrapOptions {
  /**
   * Virtual games of every model against a fixed reference player (log-strength 0), half won and half lost:
   * a weak prior that keeps undefeated and winless models finite (default 1; 0 = plain MLE).
   */
  priorGames?: number;
  /** Default `{ mean: 1000 }`. */
  anchor?: RatingAnchor;
  /** Stop when no log-strength moves by more than this in one MM step (default 1e-10). */
  tolerance?: number;
  /** Default 100000. */
  maxIterations?: number;
}

export interface ModelRating {
  model: string;
  /** Elo-scale rating: 400·log10(strength), shifted to the anchor. */
  rating: number;
  /** Percentile bootstrap interval of the rating, comparisons resampled with replacement. */
  interval: Interval;
  games: number;
  wins: number;
  ties: number;
  losses: number;
}

export interface BradleyTerryFit {
  /** Every model that played, in order of first appearance. */
  ratings: ModelRating[];
  /** Natural-log strengths θ (P(i beats j) = σ(θi − θj)), same order as `ratings`. */
  logStrengths: number[];
  iterations: number;
  converged: boolean;
  resamples: number;
}

/** Elo's expected score of A against B: 1 / (1 + 10^((rB − rA)/400)) (Elo 1978, The Rating of Chessplayers). */
export function eloExpectedScore(ratingA: number, ratingB: number): number {
  return 1 / (1 + 10 ** ((ratingB - ratingA) / 400));
}

/** A natural-log Bradley–Terry strength on the Elo scale: 400·log10(e^θ) = 400θ / ln 10. */
export function eloOfLogStrength(theta: number): number {
  return (400 * theta) / Math.LN10;
}

/** Comparisons folded into per-pair game counts and points; the MM update needs only these. */
interface PairTable {
  size: number;
  /** Row-major size×size: games between i and j (symmetric). */
  games: Float64Array;
  /** Points each model scored in total (ties as half). */
  points: Float64Array;
}

function emptyTable(size: number): PairTable {
  return { size, games: new Float64Array(size * size), points: new Float64Array(size) };
}

function addGame(table: PairTable, i: number, j: number, scoreOfI: number): void {
  table.games[i * table.size + j] += 1;
  table.games[j * table.size + i] += 1;
  table.points[i] += scoreOfI;
  table.points[j] += 1 - scoreOfI;
}

interface MmResult {
  theta: Float64Array;
  iterations: number;
  converged: boolean;
}

/**
 * MM iterations π_i ← (W_i + g/2) / (Σ_j n_ij/(π_i+π_j) + g/(π_i+1)) (Hunter 2004 eq. 3, with g virtual
 * games against a reference of strength 1). Without a prior the scale is fixed by a geometric mean of 1.
 */
function fitMm(
  table: PairTable,
  priorGames: number,
  tolerance: number,
  maxIterations: number,
  start?: Float64Array,
): MmResult {
  const { size, games, points } = table;
  const pi = new Float64Array(size);
  for (let i = 0; i < size; i++) pi[i] = start === undefined ? 1 : Math.exp(start[i]);
  const theta = new Float64Array(size);
  for (let i = 0; i < size; i++) theta[i] = Math.log(pi[i]);
  for (let iteration = 1; iteration <= maxIterations; iteration++) {
    let change = 0;
    for (let i = 0; i < size; i++) {
      let denominator = priorGames / (pi[i] + 1);
      for (let j = 0; j < size; j++) {
        const n = games[i * size + j];
        if (n > 0) denominator += n / (pi[i] + pi[j]);
      }
      const numerator = points[i] + priorGames / 2;
      pi[i] = denominator > 0 ? numerator / denominator : 1;
    }
    let meanLog = 0;
    if (priorGames === 0) {
      for (let i = 0; i < size; i++) meanLog += Math.log(pi[i]) / size;
    }
    for (let i = 0; i < size; i++) {
      const next = Math.log(pi[i]) - meanLog;
      pi[i] = Math.exp(next);
      change = Math.max(change, Math.abs(next - theta[i]));
      theta[i] = next;
    }
    if (!theta.every(Number.isFinite)) return { theta, iterations: iteration, converged: false };
    if (change < tolerance) return { theta, iterations: iteration, converged: true };
  }
  return { theta, iterations: maxIterations, converged: false };
}

/** Elo ratings of log-strengths, shifted so the anchor holds. */
function anchoredRatings(
  theta: ArrayLike<number>,
  models: readonly string[],
  anchor: RatingAnchor,
): number[] {
  const elo = Array.from(theta, eloOfLogStrength);
  let shift: number;
  if ('model' in anchor) {
    const k = models.indexOf(anchor.model);
    if (k < 0) throw new RangeError(`anchor model ${anchor.model} played no comparison`);
    shift = anchor.rating - elo[k];
  } else {
    shift = anchor.mean - elo.reduce((s, r) => s + r, 0) / elo.length;
  }
  return elo.map((r) => r + shift);
}

/**
 * Bradley–Terry ratings (Elo scale) of every model in `comparisons`, with bootstrap intervals per model
 * from refitting on comparisons resampled with replacement.
 */
export function bradleyTerry(
  comparisons: readonly Comparison[],
  options: BradleyTerryOptions = {},
): BradleyTerryFit {
  if (comparisons.length === 0) throw new RangeError('bradleyTerry needs at least one comparison');
  const { resamples, level, seed } = resolveBootstrap(options);
  const priorGames = options.priorGames ?? 1;
  const anchor = options.anchor ?? { mean: 1000 };
  const tolerance = options.tolerance ?? 1e-10;
  const maxIterations = options.maxIterations ?? 100_000;
  if (!(priorGames >= 0) || !Number.isFinite(priorGames)) {
    throw new RangeError(`priorGames must be a finite number ≥ 0, got ${priorGames}`);
  }

  const models: string[] = [];
  const index = new Map<string, number>();
  const indexOf = (model: string): number => {
    let k = index.get(model);
    if (k === undefined) {
      k = models.length;
      index.set(model, k);
      models.push(model);
    }
    return k;
  };
  const rows = comparisons.map((c, n) => {
    if (c.a === c.b) throw new RangeError(`comparison ${n} pits ${c.a} against itself`);
    return { i: indexOf(c.a), j: indexOf(c.b), score: outcomeScore(c.outcome) };
  });
  const size = models.length;
  const full = emptyTable(size);
  const tallies = models.map(() => ({ games: 0, wins: 0, ties: 0, losses: 0 }));
  for (const { i, j, score } of rows) {
    addGame(full, i, j, score);
    for (const [k, s] of [
      [i, score],
      [j, 1 - score],
    ] as const) {
      tallies[k].games++;
      if (s === 1) tallies[k].wins++;
      else if (s === 0) tallies[k].losses++;
      else tallies[k].ties++;
    }
  }
  const fit = fitMm(full, priorGames, tolerance, maxIterations);
  const ratings = anchoredRatings(fit.theta, models, anchor);

  const rng = bootstrapRng(seed, 'bradley-terry');
  const samples = models.map(() => new Float64Array(resamples));
  for (let r = 0; r < resamples; r++) {
    const table = emptyTable(size);
    for (const k of resampleIndices(rng, rows.length)) addGame(table, rows[k].i, rows[k].j, rows[k].score);
    const refit = fitMm(table, priorGames, tolerance, maxIterations, fit.theta);
    anchoredRatings(refit.theta, models, anchor).forEach((rating, k) => {
      samples[k][r] = rating;
    });
  }
  return {
    ratings: models.map((model, k) => ({
      model,
      rating: ratings[k],
      interval: percentileInterval(samples[k], level),
      ...tallies[k],
    })),
    logStrengths: Array.from(fit.theta),
    iterations: fit.iterations,
    converged: fit.converged,
    resamples,
  };
}
