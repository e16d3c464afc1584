import { Graph, grad, type Tensor } from '@rlhf/graph';
import { createRuntime, float64, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { approxKlK3, clippedValueLoss, entropyBonus, ppoLoss, ppoPolicyLoss } from './losses.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

/** Runs `build` on float64 [1, 4] inputs and returns its named outputs as arrays. */
async function evaluate(
  inputs: Record<string, number[]>,
  build: (x: Record<string, Tensor>) => Record<string, Tensor>,
): Promise<Record<string, number[]>> {
  const g = new Graph('loss_test');
  const xs = Object.fromEntries(Object.keys(inputs).map((name) => [name, g.input(name, 'float64', [1, 4])]));
  for (const [name, t] of Object.entries(build(xs))) g.output(t, name);
  const session = await runtime.createSession(g.toBytes());
  const feeds = Object.fromEntries(Object.entries(inputs).map(([name, v]) => [name, float64([1, 4], v)]));
  const out = await session.run(feeds);
  await session.release();
  return Object.fromEntries(
    Object.entries(out).map(([name, t]) => [name, Array.from(t.data as Float64Array)]),
  );
}

const close = (actual: number[], expected: number[]) => {
  expect(actual.length).toBe(expected.length);
  for (const [i, x] of expected.entries()) expect(actual[i]).toBeCloseTo(x, 10);
};

// Three response tokens and one padding position (its values are large so a leak would show).
const mask = [1, 1, 1, 0];
const ratios = [1.5, 0.9, 0.5];
const oldLogprobs = [-1, -2, -0.5, -3];
const logprobs = [...ratios.map((r, i) => oldLogprobs[i] + Math.log(r)), 40];

describe('ppoPolicyLoss', () => {
  test('clipped surrogate on hand-computed tokens, and where its gradient vanishes', async () => {
    const out = await evaluate({ logprobs, oldLogprobs, advantages: [1, -2, -1, 5], mask }, (x) => {
      const { loss, clipFrac } = ppoPolicyLoss(x.logprobs, x.oldLogprobs, x.advantages, x.mask, 0.2);
      return { loss, clipFrac, grad: grad(loss, [x.logprobs])[0] };
    });
    // t0: r 1.5, A 1:  max(−1.5, −1.2) = −1.2 (clipped)
    // t1: r 0.9, A −2: max(1.8, 1.8) = 1.8   (inside the clip range)
    // t2: r 0.5, A −1: max(0.5, 0.8) = 0.8   (clipped)
    close(out.loss, [(-1.2 + 1.8 + 0.8) / 3]);
    close(out.clipFrac, [2 / 3]);
    // d/dlogπ: clipped tokens 0; t1: −A·r / 3 = 1.8 / 3; padding 0
    close(out.grad, [0, 0.6, 0, 0]);
  });
});

describe('clippedValueLoss', () => {
  test('0.5·max((V − R)², (V_clip − R)²) on hand-computed tokens', async () => {
    const inputs = { values: [1, 2, 0.5, 9], oldValues: [0.5, 2.5, 0.4, 0], returns: [2, 3, 0, 7], mask };
    const out = await evaluate(inputs, (x) => {
      const { loss, clipFrac } = clippedValueLoss(x.values, x.oldValues, x.returns, x.mask, 0.2);
      return { loss, clipFrac, grad: grad(loss, [x.values])[0] };
    });
    // t0: V_clip = 0.5 + 0.2 = 0.7: (1 − 2)² = 1 < (0.7 − 2)² = 1.69 (clipped)
    // t1: V_clip = 2.5 − 0.2 = 2.3: (2 − 3)² = 1 > (2.3 − 3)² = 0.49
    // t2: V_clip = V = 0.5: 0.25 both
    close(out.loss, [(0.5 * (1.69 + 1 + 0.25)) / 3]);
    close(out.clipFrac, [1 / 3]);
    // d/dV: t0 clipped 0; t1 (V − R)/3 = −1/3; t2 0.5/3
    close(out.grad, [0, -1 / 3, 0.5 / 3, 0]);
  });
});

describe('entropyBonus, approxKlK3, ppoLoss', () => {
  test('masked means and the combined objective', async () => {
    const out = await evaluate(
      {
        logprobs,
        oldLogprobs,
        entropy: [0.5, 1, 1.5, 100],
        mask,
        policy: [0.5, 0, 0, 0],
        value: [2, 0, 0, 0],
      },
      (x) => ({
        bonus: entropyBonus(x.entropy, x.mask),
        approxKl: approxKlK3(x.logprobs, x.oldLogprobs, x.mask),
        total: ppoLoss(x.policy, x.value, x.entropy, 0.1, 0.01),
      }),
    );
    close(out.bonus, [1]);
    // k3 = (r − 1) − log r per token
    close(out.approxKl, [ratios.reduce((s, r) => s + (r - 1 - Math.log(r)), 0) / 3]);
    // 0.5 + 0.1·2 − 0.01·0.5 at t0 (elementwise here, scalars in training)
    close(out.total.slice(0, 1), [0.5 + 0.2 - 0.005]);
  });
});
