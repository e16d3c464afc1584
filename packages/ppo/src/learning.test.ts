// Acceptance: PPO on sort-digits raises the ground-truth reward of the SFT policy while the KL penalty keeps the
// policy near the reference; without the penalty (β = 0) the KL grows much more. The SFT policy and the reward
// model come from the real stages (@rlhf/sft, @rlhf/reward-model), cached in os.tmpdir() after the first run.
import type { PpoConfigInput } from '@rlhf/contracts';
import { PpoMetrics } from '@rlhf/contracts';
import { generatePromptRows, groundTruthScore } from '@rlhf/examples';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import type { ModelWeights } from '@rlhf/stage-kit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { meanGroundTruth, ppoPrompts, rewardModel, sftPolicy } from './testing/sort-digits.js';
import { trainPpo } from './train.js';

const TARGET_KL = 1.5;
const FIXED_BETA = 1;
const config: PpoConfigInput = {
  iterations: 15,
  rolloutBatchSize: 64,
  minibatches: 2,
  ppoEpochs: 4,
  maxNewTokens: 12,
  lr: 5e-4,
  kl: { type: 'adaptive', coef: 0.3, target: TARGET_KL, horizon: 640 },
  seed: 42,
};
const heldOut = generatePromptRows(256, { seed: 1234 });
const EVAL_SEEDS = [1, 2];

let runtime: Runtime;
let policy: ModelWeights;
let rm: ModelWeights;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  policy = await sftPolicy(runtime);
  rm = await rewardModel(runtime);
}, 600_000);
afterAll(() => runtime.close());

/** PPO with the given KL settings; returns the policy and the objective/kl of every iteration. */
async function ppo(kl: PpoConfigInput['kl']) {
  const kls: number[] = [];
  const result = await trainPpo({
    config: { ...config, kl },
    policy,
    rewardModel: rm,
    prompts: ppoPrompts(500),
    runtime,
    groundTruth: groundTruthScore,
    hooks: { onMetrics: (_, values) => void kls.push(values[PpoMetrics.kl]) },
  });
  return { model: result.model, kls };
}

const meanOfLast = (xs: number[], n: number) => xs.slice(-n).reduce((a, x) => a + x, 0) / n;

test('PPO raises the ground-truth reward within the KL target; β = 0 drifts much further', async () => {
  const sftTruth = await meanGroundTruth(runtime, policy, heldOut, EVAL_SEEDS);
  const penalised = await ppo(config.kl);
  const ppoTruth = await meanGroundTruth(runtime, penalised.model, heldOut, EVAL_SEEDS);
  // The penalty's effect alone: the same run with a fixed β and with β = 0 (the adaptive run steers KL *toward*
  // its target, so it is not the fair contrast).
  const fixed = await ppo({ type: 'fixed', coef: FIXED_BETA });
  const free = await ppo({ type: 'fixed', coef: 0 });
  const klPenalised = meanOfLast(penalised.kls, 5);
  const klFixed = meanOfLast(fixed.kls, 5);
  const klFree = meanOfLast(free.kls, 5);
  console.info(
    `sort-digits ground truth (held-out, T = 1): SFT ${sftTruth.toFixed(3)} -> PPO ${ppoTruth.toFixed(3)}; ` +
      `KL (mean of last 5 iterations): adaptive β ${klPenalised.toFixed(3)} (target ${TARGET_KL}), ` +
      `fixed β = ${FIXED_BETA} ${klFixed.toFixed(3)}, β = 0 ${klFree.toFixed(3)}`,
  );
  expect(ppoTruth).toBeGreaterThan(sftTruth + 0.08);
  expect(klPenalised).toBeLessThan(TARGET_KL);
  expect(klFree).toBeGreaterThan(klPenalised);
  expect(klFree).toBeGreaterThan(1.5 * klFixed);
}, 600_000);
