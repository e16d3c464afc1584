// The resampling machinery every interval in this package shares: seeded index draws and the percentile
// bootstrap interval (Efron & Tibshirani 1993, An Introduction to the Bootstrap, ch. 13).
import { createRng, type Rng } from '@rlhf/model';

/** A two-sided interval at `level` (e.g. 0.95). */
export interface Interval {
  lower: number;
  upper: number;
  level: number;
}

/** How a bootstrap is run: B resamples, the interval's level, the seed of the resampling stream. */
export interface BootstrapOptions {
  /** Number of bootstrap resamples B (default 2000). */
  resamples?: number;
  /** Coverage of the two-sided interval (default 0.95). */
  level?: number;
  /** Seed of the resampling stream (default 0): the same seed gives the same interval. */
  seed?: number;
}

export interface ResolvedBootstrap {
  resamples: number;
  level: number;
  seed: number;
}

export function resolveBootstrap(options: BootstrapOptions = {}): ResolvedBootstrap {
  const resamples = options.resamples ?? 2000;
  const level = options.level ?? 0.95;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(resamples) || resamples < 1) {
    throw new RangeError(`resamples must be a positive integer, got ${resamples}`);
  }
  if (!(level > 0 && level < 1)) throw new RangeError(`level must be in (0, 1), got ${level}`);
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  return { resamples, level, seed };
}

/** The seeded stream a bootstrap draws from; `stream` keeps different statistics' draws independent. */
export function bootstrapRng(seed: number, stream: string): Rng {
  return createRng(seed, `eval.bootstrap.${stream}`);
}

/** n indices drawn uniformly with replacement from 0..n-1 (one bootstrap resample of n units). */
export function resampleIndices(rng: Rng, n: number): Uint32Array {
  const picked = new Uint32Array(n);
  for (let i = 0; i < n; i++) picked[i] = Math.floor(rng.uniform() * n);
  return picked;
}

/** Sample quantile, linear interpolation between order statistics (Hyndman & Fan 1996, definition 7). */
export function quantileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError('quantile of an empty sample');
  const h = (n - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** Percentile bootstrap interval: the (1-level)/2 and (1+level)/2 quantiles of the bootstrap statistics. */
export function percentileInterval(statistics: ArrayLike<number>, level: number): Interval {
  const sorted = Float64Array.from(statistics).sort();
  const alpha = 1 - level;
  return {
    lower: quantileSorted(sorted, alpha / 2),
    upper: quantileSorted(sorted, 1 - alpha / 2),
    level,
  };
}
