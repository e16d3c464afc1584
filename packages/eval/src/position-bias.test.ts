import { createRng } from '@rlhf/model';
import { describe, expect, it } from 'vitest';
import { type JudgeRequest, type ResponsePair, swappedVerdicts } from './position-bias.js';
import { winRate } from './win-rate.js';

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const quality = (response: string) => Number(response.slice(2));

/** A judge that sees true quality but adds `bias` logits for whichever response is shown first. */
const biasedJudge =
  (bias: number) =>
  (requests: readonly JudgeRequest[]): number[] =>
    requests.map((r) => sigmoid(2 * (quality(r.first) - quality(r.second)) + bias));

/** Pairs whose responses carry their quality: A's ~ N(shift, 1), B's ~ N(0, 1). */
function pairsWithQuality(n: number, shift: number, seed: number): { pairs: ResponsePair[]; gaps: number[] } {
  const rng = createRng(seed, 'position-bias');
  const gaps: number[] = [];
  const pairs = Array.from({ length: n }, (_, i) => {
    const a = shift + rng.normal();
    const b = rng.normal();
    gaps.push(a - b);
    return { prompt: `p${i}`, a: `q=${a}`, b: `q=${b}` };
  });
  return { pairs, gaps };
}

describe('swappedVerdicts', () => {
  it('turns a judge that always prefers the first response into ties, with flip rate 1', async () => {
    const result = await swappedVerdicts(
      (requests) => requests.map(() => 0.8),
      [
        { prompt: 'x', a: 'one', b: 'two' },
        { prompt: 'y', a: 'three', b: 'four' },
      ],
    );
    expect(result.outcomes.aFirst).toEqual(['win', 'win']);
    expect(result.outcomes.bFirst).toEqual(['loss', 'loss']);
    expect(result.outcomes.consistent).toEqual(['tie', 'tie']);
    expect(result.rows[0].pAverage).toBeCloseTo(0.5, 12); // (0.8 + 1 − 0.8) / 2
    expect(result.outcomes.averaged).toEqual(['tie', 'tie']);
    expect(result.positionBias).toEqual({
      flipRate: 1,
      favouredFirst: 2,
      favouredSecond: 0,
      meanFirstPreference: 0.8,
    });
  });
  it('asks the judge both orders in one call: A first for every pair, then B first', async () => {
    const seen: JudgeRequest[] = [];
    await swappedVerdicts(
      (requests) => {
        seen.push(...requests);
        return requests.map(() => 0.5);
      },
      [{ prompt: 'x', a: 'A', b: 'B' }],
    );
    expect(seen).toEqual([
      { prompt: 'x', first: 'A', second: 'B' },
      { prompt: 'x', first: 'B', second: 'A' },
    ]);
  });
  it('leaves a position-fair judge unchanged: no flips, consistent = one-order verdicts', async () => {
    const { pairs } = pairsWithQuality(200, 0.3, 7);
    const result = await swappedVerdicts(biasedJudge(0), pairs);
    expect(result.positionBias.flipRate).toBe(0);
    expect(result.outcomes.consistent).toEqual(result.outcomes.aFirst);
    expect(result.positionBias.meanFirstPreference).toBeCloseTo(0.5, 12);
  });
  it('removes the bias of a judge that favours position A by 1.5 logits between equal models', async () => {
    const { pairs, gaps } = pairsWithQuality(400, 0, 1);
    const result = await swappedVerdicts(biasedJudge(1.5), pairs);
    const oneOrder = winRate(result.outcomes.aFirst, { seed: 1 });
    const consistent = winRate(result.outcomes.consistent, { seed: 1 });
    const averaged = winRate(result.outcomes.averaged, { seed: 1 });
    console.log(
      `biased judge, equal models: A-first win rate ${oneOrder.winRate.toFixed(3)} ` +
        `[${oneOrder.interval.lower.toFixed(3)}, ${oneOrder.interval.upper.toFixed(3)}], consistent ` +
        `${consistent.winRate.toFixed(3)} [${consistent.interval.lower.toFixed(3)}, ${consistent.interval.upper.toFixed(3)}], ` +
        `averaged ${averaged.winRate.toFixed(3)}, flip rate ${result.positionBias.flipRate.toFixed(3)}, ` +
        `mean first preference ${result.positionBias.meanFirstPreference.toFixed(3)}`,
    );
    // The truth on this sample: the share of pairs where A's response is really better (≈ 1/2).
    const truth = gaps.filter((g) => g > 0).length / gaps.length;
    // One order: A wins whenever 2·gap + 1.5 > 0, about Φ(0.53) ≈ 0.70 of the time: the interval excludes it.
    expect(oneOrder.interval.lower).toBeGreaterThan(truth + 0.1);
    // Swapped: averaging is exactly the truth; consistency scores |gap| < 0.75 as ties; both cover the truth.
    expect(averaged.winRate).toBe(truth);
    const clear = gaps.filter((g) => g > 0.75).length;
    const tied = gaps.filter((g) => Math.abs(g) < 0.75).length;
    expect(consistent.winRate).toBeCloseTo((clear + tied / 2) / 400, 12);
    for (const swapped of [consistent, averaged]) {
      expect(swapped.interval.lower).toBeLessThan(truth);
      expect(swapped.interval.upper).toBeGreaterThan(truth);
    }
    // The verdict flips exactly when the bias outweighs the gap: 2|gap| < 1.5; all flips favour the first.
    const expectedFlips = gaps.filter((g) => Math.abs(g) < 0.75).length;
    expect(result.positionBias.favouredFirst).toBe(expectedFlips);
    expect(result.positionBias.favouredSecond).toBe(0);
    expect(result.positionBias.flipRate).toBeCloseTo(expectedFlips / 400, 12);
    const meanFirst = gaps.reduce((s, g) => s + sigmoid(2 * g + 1.5) + sigmoid(-2 * g + 1.5), 0) / 800;
    expect(result.positionBias.meanFirstPreference).toBeCloseTo(meanFirst, 12);
    expect(meanFirst).toBeGreaterThan(0.6);
  });
  it('recovers the true ordering of each pair by averaging when A is better', async () => {
    const { pairs, gaps } = pairsWithQuality(400, 0.5, 2);
    const result = await swappedVerdicts(biasedJudge(1.5), pairs);
    // (σ(2g + 1.5) + σ(2g − 1.5)) / 2 > 1/2 exactly when g > 0: the average agrees with the truth on every pair.
    expect(result.outcomes.averaged).toEqual(gaps.map((g) => (g > 0 ? 'win' : 'loss')));
    const truth = gaps.filter((g) => g > 0).length / gaps.length;
    const aFirst = winRate(result.outcomes.aFirst).winRate;
    const bFirst = winRate(result.outcomes.bFirst).winRate;
    expect(aFirst).toBeGreaterThan(truth + 0.1); // shown first, A is overrated
    expect(bFirst).toBeLessThan(truth - 0.1); // shown second, A is underrated
    expect(winRate(result.outcomes.averaged).winRate).toBe(truth);
  });
  it('refuses non-probabilities, short answers, empty input and a bad margin', async () => {
    const pair = [{ prompt: 'x', a: 'A', b: 'B' }];
    await expect(swappedVerdicts((r) => r.map(() => 1.2), pair)).rejects.toThrow(/probability/);
    await expect(swappedVerdicts(() => [0.5], pair)).rejects.toThrow(/answered 1 of 2/);
    await expect(swappedVerdicts((r) => r.map(() => 0.5), [])).rejects.toThrow(/at least one/);
    await expect(swappedVerdicts((r) => r.map(() => 0.5), pair, { tieMargin: 0.5 })).rejects.toThrow(
      /tieMargin/,
    );
  });
  it('treats preferences within the tie margin as ties', async () => {
    const result = await swappedVerdicts(
      (r) => r.map((q) => (q.first === 'A' ? 0.54 : 0.3)),
      [{ prompt: 'x', a: 'A', b: 'B' }],
      {
        tieMargin: 0.05,
      },
    );
    expect(result.rows[0]).toMatchObject({
      aFirst: 'tie',
      bFirst: 'win',
      consistent: 'tie',
      averaged: 'win',
    });
  });
});
