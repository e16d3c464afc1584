import { createRng, type Rng } from '@rlhf/model';
import { describe, expect, it } from 'vitest';
import { bradleyTerry, type Comparison, eloExpectedScore, eloOfLogStrength } from './bradley-terry.js';
import type { Outcome } from './win-rate.js';

const games = (a: string, b: string, outcome: Outcome, n: number): Comparison[] =>
  Array.from({ length: n }, () => ({ a, b, outcome }));

/** A round robin: every pair plays `perPair` games, each won by i with Elo's expected score. */
function simulateTournament(truth: Record<string, number>, perPair: number, rng: Rng): Comparison[] {
  const models = Object.keys(truth);
  const out: Comparison[] = [];
  for (let i = 0; i < models.length; i++) {
    for (let j = i + 1; j < models.length; j++) {
      const p = eloExpectedScore(truth[models[i]], truth[models[j]]);
      for (let g = 0; g < perPair; g++) {
        out.push({ a: models[i], b: models[j], outcome: rng.uniform() < p ? 'win' : 'loss' });
      }
    }
  }
  return out;
}

const ratingOf = (fit: ReturnType<typeof bradleyTerry>, model: string) =>
  fit.ratings.find((r) => r.model === model)!;

describe('Elo scale', () => {
  it('has the textbook expected scores', () => {
    expect(eloExpectedScore(1000, 1000)).toBe(0.5);
    expect(eloExpectedScore(1400, 1000)).toBeCloseTo(10 / 11, 12); // 400 points = odds 10:1
    expect(eloOfLogStrength(Math.log(10))).toBeCloseTo(400, 12);
  });
});

