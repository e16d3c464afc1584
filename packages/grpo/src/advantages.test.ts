import { expect, test } from 'vitest';
import {
  flatGroups,
  grpoAdvantages,
  meanGroupStd,
  perTokenAdvantages,
  rlooAdvantages,
  zeroSpreadGroups,
} from './advantages.js';

const close = (actual: ArrayLike<number>, expected: number[]) => {
  expect(actual.length).toBe(expected.length);
  expected.forEach((x, i) => {
    expect(actual[i]).toBeCloseTo(x, 6);
  });
};

test('GRPO: group-normalised rewards; Dr. GRPO without the std; all-equal groups and G = 1 get 0', () => {
  // Group [1, 0, 0, 1]: mean 0.5, population std 0.5. Group [2, 2, 2, 2]: no spread.
  close(grpoAdvantages([1, 0, 0, 1, 2, 2, 2, 2], 4), [1, -1, -1, 1, 0, 0, 0, 0]);
  close(grpoAdvantages([1, 0, 0, 1], 4, false), [0.5, -0.5, -0.5, 0.5]);
  // Group [3, 0, 0]: mean 1, std sqrt(2): (3 − 1)/√2, −1/√2, −1/√2.
  close(grpoAdvantages([3, 0, 0], 3), [2 / Math.SQRT2, -1 / Math.SQRT2, -1 / Math.SQRT2]);
  // G = 1: each response is its own group, its own mean: 0 with or without the std.
  close(grpoAdvantages([5, 7], 1), [0, 0]);
  close(grpoAdvantages([5, 7], 1, false), [0, 0]);
  // All equal, Dr. GRPO too: r − mean = 0.
  close(grpoAdvantages([0.3, 0.3, 0.3], 3, false), [0, 0, 0]);
  expect(() => grpoAdvantages([1, 2, 3], 2)).toThrow(/whole groups/);
});

test('RLOO: each reward minus the mean of the others in its group', () => {
  // [3, 0, 0]: 3 − 0 = 3; 0 − (3 + 0)/2 = −1.5 twice. [1, 1, 1]: 0.
  close(rlooAdvantages([3, 0, 0, 1, 1, 1], 3), [3, -1.5, -1.5, 0, 0, 0]);
  // G = 2: r_1 − r_2 and r_2 − r_1. [4, 1, 2, 6]: 3, −3, −4, 4.
  close(rlooAdvantages([4, 1, 2, 6], 2), [3, -3, -4, 4]);
  // Leave-one-out = G/(G − 1) × (r − group mean): [3, 0, 0] mean 1 → 1.5 × [2, −1, −1].
  close(rlooAdvantages([3, 0, 0], 3), [3, -1.5, -1.5]);
  expect(() => rlooAdvantages([1, 2], 1)).toThrow(/G >= 2/);
});

test('flat groups, their share, the mean within-group std', () => {
  expect(flatGroups([3, 0, 0, 1, 1, 1], 3)).toEqual([false, true]);
  expect(zeroSpreadGroups([3, 0, 0, 1, 1, 1], 3)).toBe(0.5);
  expect(flatGroups([5, 7], 1)).toEqual([true, true]);
  // Groups [1, 0, 0, 1] (population std 0.5) and [2, 2, 2, 2] (0): mean 0.25.
  expect(meanGroupStd([1, 0, 0, 1, 2, 2, 2, 2], 4)).toBeCloseTo(0.25, 12);
});

test('sequence advantages broadcast over each row’s real tokens', () => {
  // Two rows of width 3: row 0 has two tokens, row 1 three; padding gets 0.
  close(perTokenAdvantages([2, -1], [1, 1, 0, 1, 1, 1], 3), [2, 2, 0, -1, -1, -1]);
  expect(() => perTokenAdvantages([1], [1, 1], 3)).toThrow(/not 1 × 3/);
});
