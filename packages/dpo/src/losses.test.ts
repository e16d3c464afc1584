import { Graph, grad, reduceSum, type Tensor } from '@rlhf/graph';
import { createRuntime, float64, type Runtime } from '@rlhf/runtime';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  dpoLogits,
  hingeLoss,
  ipoLoss,
  plackettLuceLoss,
  rrhfRankLoss,
  sigmoidLoss,
  simpoLoss,
} from './losses.js';

let runtime: Runtime;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
});
afterAll(() => runtime.close());

/** Runs `build` on float64 [3] inputs (three pairs) and returns its named outputs as arrays. */
async function evaluate(
  inputs: Record<string, number[]>,
  build: (x: Record<string, Tensor>) => Record<string, Tensor>,
): Promise<Record<string, number[]>> {
  const g = new Graph('dpo_loss_test');
  const xs = Object.fromEntries(Object.keys(inputs).map((name) => [name, g.input(name, 'float64', [3])]));
  for (const [name, t] of Object.entries(build(xs))) g.output(t, name);
  const session = await runtime.createSession(g.toBytes());
  const out = await session.run(
    Object.fromEntries(Object.entries(inputs).map(([name, v]) => [name, float64([3], v)])),
  );
  await session.release();
  return Object.fromEntries(
    Object.entries(out).map(([name, t]) => [name, Array.from(t.data as Float64Array)]),
  );
}

const close = (actual: number[], expected: number[]) => {
  expect(actual.length).toBe(expected.length);
  for (const [i, x] of expected.entries()) expect(actual[i]).toBeCloseTo(x, 10);
};
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

// Three pairs of sequence log-probs: policy chosen/rejected, reference chosen/rejected.
const pairs = {
  chosen: [-4, -10, -3],
  rejected: [-6, -9, -3],
  refChosen: [-5, -9, -2],
  refRejected: [-5, -9, -4],
};
// z = (c − rc) − (r − rr): (1) − (−1) = 2; (−1) − (0) = −1; (−1) − (1) = −2
const z = [2, -1, -2];

describe('DPO family losses on hand-computed pairs', () => {
  test('dpoLogits and the sigmoid loss, with and without label smoothing', async () => {
    const out = await evaluate(pairs, (x) => {
      const logits = dpoLogits(x.chosen, x.rejected, x.refChosen, x.refRejected);
      return { z: logits, plain: sigmoidLoss(logits, 0.5), smooth: sigmoidLoss(logits, 0.5, 0.1) };
    });
    close(out.z, z);
    // −log σ(βz), β = 0.5
    close(
      out.plain,
      z.map((v) => -Math.log(sigmoid(0.5 * v))),
    );
    // −0.9 log σ(βz) − 0.1 log σ(−βz)
    close(
      out.smooth,
      z.map((v) => -0.9 * Math.log(sigmoid(0.5 * v)) - 0.1 * Math.log(sigmoid(-0.5 * v))),
    );
    // z = 2, β = 0.5: −log σ(1) = log(1 + e^−1) = 0.31326168751822286
    expect(out.plain[0]).toBeCloseTo(0.31326168751822286, 12);
  });

  test('IPO: (z − 1/(2β))²; hinge: max(0, 1 − βz)', async () => {
    const out = await evaluate({ z }, (x) => ({ ipo: ipoLoss(x.z, 0.25), hinge: hingeLoss(x.z, 0.25) }));
    // 1/(2β) = 2: (0)², (−3)², (−4)²
    close(out.ipo, [0, 9, 16]);
    // 1 − 0.25 z: 0.5, 1.25, 1.5
    close(out.hinge, [0.5, 1.25, 1.5]);
    const strong = await evaluate({ z }, (x) => ({ hinge: hingeLoss(x.z, 1) }));
    close(strong.hinge, [0, 2, 3]); // z = 2 is past the margin: no loss
  });

  test('SimPO: −log σ(β (mean_w − mean_l) − γ)', async () => {
    const out = await evaluate({ w: [-0.5, -1, -2], l: [-1, -1, -0.5] }, (x) => ({
      loss: simpoLoss(x.w, x.l, 2, 0.5),
    }));
    // β Δ − γ: 2·0.5 − 0.5 = 0.5; 0 − 0.5 = −0.5; 2·(−1.5) − 0.5 = −3.5
    close(
      out.loss,
      [0.5, -0.5, -3.5].map((v) => -Math.log(sigmoid(v))),
    );
  });

  test('at the reference policy (z = 0) the DPO gradient is −β/2 on log π(y_w) and +β/2 on log π(y_l)', async () => {
    const atRef = {
      chosen: [-4, -2, -7],
      rejected: [-3, -8, -1],
      refChosen: [-4, -2, -7],
      refRejected: [-3, -8, -1],
    };
    const beta = 0.3;
    const out = await evaluate(atRef, (x) => {
      const loss = sigmoidLoss(dpoLogits(x.chosen, x.rejected, x.refChosen, x.refRejected), beta);
      // The sum over pairs: each pair's gradient is its own.
      const [dChosen, dRejected] = grad(reduceSum(loss), [x.chosen, x.rejected]);
      return { loss, dChosen, dRejected };
    });
    close(out.loss, [Math.LN2, Math.LN2, Math.LN2]);
    // ∂/∂ log π(y_w) of −log σ(β z) = −β σ(−β z) = −β/2 at z = 0 (Rafailov et al. 2023 §4, the gradient's weight).
    close(out.dChosen, [-beta / 2, -beta / 2, -beta / 2]);
    close(out.dRejected, [beta / 2, beta / 2, beta / 2]);
  });

  test('RRHF: max(0, p_worse − p_better) per pair', async () => {
    const out = await evaluate({ better: [-0.5, -2, -1], worse: [-1, -1, -1] }, (x) => ({
      loss: rrhfRankLoss(x.better, x.worse),
    }));
    close(out.loss, [0, 1, 0]);
  });

  test('PRO: Plackett–Luce over each ranking, gaps at the end of shorter rankings left out', async () => {
    const g = new Graph('pro_test');
    const scores = g.input('scores', 'float64', [2, 3]);
    const slots = g.input('slots', 'float64', [2, 3]);
    const loss = plackettLuceLoss(scores, slots, 3);
    g.output(loss, 'loss');
    g.output(grad(reduceSum(loss), [scores])[0], 'grad');
    const session = await runtime.createSession(g.toBytes());
    const out = await session.run({
      // Ranking 0: three responses scored 2, 1, 0. Ranking 1: two responses (3, 1), then a gap (score 50).
      scores: float64([2, 3], [2, 1, 0, 3, 1, 50]),
      slots: float64([2, 3], [1, 1, 1, 1, 1, 0]),
    });
    await session.release();
    const e = Math.exp;
    // Ranking 0: mean of −log(e²/(e²+e¹+e⁰)) and −log(e¹/(e¹+e⁰)); ranking 1: −log(e³/(e³+e¹)).
    const first = (-Math.log(e(2) / (e(2) + e(1) + e(0))) - Math.log(e(1) / (e(1) + e(0)))) / 2;
    const second = -Math.log(e(3) / (e(3) + e(1)));
    close(Array.from(out.loss.data as Float64Array), [first, second]);
    // The gap's score has no gradient; the best response's score is pushed up, the worst down.
    const d = Array.from(out.grad.data as Float64Array);
    expect(d[5]).toBe(0);
    expect(d[0]).toBeLessThan(0);
    expect(d[2]).toBeGreaterThan(0);
    expect(d[3]).toBeCloseTo(-(1 - e(3) / (e(3) + e(1))), 10);
  });
});
