import { expect, test } from 'vitest';
import { leftPad, longest } from './feeds.js';

test('longest and leftPad handle batches past V8 argument limits (batchSize 4096 × stepsPerCall 128 rows)', () => {
  const rows = Array.from({ length: 4096 * 128 }, (_, i) => (i === 77_777 ? [1, 2, 3] : [1]));
  expect(() => Math.max(...rows.map((r) => r.length))).toThrow(RangeError); // what the spread did before
  expect(longest(rows)).toBe(3);
  expect(longest([])).toBe(0);
  const { ids, mask } = leftPad([[5, 6], [7]], 0);
  expect(ids.dims).toEqual([2, 2]);
  expect(Array.from(ids.data as BigInt64Array, Number)).toEqual([5, 6, 0, 7]);
  expect(Array.from(mask.data as BigInt64Array, Number)).toEqual([1, 1, 0, 1]);
});
