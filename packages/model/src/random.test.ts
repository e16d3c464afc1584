import { describe, expect, it } from 'vitest';
import { createRng, xoshiro128StarStar } from './random.js';

describe('rng', () => {
  it('xoshiro128** matches the reference algorithm on state {1, 2, 3, 4}', () => {
    // Worked by hand from prng.di.unimi.it/xoshiro128starstar.c: rotl(s1·5, 7)·9, then the state update.
    const next = xoshiro128StarStar(1, 2, 3, 4);
    expect([next(), next(), next()]).toEqual([11520, 0, 5927040]);
  });

  it('gives uniform [0, 1) and standard normals, reproducibly', () => {
    const rng = createRng(42);
    const n = 200_000;
    let sum = 0;
    let min = 1;
    let max = 0;
    for (let i = 0; i < n; i++) {
      const u = rng.uniform();
      sum += u;
      min = Math.min(min, u);
      max = Math.max(max, u);
    }
    expect(sum / n).toBeCloseTo(0.5, 2);
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    let normalSum = 0;
    let normalSq = 0;
    for (let i = 0; i < n; i++) {
      const z = rng.normal();
      normalSum += z;
      normalSq += z * z;
    }
    const mean = normalSum / n;
    const std = Math.sqrt(normalSq / n - mean * mean);
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(std).toBeCloseTo(1, 2);
    const again = createRng(42);
    const other = createRng(43);
    const first = again.nextUint32();
    expect(first).toBe(createRng(42).nextUint32());
    expect(other.nextUint32()).not.toBe(first);
    expect(createRng(42, 'a').nextUint32()).not.toBe(createRng(42, 'b').nextUint32());
  });
});
