// The critic-free loss terms run through ONNX Runtime against hand-computed values.
import { Graph, type Tensor } from '@rlhf/graph';
import { createRuntime, float32, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { aggregateTokenLoss, clippedSurrogateTokens, k3KlTokens, type LossAggregation } from './losses.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

/** Runs `build` on float32 [rows, N] inputs and returns its named outputs as arrays. */
async function evaluate(
  shape: [number, number],
  inputs: Record<string, number[]>,
  build: (x: Record<string, Tensor>) => Record<string, Tensor>,
): Promise<Record<string, number[]>> {
  const g = new Graph('grpo_loss_test');
  const xs = Object.fromEntries(Object.keys(inputs).map((name) => [name, g.input(name, 'float32', shape)]));
  for (const [name, t] of Object.entries(build(xs))) g.output(t, name);
  const session = await runtime.createSession(g.toBytes());
  const feeds = Object.fromEntries(Object.entries(inputs).map(([name, v]) => [name, float32(shape, v)]));
  const out = await session.run(feeds);
  await session.release();
  return Object.fromEntries(
    Object.entries(out).map(([name, t]) => [name, Array.from(t.data as Float32Array)]),
  );
}

const close = (actual: number[], expected: number[]) => {
  expect(actual.length).toBe(expected.length);
  for (const [i, x] of expected.entries()) expect(actual[i]).toBeCloseTo(x, 5);
};

describe('clippedSurrogateTokens', () => {
  // Four tokens: ratios 1.25 (A 1), 1.25 (A −1), 0.7 (A −1), 0.9 (A −1).
  const old = [-1, -2, -0.5, -3];
  const ratios = [1.25, 1.25, 0.7, 0.9];
  const inputs = {
    logprobs: ratios.map((r, i) => old[i] + Math.log(r)),
    old,
    advantages: [1, -1, -1, -1],
  };
  const run = (low: number, high: number) =>
    evaluate([1, 4], inputs, (x) => {
      const out = clippedSurrogateTokens(x.logprobs, x.old, x.advantages, low, high);
      return { loss: out.loss, low: out.clippedLow, high: out.clippedHigh };
    });

  test('clip-higher: a ratio above 1 + ε_low but below 1 + ε_high is not clipped', async () => {
    // ε_low 0.2, ε_high 0.28: token 0, ρ 1.25 < 1.28 with A = 1: max(−1.25, −1.25) = −1.25, not clipped.
    // Token 1, ρ 1.25 with A = −1: max(1.25, 1.25) = 1.25 (a negative advantage is never cut above).
    // Token 2, ρ 0.7 < 0.8 with A = −1: max(0.7, 0.8) = 0.8, clipped low. Token 3, ρ 0.9: 0.9.
    const higher = await run(0.2, 0.28);
    close(higher.loss, [-1.25, 1.25, 0.8, 0.9]);
    close(higher.low, [0, 0, 1, 0]);
    close(higher.high, [0, 0, 0, 0]);
    // Symmetric ε = 0.2: token 0 is clipped at 1.2: max(−1.25, −1.2) = −1.2.
    const symmetric = await run(0.2, 0.2);
    close(symmetric.loss, [-1.2, 1.25, 0.8, 0.9]);
    close(symmetric.high, [1, 0, 0, 0]);
  });
});

test('k3 KL per token: π_ref/π − log(π_ref/π) − 1', async () => {
  // log π − log π_ref = 0.5: e^−0.5 − 1 + 0.5; equal log-probs: 0.
  const out = await evaluate([1, 2], { lp: [-1, -2], ref: [-1.5, -2] }, (x) => ({
    kl: k3KlTokens(x.lp, x.ref),
  }));
  close(out.kl, [Math.exp(-0.5) - 0.5, 0]);
});

describe('aggregateTokenLoss', () => {
  // Rows [1, 2, 3, ·], [4, ·, ·, ·] and a dropped row (all masked; its large values must not leak).
  const loss = [1, 2, 3, 50, 4, 60, 70, 80, 100, 100, 100, 100];
  const mask = [1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0];
  const aggregate = async (mode: LossAggregation) =>
    (
      await evaluate([3, 4], { loss, mask }, (x) => ({
        out: aggregateTokenLoss(x.loss, x.mask, mode, { maxNewTokens: 4, rows: 3 }),
      }))
    ).out;

  test('token_mean: every token weighs the same (DAPO)', async () => {
    close(await aggregate('token_mean'), [(1 + 2 + 3 + 4) / 4]); // 2.5
  });
  test('sequence_mean: every response weighs the same (GRPO), dropped rows do not count', async () => {
    close(await aggregate('sequence_mean'), [(2 + 4) / 2]); // row means 2 and 4 → 3
  });
  test('token_sum_norm: the token sum over maxNewTokens × rows (Dr. GRPO)', async () => {
    close(await aggregate('token_sum_norm'), [10 / 12]);
  });
  test('a minibatch of dropped rows only gives 0, not NaN', async () => {
    const out = await evaluate([1, 2], { loss: [5, 6], mask: [0, 0] }, (x) => ({
      t: aggregateTokenLoss(x.loss, x.mask, 'token_mean', { maxNewTokens: 2, rows: 1 }),
      s: aggregateTokenLoss(x.loss, x.mask, 'sequence_mean', { maxNewTokens: 2, rows: 1 }),
      n: aggregateTokenLoss(x.loss, x.mask, 'token_sum_norm', { maxNewTokens: 2, rows: 1 }),
    }));
    close([...out.t, ...out.s, ...out.n], [0, 0, 0]);
  });
});
