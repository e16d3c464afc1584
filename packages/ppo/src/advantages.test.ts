import { describe, expect, test } from 'vitest';
import { gae, arrayMaskedMean, arrayMaskedVar, whiten } from './advantages.js';

const close = (actual: ArrayLike<number>, expected: number[]) => {
  expect(actual.length).toBe(expected.length);
  for (const [i, x] of expected.entries()) expect(actual[i]).toBeCloseTo(x, 6);
};

describe('gae', () => {
  test('γ = 1, λ = 0.95 on a 3-token response followed by padding', () => {
    const { advantages, returns } = gae({
      rewards: new Float32Array([0, 0, 1, 5]), // the 5 and 9 sit on padding and must not leak in
      values: new Float32Array([0.5, 0.4, 0.3, 9]),
      mask: new Uint8Array([1, 1, 1, 0]),
      shape: [1, 4],
      gamma: 1,
      lam: 0.95,
    });
    // δ2 = 1 + 0 - 0.3 = 0.7           (no bootstrap after the last token)
    // δ1 = 0 + 0.3 - 0.4 = -0.1
    // δ0 = 0 + 0.4 - 0.5 = -0.1
    // A2 = 0.7; A1 = -0.1 + 0.95·0.7 = 0.565; A0 = -0.1 + 0.95·0.565 = 0.43675
    close(advantages, [0.43675, 0.565, 0.7, 0]);
    // R = A + V = [0.93675, 0.965, 1.0]
    close(returns, [0.93675, 0.965, 1, 0]);
  });

  test('γ < 1 discounts, rows are independent, prompt positions are skipped', () => {
    const { advantages, returns } = gae({
      rewards: new Float64Array([1, 2, /* row 1 */ 7, 1]),
      values: new Float64Array([0, 0, /* row 1 */ 7, 0.5]),
      mask: new Uint8Array([1, 1, /* row 1: prompt, response */ 0, 1]),
      shape: [2, 2],
      gamma: 0.5,
      lam: 0.5,
    });
    // row 0: δ1 = 2 - 0 = 2, δ0 = 1 + 0.5·0 - 0 = 1; A1 = 2, A0 = 1 + 0.25·2 = 1.5
    // row 1: only t = 1: δ = 1 - 0.5 = 0.5 = A, R = 1
    close(advantages, [1.5, 2, 0, 0.5]);
    close(returns, [1.5, 2, 0, 1]);
  });

  test('refuses inconsistent shapes', () => {
    const x = new Float32Array(4);
    expect(() =>
      gae({ rewards: x, values: x, mask: new Uint8Array(3), shape: [2, 2], gamma: 1, lam: 1 }),
    ).toThrow(RangeError);
  });
});

describe('whiten', () => {
  test('whitens over the mask with the unbiased variance', () => {
    const x = new Float32Array([2, 4, 6, 100]);
    const mask = new Uint8Array([1, 1, 1, 0]);
    // mean = 4, unbiased var = (4 + 0 + 4) / 2 = 4, std = 2 (+1e-8 inside the sqrt)
    expect(arrayMaskedMean(x, mask)).toBe(4);
    expect(arrayMaskedVar(x, mask)).toBe(4);
    expect(arrayMaskedVar(x, mask, false)).toBeCloseTo(8 / 3, 12);
    close(whiten(x, mask), [-1, 0, 1, 0]);
    // shiftMean = false adds the mean back: [-1, 0, 1] + 4
    close(whiten(x, mask, false), [3, 4, 5, 0]);
  });

  test('without a mask every position counts', () => {
    // [1, 3]: mean 2, unbiased var ((1-2)² + (3-2)²) / 1 = 2, std √2
    close(whiten(new Float64Array([1, 3])), [-1 / Math.SQRT2, 1 / Math.SQRT2]);
  });

  test('refuses fewer than two positions', () => {
    expect(() => whiten(new Float32Array([1, 2]), new Uint8Array([1, 0]))).toThrow('at least 2 positions');
    expect(() => arrayMaskedMean(new Float32Array([1]), new Uint8Array([0]))).toThrow(
      'no unmasked positions',
    );
  });
});
