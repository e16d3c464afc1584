import { createRng } from '@rlhf/model';
import { describe, expect, it } from 'vitest';
import { percentileInterval, quantileSorted } from './bootstrap.js';
import { type Outcome, pairedOutcomes, winRate } from './win-rate.js';

const repeat = (outcome: Outcome, n: number): Outcome[] => new Array<Outcome>(n).fill(outcome);

describe('quantiles and the percentile interval', () => {
  it('interpolates between order statistics (Hyndman–Fan 7)', () => {
    const sorted = [1, 2, 3, 4, 5];
    expect(quantileSorted(sorted, 0)).toBe(1);
    expect(quantileSorted(sorted, 0.5)).toBe(3);
    expect(quantileSorted(sorted, 0.1)).toBeCloseTo(1.4, 12); // h = 0.4
    expect(quantileSorted(sorted, 1)).toBe(5);
  });
  it('takes the 2.5 % and 97.5 % points of 0..100', () => {
    const interval = percentileInterval(
      Array.from({ length: 101 }, (_, i) => 100 - i),
      0.95,
    );
    expect(interval.lower).toBeCloseTo(2.5, 12);
    expect(interval.upper).toBeCloseTo(97.5, 12);
  });
});

describe('pairedOutcomes', () => {
  it('turns score differences into win/tie/loss with a tie margin', () => {
    expect(pairedOutcomes([1, 0.5, 0.2, -1], [0.5, 0.45, 0.9, -1], 0.1)).toEqual([
      'win',
      'tie',
      'loss',
      'tie',
    ]);
    expect(pairedOutcomes([1, 1.05], [1, 1])).toEqual(['tie', 'win']);
  });
  it('refuses mismatched lengths, negative margins and non-finite scores', () => {
    expect(() => pairedOutcomes([1], [1, 2])).toThrow(/scoresA has 1/);
    expect(() => pairedOutcomes([1], [1], -0.1)).toThrow(/tieMargin/);
    expect(() => pairedOutcomes([Number.NaN], [1])).toThrow(/score 0/);
  });
});

describe('winRate', () => {
  it('counts wins, ties and losses, ties as half', () => {
    const result = winRate([...repeat('win', 6), ...repeat('tie', 2), ...repeat('loss', 2)], {
      resamples: 500,
    });
    expect(result).toMatchObject({ wins: 6, ties: 2, losses: 2, n: 10, prompts: 10, winRate: 0.7 });
    expect(result.interval.lower).toBeLessThan(0.7);
    expect(result.interval.upper).toBeGreaterThan(0.7);
  });
  it('gives a degenerate interval when every prompt has the same outcome', () => {
    expect(winRate(repeat('win', 5)).interval).toEqual({ lower: 1, upper: 1, level: 0.95 });
  });
  it('is reproducible for a seed and differs across seeds', () => {
    const outcomes = [...repeat('win', 30), ...repeat('loss', 20), ...repeat('tie', 10)];
    expect(winRate(outcomes, { seed: 3 }).interval).toEqual(winRate(outcomes, { seed: 3 }).interval);
    const lowers = new Set(
      [0, 1, 2, 3, 4, 5].map((seed) => winRate(outcomes, { seed, resamples: 50 }).interval.lower),
    );
    expect(lowers.size).toBeGreaterThan(1);
  });
  it('matches the normal-approximation width sqrt(p(1-p)/n) for a large sample', () => {
    const outcomes = [...repeat('win', 600), ...repeat('loss', 400)];
    const { interval } = winRate(outcomes, { resamples: 4000 });
    const halfWidth = 1.96 * Math.sqrt((0.6 * 0.4) / 1000); // 0.0304
    expect((interval.upper - interval.lower) / 2).toBeCloseTo(halfWidth, 2);
  });
  it('resamples prompts, not outcomes, when outcomes share a prompt', () => {
    // Each prompt is judged twice with the same verdict: the effective sample is the 40 prompts.
    const perPrompt = [...repeat('win', 24), ...repeat('loss', 16)];
    const outcomes = perPrompt.flatMap((o) => [o, o]);
    const groups = perPrompt.flatMap((_, p) => [p, p]);
    const clustered = winRate(outcomes, { groups });
    const naive = winRate(outcomes);
    expect(clustered.prompts).toBe(40);
    const width = (r: typeof naive) => r.interval.upper - r.interval.lower;
    expect(width(clustered) / width(naive)).toBeGreaterThan(1.25); // ≈ √2
  });
  it('covers the true win rate at about 95 % over 400 seeded simulated evaluations', () => {
    const rng = createRng(11, 'win-rate-coverage');
    const truth = 0.62;
    let covered = 0;
    const trials = 400;
    for (let t = 0; t < trials; t++) {
      const outcomes = Array.from({ length: 150 }, (): Outcome => {
        const u = rng.uniform();
        return u < 0.52 ? 'win' : u < 0.72 ? 'tie' : 'loss'; // E[score] = 0.52 + 0.10 = 0.62
      });
      const { interval } = winRate(outcomes, { resamples: 400, seed: t });
      if (interval.lower <= truth && truth <= interval.upper) covered++;
    }
    const coverage = covered / trials;
    console.log(`win-rate bootstrap coverage: ${coverage}`);
    expect(coverage).toBeGreaterThan(0.9);
    expect(coverage).toBeLessThan(0.99);
  });
  it('refuses empty outcomes and bad options', () => {
    expect(() => winRate([])).toThrow(/at least one/);
    expect(() => winRate(['win'], { resamples: 0 })).toThrow(/resamples/);
    expect(() => winRate(['win'], { level: 1 })).toThrow(/level/);
    expect(() => winRate(['win'], { groups: [1, 2] })).toThrow(/groups/);
  });
});