describe('bradleyTerry', () => {
  it('gives a 3:1 record the odds ratio 3 without a prior (Elo gap 400·log10 3 = 190.85)', () => {
    const fit = bradleyTerry([...games('A', 'B', 'win', 3), ...games('A', 'B', 'loss', 1)], {
      priorGames: 0,
      resamples: 10,
    });
    expect(fit.converged).toBe(true);
    expect(ratingOf(fit, 'A').rating).toBeCloseTo(1000 + 200 * Math.log10(3), 6); // 1095.42
    expect(ratingOf(fit, 'B').rating).toBeCloseTo(1000 - 200 * Math.log10(3), 6); // 904.58
    expect(ratingOf(fit, 'A')).toMatchObject({ games: 4, wins: 3, ties: 0, losses: 1 });
  });
  it('counts ties as half a win: 2 wins + 2 ties of 4 is odds 3', () => {
    const fit = bradleyTerry([...games('A', 'B', 'win', 2), ...games('B', 'A', 'tie', 2)], {
      priorGames: 0,
      resamples: 10,
    });
    expect(ratingOf(fit, 'A').rating - ratingOf(fit, 'B').rating).toBeCloseTo(400 * Math.log10(3), 6);
    expect(ratingOf(fit, 'B')).toMatchObject({ games: 4, wins: 0, ties: 2, losses: 2 });
  });
  it('rates a balanced cycle equal', () => {
    const fit = bradleyTerry(
      [...games('A', 'B', 'win', 2), ...games('B', 'C', 'win', 2), ...games('C', 'A', 'win', 2)],
      {
        resamples: 10,
      },
    );
    for (const r of fit.ratings) expect(r.rating).toBeCloseTo(1000, 6);
  });
  it('solves the prior-augmented likelihood equations: points + g/2 = Σ n_ij σ(θi−θj) + g σ(θi)', () => {
    const comparisons = [
      ...games('A', 'B', 'win', 5),
      ...games('A', 'B', 'loss', 2),
      ...games('B', 'C', 'win', 4),
      ...games('C', 'A', 'tie', 3),
      ...games('C', 'B', 'win', 1),
    ];
    const g = 2;
    const fit = bradleyTerry(comparisons, { priorGames: g, resamples: 10 });
    const theta = new Map(fit.ratings.map((r, k) => [r.model, fit.logStrengths[k]]));
    const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
    for (const r of fit.ratings) {
      const points = r.wins + r.ties / 2;
      let expected = g * sigmoid(theta.get(r.model)!);
      for (const c of comparisons) {
        if (c.a === r.model) expected += sigmoid(theta.get(c.a)! - theta.get(c.b)!);
        if (c.b === r.model) expected += sigmoid(theta.get(c.b)! - theta.get(c.a)!);
      }
      expect(expected).toBeCloseTo(points + g / 2, 8);
    }
  });
  it('keeps an undefeated model finite with the prior (and reports non-convergence without it)', () => {
    const comparisons = [
      ...games('A', 'B', 'win', 10),
      ...games('A', 'C', 'win', 10),
      ...games('B', 'C', 'win', 6),
    ];
    const fit = bradleyTerry(comparisons, { resamples: 50 });
    expect(fit.converged).toBe(true);
    const a = ratingOf(fit, 'A');
    expect(Number.isFinite(a.rating)).toBe(true);
    expect(a.rating).toBeGreaterThan(ratingOf(fit, 'B').rating);
    expect(Number.isFinite(a.interval.upper)).toBe(true);
    const plain = bradleyTerry(comparisons, { priorGames: 0, resamples: 1, maxIterations: 2000 });
    expect(plain.converged).toBe(false);
  });
  it('pins a named anchor and gives it a zero-width interval', () => {
    const rng = createRng(5, 'anchor');
    const fit = bradleyTerry(simulateTournament({ sft: 1000, ppo: 1150, dpo: 1100 }, 40, rng), {
      anchor: { model: 'sft', rating: 1000 },
      resamples: 200,
    });
    expect(ratingOf(fit, 'sft').rating).toBe(1000);
    expect(ratingOf(fit, 'sft').interval).toMatchObject({ lower: 1000, upper: 1000 });
    expect(ratingOf(fit, 'ppo').rating).toBeGreaterThan(1000);
    expect(() => bradleyTerry(games('A', 'B', 'win', 1), { anchor: { model: 'Z', rating: 0 } })).toThrow(/Z/);
  });
  it('recovers 8 known ratings from a simulated round robin: rank order exact, each within 30 Elo', () => {
    const truth: Record<string, number> = {};
    const spaced = [700, 800, 900, 1000, 1050, 1150, 1250, 1400];
    spaced.forEach((r, k) => {
      truth[`m${k}`] = r;
    });
    const mean = spaced.reduce((s, r) => s + r, 0) / spaced.length;
    const fit = bradleyTerry(simulateTournament(truth, 200, createRng(1, 'recovery')), {
      anchor: { mean },
      resamples: 200,
    });
    const byRating = [...fit.ratings].sort((x, y) => x.rating - y.rating).map((r) => r.model);
    expect(byRating).toEqual(Object.keys(truth));
    let worst = 0;
    for (const r of fit.ratings) {
      worst = Math.max(worst, Math.abs(r.rating - truth[r.model]));
      expect(r.interval.lower).toBeLessThan(r.rating);
      expect(r.interval.upper).toBeGreaterThan(r.rating);
    }
    console.log(`Bradley–Terry recovery: worst |rating − truth| = ${worst.toFixed(1)} Elo`);
    expect(worst).toBeLessThan(30);
  });
  it('has bootstrap 95 % intervals that cover the true ratings at about their nominal rate (200 tournaments)', () => {
    const truth = { a: 850, b: 950, c: 1000, d: 1050, e: 1150 }; // mean 1000
    const rng = createRng(2026, 'coverage');
    let covered = 0;
    let total = 0;
    for (let t = 0; t < 200; t++) {
      const fit = bradleyTerry(simulateTournament(truth, 30, rng), {
        resamples: 200,
        seed: t,
        tolerance: 1e-8,
      });
      for (const r of fit.ratings) {
        total++;
        const value = truth[r.model as keyof typeof truth];
        if (r.interval.lower <= value && value <= r.interval.upper) covered++;
      }
    }
    const coverage = covered / total;
    console.log(`Bradley–Terry bootstrap coverage: ${coverage.toFixed(3)} of ${total} intervals`);
    expect(coverage).toBeGreaterThanOrEqual(0.88);
    expect(coverage).toBeLessThanOrEqual(0.99);
  });
  it('refuses self-play, empty input and a negative prior', () => {
    expect(() => bradleyTerry([])).toThrow(/at least one/);
    expect(() => bradleyTerry([{ a: 'A', b: 'A', outcome: 'win' }])).toThrow(/itself/);
    expect(() => bradleyTerry(games('A', 'B', 'win', 1), { priorGames: -1 })).toThrow(/priorGames/);
  });
});
