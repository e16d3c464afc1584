import { createRng } from '@rlhf/model';
import { describe, expect, it } from 'vitest';
import { bradleyTerryPreference, rewardCalibration } from './calibration.js';

/** Preference pairs labelled by a Bradley–Terry annotator on true rewards ~ N(0, 1.5²). */
function labelledPairs(n: number, seed: number): { chosen: number[]; rejected: number[] } {
  const rng = createRng(seed, 'calibration');
  const chosen: number[] = [];
  const rejected: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = 1.5 * rng.normal();
    const y = 1.5 * rng.normal();
    const xWins = rng.uniform() < bradleyTerryPreference(x - y);
    chosen.push(xWins ? x : y);
    rejected.push(xWins ? y : x);
  }
  return { chosen, rejected };
}

describe('rewardCalibration', () => {
  it('matches hand-computed accuracy, buckets and calibration error', () => {
    // margins 2, −1, 0, 1 → accuracy (1 + 0 + ½ + 1) / 4; by |margin|: {0, −1} and {1, 2}.
    const result = rewardCalibration([3, 1, 2, 0], [1, 2, 2, -1], { buckets: 2, resamples: 100 });
    expect(result.accuracy).toBe(0.625);
    expect(result.meanMargin).toBe(0.5);
    const [low, high] = result.buckets;
    expect(low).toMatchObject({ lower: 0, upper: 1, count: 2, accuracy: 0.25 });
    expect(low.predicted).toBeCloseTo((0.5 + 0.7310585786) / 2, 9); // 0.61553
    expect(high).toMatchObject({ lower: 1, upper: 2, count: 2, accuracy: 1 });
    expect(high.predicted).toBeCloseTo((0.7310585786 + 0.880797078) / 2, 9); // 0.80593
    expect(result.expectedCalibrationError).toBeCloseTo(0.5 * 0.3655293 + 0.5 * 0.1940722, 6); // 0.27980
  });
  it('finds the true rewards calibrated: accuracy rises with the margin and tracks σ(margin)', () => {
    const { chosen, rejected } = labelledPairs(4000, 1);
    const result = rewardCalibration(chosen, rejected, { buckets: 5, resamples: 500 });
    console.log(
      `calibrated RM: accuracy ${result.accuracy.toFixed(3)}, ECE ${result.expectedCalibrationError.toFixed(4)}, buckets ` +
        result.buckets.map((b) => `${b.accuracy.toFixed(2)}/${b.predicted.toFixed(2)}`).join(' '),
    );
    for (let b = 1; b < result.buckets.length; b++) {
      expect(result.buckets[b].accuracy).toBeGreaterThan(result.buckets[b - 1].accuracy);
      expect(result.buckets[b].lower).toBeGreaterThanOrEqual(result.buckets[b - 1].upper);
    }
    expect(result.buckets.map((b) => b.count)).toEqual([800, 800, 800, 800, 800]);
    expect(result.expectedCalibrationError).toBeLessThan(0.03);
    expect(result.interval.lower).toBeLessThan(result.accuracy);
    expect(result.interval.upper).toBeGreaterThan(result.accuracy);
  });
  it('flags an overconfident reward model (scores ×3): same accuracy, predicted above observed', () => {
    const { chosen, rejected } = labelledPairs(4000, 1);
    const calibrated = rewardCalibration(chosen, rejected, { resamples: 100 });
    const overconfident = rewardCalibration(
      chosen.map((c) => 3 * c),
      rejected.map((r) => 3 * r),
      { resamples: 100 },
    );
    expect(overconfident.accuracy).toBe(calibrated.accuracy);
    expect(overconfident.expectedCalibrationError).toBeGreaterThan(0.1);
    for (const b of overconfident.buckets) expect(b.predicted).toBeGreaterThan(b.accuracy);
  });
  it('uses at most one bucket per pair and refuses bad input', () => {
    expect(rewardCalibration([1], [0], { buckets: 5, resamples: 10 }).buckets).toHaveLength(1);
    expect(() => rewardCalibration([], [])).toThrow(/at least one/);
    expect(() => rewardCalibration([1], [0], { buckets: 0 })).toThrow(/buckets/);
    expect(() => rewardCalibration([1, 2], [0])).toThrow(/chosen has 2 scores but rejected has 1/);
  });
});
