import { expect, test } from 'vitest';
import { batchNormalise, reinforcePpAdvantages, rewardToGo } from './reinforce-pp.js';

const close = (actual: ArrayLike<number>, expected: number[], digits = 5) => {
  expect(actual.length).toBe(expected.length);
  expected.forEach((x, i) => {
    expect(actual[i]).toBeCloseTo(x, digits);
  });
};

test('reward-to-go: the discounted sum to the end of each row, skipping padding', () => {
  // γ = 0.5 over [1, 2, 3]: 3; 2 + 0.5·3 = 3.5; 1 + 0.5·3.5 = 2.75. Row 1 [4, pad, 1] with γ = 1: 5, 0, 1.
  close(rewardToGo([1, 2, 3, 4, 9, 1], [1, 1, 1, 1, 0, 1], 3, 0.5), [2.75, 3.5, 3, 4.5, 0, 1]);
  close(rewardToGo([1, 2, 3], [1, 1, 1], 3), [6, 5, 3]);
});

test('batch normalisation: mean and unbiased std over every real token of the batch', () => {
  // [1, 2, 3] (one position masked): mean 2, unbiased var 1.
  close(batchNormalise([1, 50, 2, 3], [1, 0, 1, 1]), [-1, 0, 0, 1]);
  // One token: only centred.
  close(batchNormalise([4, 7], [0, 1]), [0, 0]);
});

test('REINFORCE++: sequence reward at the last token, k1 KL at each, returns to the end, normalised over the batch', () => {
  // Row 0: tokens 2 (third padding), score 1, log π_old − log π_ref = [0.5, 0]. Row 1: 3 tokens, score 0, k1 [0, 1, 0].
  // β = 0.1: rewards row 0 [−0.05, 1], row 1 [0, −0.1, 0]; returns row 0 [0.95, 1], row 1 [−0.1, −0.1, 0].
  // Batch of 5 tokens: mean 1.75 / 5 = 0.35; deviations 0.6, 0.65, −0.45, −0.45, −0.35; Σ² = 1.31; var 1.31 / 4.
  const std = Math.sqrt(1.31 / 4 + 1e-8);
  const input = {
    scores: [1, 0],
    logprobs: Float32Array.from([-1, -2, 0, -1, -1, -1]),
    refLogprobs: Float32Array.from([-1.5, -2, 0, -1, -2, -1]),
    mask: Float32Array.from([1, 1, 0, 1, 1, 1]),
    beta: 0.1,
  };
  close(reinforcePpAdvantages(input), [0.6 / std, 0.65 / std, 0, -0.45 / std, -0.45 / std, -0.35 / std]);
  // Row 1 left out of the update (dynamic sampling): only row 0's returns [0.95, 1] set the statistics:
  // mean 0.975, deviations ∓0.025, unbiased var 0.00125 → ∓1/√2; row 1 gets 0.
  const s = Math.sqrt(0.00125 + 1e-8);
  close(reinforcePpAdvantages({ ...input, mask: Float32Array.from([1, 1, 0, 0, 0, 0]) }), [
    -0.025 / s,
    0.025 / s,
    0,
    0,
    0,
    0,
  ]);
  // β = 0: the return at every token is the sequence's reward; [1, 1, 0, 0, 0] → mean 0.4, var 0.3.
  const v = Math.sqrt(0.3 + 1e-8);
  close(reinforcePpAdvantages({ ...input, beta: 0 }), [0.6 / v, 0.6 / v, 0, -0.4 / v, -0.4 / v, -0.4 / v]);
  // No row in the update: all 0.
  close(reinforcePpAdvantages({ ...input, mask: new Float32Array(6) }), [0, 0, 0, 0, 0, 0]);
});
