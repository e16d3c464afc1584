import { resolveGrpoConfig } from '@rlhf/contracts';
import { expect, test } from 'vitest';
import { rolloutK3, rolloutTensors, sequenceKl, tokenMean } from './rollout.js';

// Two groups of G = 2, width 2: group 0 rewards [1, 0] (spread), group 1 [1, 1] (flat).
const scores = [1, 0, 1, 1];
const responseMask = [
  [1, 1],
  [1, 0],
  [1, 1],
  [1, 1],
];
const old = [
  [-1, -1],
  [-2, 0],
  [-1, -1],
  [-1, -1],
];
const ref = [
  [-1.5, -1],
  [-2, 0],
  [-1, -1],
  [-1, -2],
];
const config = (extra: object) => resolveGrpoConfig({ promptsPerIteration: 2, groupSize: 2, ...extra });

test('GRPO advantages broadcast over tokens; dynamic sampling masks the flat group’s rows', () => {
  const all = rolloutTensors({ config: config({}), scores, responseMask, old, ref });
  // Group 0: mean 0.5, std 0.5 → [1, −1]; group 1 flat → 0. Row 1's padding gets 0.
  expect(Array.from(all.advantages)).toEqual([1, 1, -1, 0, 0, 0, 0, 0]);
  expect(Array.from(all.lossMask)).toEqual([1, 1, 1, 0, 1, 1, 1, 1]);
  expect([all.keptRows, all.droppedGroups, all.zeroStdGroups, all.rewardStd]).toEqual([4, 0, 0.5, 0.25]);
  const dynamic = rolloutTensors({
    config: config({ dynamicSampling: true }),
    scores,
    responseMask,
    old,
    ref,
  });
  expect(Array.from(dynamic.lossMask)).toEqual([1, 1, 1, 0, 0, 0, 0, 0]);
  expect([dynamic.keptRows, dynamic.droppedGroups]).toEqual([2, 0.5]);
});

test('REINFORCE++ gives a flat group advantages unless dynamic sampling drops it', () => {
  const pp = rolloutTensors({
    config: config({ advantage: 'reinforce_pp', beta: 0 }),
    scores,
    responseMask,
    old,
    ref,
  });
  // β = 0: every token's return is its row's reward; tokens [1, 1, 0, 1, 1, 1, 1]: mean 6/7.
  const mean = 6 / 7;
  const std = Math.sqrt((6 * (1 - mean) ** 2 + mean ** 2) / 6 + 1e-8);
  const hi = (1 - mean) / std;
  const lo = -mean / std;
  [hi, hi, lo, 0, hi, hi, hi, hi].forEach((x, i) => {
    expect(pp.advantages[i]).toBeCloseTo(x, 5);
  });
  const dropped = rolloutTensors({
    config: config({ advantage: 'reinforce_pp', beta: 0, dynamicSampling: true }),
    scores,
    responseMask,
    old,
    ref,
  });
  // Only group 0: tokens [1, 1, 0], mean 2/3, unbiased var 1/3.
  const s = Math.sqrt(1 / 3 + 1e-8);
  [1 / 3 / s, 1 / 3 / s, -2 / 3 / s, 0, 0, 0, 0, 0].forEach((x, i) => {
    expect(dropped.advantages[i]).toBeCloseTo(x, 5);
  });
});

test('host statistics: token mean, per-response k1 KL, rollout k3', () => {
  // −1 − 1 − 2 − 1 − 1 − 1 − 1 over 7 real tokens.
  expect(tokenMean(old, responseMask)).toBeCloseTo(-8 / 7, 12);
  expect(sequenceKl(old, ref, responseMask)).toEqual([0.5, 0, 0, 1]);
  // k3 at log π − log π_ref = 0.5 and 1 (two tokens), 0 at the other five of 7.
  const k3 = (d: number) => Math.exp(-d) - 1 + d;
  expect(rolloutK3(old, ref, responseMask)).toBeCloseTo((k3(0.5) + k3(1)) / 7, 12);
});
