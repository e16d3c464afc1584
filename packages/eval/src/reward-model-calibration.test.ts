// Calibration of the sort-digits fixture reward model on held-out preference pairs (real scoring on the CPU EP),
// cross-checked against @rlhf/reward-model's own held-out evaluation of the same rows.
import { generatePreferenceRows, generateRankedRows } from '@rlhf/examples';
import { rewardModel } from '@rlhf/ppo/testing';
import { evaluateRewardModel } from '@rlhf/reward-model';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import type { ModelWeights } from '@rlhf/stage-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rewardModelCalibration, scorePreferencePairs } from './reward-model-calibration.js';

let runtime: Runtime;
let rm: ModelWeights;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  rm = await rewardModel(runtime);
}, 1_200_000);
afterAll(() => runtime.close());

describe('rewardModelCalibration on sort-digits', () => {
  it('measures held-out pair accuracy, equal to the reward-model stage’s own evaluation', async () => {
    const rows = generatePreferenceRows(400, { seed: 4242 });
    const result = await rewardModelCalibration({ runtime, model: rm, rows, buckets: 4, resamples: 1000 });
    const reference = await evaluateRewardModel({ runtime, model: rm, rows });
    console.log(
      `fixture RM on 400 held-out pairs: accuracy ${result.accuracy.toFixed(3)} ` +
        `[${result.interval.lower.toFixed(3)}, ${result.interval.upper.toFixed(3)}], ECE ${result.expectedCalibrationError.toFixed(3)}, ` +
        `buckets ${result.buckets.map((b) => `${b.accuracy.toFixed(2)}/${b.predicted.toFixed(2)}`).join(' ')}`,
    );
    expect(result.pairs).toBe(400);
    expect(result.skipped).toBe(0);
    expect(result.accuracy).toBeCloseTo(reference.accuracy, 9); // no exact score ties on these rows
    expect(result.meanMargin).toBeCloseTo(reference.margin, 5);
    expect(result.interval.lower).toBeGreaterThan(0.5);
    // A useful reward model is surer where its margin is larger.
    expect(result.buckets.at(-1)!.accuracy).toBeGreaterThan(result.buckets[0].accuracy);
  }, 600_000);
  it('scores every C(K,2) pair of a ranking, best → worst', async () => {
    const rows = generateRankedRows(10, { seed: 5, k: 4 });
    const scores = await scorePreferencePairs({ runtime, model: rm, rows });
    expect(scores.chosen).toHaveLength(60);
    expect(scores.rejected).toHaveLength(60);
  }, 600_000);
  it('refuses a model without a scalar head', async () => {
    const policy = { ...rm, config: { ...rm.config, scalarHead: false } };
    await expect(scorePreferencePairs({ runtime, model: policy, rows: [] })).rejects.toThrow(
      /no scalar head/,
    );
  });
});
