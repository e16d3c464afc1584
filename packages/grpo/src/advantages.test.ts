import { expect, test } from 'vitest';
import { grpoAdvantages, rlooAdvantages, zeroSpreadGroups } from './advantages.js';

const close = (actual: ArrayLike<number>, expected: number[]) =>
  expected.forEach((x, i) => {
    expect(actual[i]).toBeCloseTo(x, 6);
  });

test('GRPO: group-normalised rewards; Dr. GRPO without the std; all-equal groups and G = 1 get 0', () => {
  // Group [1, 0, 0, 1]: mean 0.5, population std 0.5. Group [2, 2, 2, 2]: no spread.
  close(grpoAdvantages([1, 0, 0, 1, 2, 2, 2, 2], 4), [1, -1, -1, 1, 0, 0, 0, 0]);
  close(grpoAdvantages([1, 0, 0, 1], 4, false), [0.5, -0.5, -0.5, 0.5]);
  // Group [3, 0, 0]: mean 1, std sqrt(2): (3 − 1)/√2, −1/√2, −1/√2.
  close(grpoAdvantages([3, 0, 0], 3), [2 / Math.SQRT2, -1 / Math.SQRT2, -1 / Math.SQRT2]);
  close(grpoAdvantages([5, 7], 1), [0, 0]);
  expect(() => grpoAdvantages([1, 2, 3], 2)).toThrow(/whole groups/);
});

test('RLOO: each reward minus the mean of the others in its group', () => {
  // [3, 0, 0]: 3 − 0 = 3; 0 − (3 + 0)/2 = −1.5 twice.
  close(rlooAdvantages([3, 0, 0, 1, 1, 1], 3), [3, -1.5, -1.5, 0, 0, 0]);
  expect(() => rlooAdvantages([1, 2], 1)).toThrow(/G >= 2/);
  expect(zeroSpreadGroups([3, 0, 0, 1, 1, 1], 3)).toBe(0.5);
});
