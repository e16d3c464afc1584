import { expect, test } from 'vitest';
test('workspace wiring', () => {
  expect(1 + 1).toBe(2);
});
