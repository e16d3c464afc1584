import { describe, expect, test } from 'vitest';
import { klPenaltyRewards } from './rewards.js';

const close = (actual: ArrayLike<number>, expected: number[]) => {
  expect(actual.length).toBe(expected.length);
  for (const [i, x] of expected.entries()) expect(actual[i]).toBeCloseTo(x, 6);
};

describe('klPenaltyRewards', () => {
  // B = 2, T = 4. Row 0 ends with EOS at t = 2 (t = 3 is padding); row 1 fills all 4 tokens, no EOS.
  const input = {
    scores: new Float32Array([2, 1]),
    logprobs: new Float32Array([-1, -2, -0.5, -7, /* row 1 */ -1, -1, -1, -1]),
    refLogprobs: new Float32Array([-1.5, -1, -0.5, -3, /* row 1 */ -2, -1, -1, -0.5]),
    mask: new Uint8Array([1, 1, 1, 0, /* row 1 */ 1, 1, 1, 1]),
    beta: 0.1,
    truncated: new Uint8Array([0, 1]),
  };

  test('puts −β·kl on every response token and the score on the last one (the EOS)', () => {
    const out = klPenaltyRewards(input);
    // kl row 0 = [-1 - -1.5, -2 - -1, -0.5 - -0.5, masked] = [0.5, -1, 0, 0]
    // kl row 1 = [1, 0, 0, -0.5]
    close(out.kl, [0.5, -1, 0, 0, 1, 0, 0, -0.5]);
    // row 0: -0.1·[0.5, -1, 0] = [-0.05, 0.1, 0], score 2 on t = 2 (EOS); padding t = 3 gets 0
    // row 1: -0.1·[1, 0, 0, -0.5] = [-0.1, 0, 0, 0.05], score 1 on t = 3, no penalty given
    close(out.rewards, [-0.05, 0.1, 2, 0, -0.1, 0, 0, 1.05]);
    close(out.klSums, [-0.5, 0.5]);
    close(out.nonScoreRewards, [0.05, -0.05]);
    close(out.scores, [2, 1]);
  });

  test('subtracts missingEosPenalty from the score of a truncated response only', () => {
    const out = klPenaltyRewards({ ...input, missingEosPenalty: 0.5 });
    // row 1 score 1 - 0.5 = 0.5 on its last token: 0.05 + 0.5 = 0.55; row 0 (ended with EOS) unchanged
    close(out.rewards, [-0.05, 0.1, 2, 0, -0.1, 0, 0, 0.55]);
    close(out.scores, [2, 0.5]);
  });

  test('places the score after a masked-out prompt and before padding', () => {
    // Layout [prompt, prompt, response, response, pad]: the score lands on t = 3.
    const out = klPenaltyRewards({
      scores: new Float64Array([3]),
      logprobs: new Float64Array([-9, -9, -1, -1, -9]),
      refLogprobs: new Float64Array([0, 0, -1, -1.2, 0]),
      mask: new Float32Array([0, 0, 1, 1, 0]),
      beta: 0.5,
    });
    // kl = [0, 0, 0, 0.2, 0]; rewards t = 3: -0.5·0.2 + 3 = 2.9
    close(out.rewards, [0, 0, 0, 2.9, 0]);
  });

  test('refuses mismatched shapes and rows without response tokens', () => {
    expect(() => klPenaltyRewards({ ...input, refLogprobs: new Float32Array(7) })).toThrow(RangeError);
    expect(() => klPenaltyRewards({ ...input, mask: new Uint8Array([1, 1, 1, 0, 0, 0, 0, 0]) })).toThrow(
      'row 1 has no response tokens',
    );
  });
});
