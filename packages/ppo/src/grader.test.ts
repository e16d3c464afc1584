// PPO with a declared grader in place of the reward model's score (rewardModelWeight 0): the grader's score is
// the reward (logged as reward/<name>), and it raises the held-out ground truth of sort-digits.
import { type PpoConfigInput, PpoMetrics, rewardPartMetric } from '@rlhf/contracts';
import { generatePromptRows, idealResponse } from '@rlhf/examples';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import { type ModelWeights, promptText } from '@rlhf/stage-kit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { meanGroundTruth, ppoPrompts, rewardModel, sftPolicy } from './testing/sort-digits.js';
import { trainPpo } from './train.js';

let runtime: Runtime;
let policy: ModelWeights;
let rm: ModelWeights;
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  policy = await sftPolicy(runtime);
  rm = await rewardModel(runtime);
}, 600_000);
afterAll(() => runtime.close());

test('a grader alone as the PPO reward: the scores are the grader’s and the ground truth rises', async () => {
  const grader = {
    type: 'text_similarity',
    name: 'close',
    metric: 'edit_distance',
    reference: '{{item.answer}}',
  };
  const config: PpoConfigInput = {
    iterations: 12,
    rolloutBatchSize: 64,
    minibatches: 2,
    ppoEpochs: 4,
    maxNewTokens: 12,
    lr: 5e-4,
    kl: { type: 'fixed', coef: 0.05 },
    grader,
    rewardModelWeight: 0,
    sampleEvery: 6,
  };
  const prompts = ppoPrompts(500).map((row) => ({ ...row, answer: idealResponse(promptText(row)) }));
  const metrics: Record<string, number>[] = [];
  const samples: { score: number; parts?: Record<string, number> }[][] = [];
  const result = await trainPpo({
    config,
    policy,
    rewardModel: rm,
    prompts,
    runtime,
    hooks: {
      onMetrics: (_, values) => void metrics.push(values),
      onSamples: (_, rows) => void samples.push(rows),
    },
  });
  const heldOut = generatePromptRows(256, { seed: 1234 });
  const before = await meanGroundTruth(runtime, policy, heldOut, [1, 2]);
  const after = await meanGroundTruth(runtime, result.model, heldOut, [1, 2]);
  console.info(`PPO with a grader only: ground truth ${before.toFixed(3)} -> ${after.toFixed(3)}`);
  for (const m of metrics) expect(m[PpoMetrics.scores]).toBeCloseTo(m[rewardPartMetric('close')], 5);
  expect(samples[0][0].parts?.close).toBeGreaterThanOrEqual(0);
  expect(after).toBeGreaterThan(before + 0.05);
}, 600_000);
