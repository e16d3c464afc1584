import { resolvePpoConfig } from '@rlhf/contracts';
import { describe, expect, test } from 'vitest';
import type { Rollout } from './rollout.js';
import { explainedVariance, ppoTargets, sequenceEntropy } from './targets.js';

const close = (actual: ArrayLike<number>, expected: number[]) => {
  expect(actual.length).toBe(expected.length);
  for (const [i, x] of expected.entries()) expect(actual[i]).toBeCloseTo(x, 6);
};

// Two responses of up to 3 tokens: row 0 ends with EOS at t = 1, row 1 fills all 3 tokens without EOS.
const rollout: Rollout = {
  shape: [2, 3],
  prompts: [[256], [256]],
  responses: [
    [49, 257, 258],
    [49, 50, 51],
  ],
  mask: Uint8Array.from([1, 1, 0, 1, 1, 1]),
  finished: [true, false],
  samplerLogprobs: Float32Array.from([-1, -2, 0, -1, -1, -1]),
  logprobs: Float32Array.from([-1, -2, 0, -1, -1, -1]),
  refLogprobs: Float32Array.from([-1.5, -2, 0, -1, -2, -1]),
  values: Float32Array.from([0.5, 0.2, 9, 0, 0.1, 0.3]),
  scores: Float32Array.from([1, 2]),
  timing: { generate: 0, score: 0 },
};

describe('ppoTargets', () => {
  test('score − β·KL rewards, Monte-Carlo returns at γ = λ = 1, whitened advantages', () => {
    const settings = resolvePpoConfig({ gamma: 1, lam: 1, missingEosPenalty: 0.5 });
    const t = ppoTargets(rollout, rollout.scores, 0.1, settings);
    // kl = [0.5, 0, ·, 0, 1, 0]; row 0: −0.05, then +1 on its EOS; row 1: truncated, score 2 − 0.5 on t = 2
    close(t.rewards, [-0.05, 1, 0, 0, -0.1, 1.5]);
    // returns R_t = Σ_{k ≥ t} r_k: row 0 [0.95, 1], row 1 [1.4, 1.4, 1.5]
    close(t.returns, [0.95, 1, 0, 1.4, 1.4, 1.5]);
    // raw advantages R − V = [0.45, 0.8, 1.4, 1.3, 1.2]: mean 1.03, unbiased variance 0.628 / 4
    const std = Math.sqrt(0.628 / 4 + 1e-8);
    const raw = [0.45, 0.8, 0, 1.4, 1.3, 1.2];
    close(
      t.advantages,
      raw.map((a, i) => (rollout.mask[i] ? (a - 1.03) / std : 0)),
    );
    close(t.scores, [1, 1.5]);
  });

  test('whitenRewards rescales the rewards but keeps their mean', () => {
    const settings = resolvePpoConfig({ whitenRewards: true });
    const t = ppoTargets(rollout, rollout.scores, 0.1, settings);
    const real = [0, 1, 3, 4, 5].map((i) => t.rewards[i]);
    const mean = real.reduce((a, x) => a + x, 0) / 5;
    // raw rewards [−0.05, 1, 0, −0.1, 2] have mean 0.57
    expect(mean).toBeCloseTo(0.57, 6);
    expect(real.reduce((a, x) => a + (x - mean) ** 2, 0) / 4).toBeCloseTo(1, 5);
    expect(t.rewards[2]).toBe(0);
  });
});

describe('rollout statistics', () => {
  test('explained variance 1 − Var(R − V)/Var(R) over the mask', () => {
    // residual [0, 0, 1]: Var 2/9; Var(R) = 2/3 -> 1 − 1/3
    const mask = Uint8Array.from([1, 1, 1, 0]);
    expect(
      explainedVariance(Float32Array.from([1, 2, 2, 7]), Float32Array.from([1, 2, 3, -5]), mask),
    ).toBeCloseTo(2 / 3, 6);
    expect(
      explainedVariance(Float32Array.from([0, 0]), Float32Array.from([1, 1]), Uint8Array.from([1, 1])),
    ).toBe(0);
  });

  test('sequence entropy: mean over responses of Σ −log π', () => {
    const logprobs = Float32Array.from([-1, -2, -9, -0.5, -0.5, -1]);
    expect(sequenceEntropy(logprobs, Uint8Array.from([1, 1, 0, 1, 1, 1]), 2)).toBeCloseTo(2.5, 6);
  });
});
