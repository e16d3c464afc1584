// GRPO, RLOO and REINFORCE++ with only a programmatic reward (no reward model, no critic) on sort-digits, from the
// SFT policy: the held-out ground truth rises well above the SFT policy's.
import { GrpoMetrics, type GrpoConfigInput, rewardPartMetric } from '@rlhf/contracts';
import { generatePromptRows, groundTruthScore, idealResponse } from '@rlhf/examples';
import { meanGroundTruth, ppoPrompts, sftPolicy } from '@rlhf/ppo/testing';
import { createRuntime, type Runtime } from '@rlhf/runtime';
import type { BatchReward, ModelWeights, SampleRow } from '@rlhf/stage-kit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { trainGrpo } from './grpo.js';

let runtime: Runtime;
let sft: ModelWeights;
let before: number;
const held = generatePromptRows(96, { seed: 901 });
beforeAll(async () => {
  runtime = await createRuntime({ device: 'cpu' });
  sft = await sftPolicy(runtime);
  before = await meanGroundTruth(runtime, sft, held, [1, 2]);
}, 600_000);
afterAll(() => runtime.close());

const base: GrpoConfigInput = {
  iterations: 12,
  promptsPerIteration: 16,
  groupSize: 8,
  minibatches: 2,
  lr: 1e-4,
  maxNewTokens: 12,
  reward: 'sort-digits',
  checkpointEvery: 100,
  sampleEvery: 6,
};

async function run(config: GrpoConfigInput, reward?: BatchReward) {
  const metrics: Record<string, number>[] = [];
  const samples: SampleRow[][] = [];
  const logs: string[] = [];
  const result = await trainGrpo({
    config: { ...base, ...config },
    policy: sft,
    task: groundTruthScore,
    ...(reward ? { reward } : {}),
    prompts: ppoPrompts(512),
    runtime,
    hooks: {
      onMetrics: (_, values) => {
        metrics.push(values);
      },
      onSamples: (_, rows) => {
        samples.push(rows);
      },
      log: (message) => logs.push(message),
    },
  });
  const after = reward ? Number.NaN : await meanGroundTruth(runtime, result.model, held, [1, 2]);
  console.log(JSON.stringify({ config, before, after, first: metrics[0], last: metrics.at(-1) }));
  return { after, metrics, samples, logs, model: result.model };
}

describe('GRPO / RLOO / REINFORCE++ on sort-digits with a programmatic reward only', () => {
  test('GRPO raises the held-out ground truth; KL stays small; metrics each iteration; samples carry the parts', async () => {
    const { after, metrics, samples } = await run({ advantage: 'grpo' });
    expect(metrics).toHaveLength(12);
    for (const name of Object.values(GrpoMetrics))
      expect(Number.isFinite(metrics[11][name]), name).toBe(true);
    expect(after).toBeGreaterThan(before + 0.1);
    expect(metrics[11][GrpoMetrics.kl]).toBeLessThan(1);
    // The task is the reward's only part: its mean is the reward.
    expect(metrics[11][rewardPartMetric('sort-digits')]).toBeCloseTo(metrics[11][GrpoMetrics.reward], 10);
    expect(metrics[0][GrpoMetrics.entropy]).toBeGreaterThan(0);
    expect(metrics[0][GrpoMetrics.samplingTokensPerSec]).toBeGreaterThan(0);
    expect(metrics[0][GrpoMetrics.droppedGroups]).toBe(0);
    expect(samples).toHaveLength(2);
    for (const row of samples[0]) expect(row.parts).toEqual({ 'sort-digits': row.score });
  }, 600_000);

  test('RLOO raises it too', async () => {
    const { after } = await run({ advantage: 'rloo' });
    expect(after).toBeGreaterThan(before + 0.1);
  }, 600_000);

  test('REINFORCE++ (per-token KL in the reward, batch-normalised returns) raises it too', async () => {
    const { after, metrics } = await run({ advantage: 'reinforce_pp' });
    expect(after).toBeGreaterThan(before + 0.05);
    expect(metrics[11][GrpoMetrics.kl]).toBeLessThan(1);
  }, 600_000);

  test('dynamic sampling drops the flat groups; sequence-mean GRPO still learns', async () => {
    const { after, metrics } = await run({ dynamicSampling: true, lossAggregation: 'sequence_mean' });
    for (const m of metrics) expect(m[GrpoMetrics.droppedGroups]).toBe(m[GrpoMetrics.zeroStdGroups]);
    expect(metrics.some((m) => m[GrpoMetrics.droppedGroups] > 0)).toBe(true);
    expect(after).toBeGreaterThan(before + 0.1);
  }, 600_000);

  test('every group flat under dynamic sampling: no update, logged, not an error', async () => {
    const constant: BatchReward = async (rows) => ({
      scores: rows.map(() => 1),
      parts: { constant: rows.map(() => 1) },
    });
    const { metrics, logs, model } = await run(
      { iterations: 2, dynamicSampling: true, lossAggregation: 'token_sum_norm' },
      constant,
    );
    expect(metrics.map((m) => [m[GrpoMetrics.updated], m[GrpoMetrics.droppedGroups]])).toEqual([
      [0, 1],
      [0, 1],
    ]);
    expect(metrics[1][rewardPartMetric('constant')]).toBe(1);
    expect(logs.some((line) => /no update/.test(line))).toBe(true);
    for (const [name, value] of sft.params) expect(model.params.get(name)).toEqual(value);
  }, 600_000);

  test('a reward that is not a finite number stops the stage naming the response', async () => {
    const broken: BatchReward = async (rows) => ({
      scores: rows.map((_, i) => (i === 3 ? Number.NaN : 0)),
      parts: {},
    });
    await expect(run({ iterations: 1 }, broken)).rejects.toThrow('the reward of response 3 is NaN');
  }, 600_000);

  test("a declared grader alone (edit similarity to each row's `answer` field) raises the held-out ground truth", async () => {
    const prompts = ppoPrompts(512).map((row) => ({
      ...row,
      answer: idealResponse((row as { prompt: string }).prompt),
    }));
    const grader = {
      type: 'text_similarity',
      name: 'close',
      metric: 'edit_distance',
      reference: '{{item.answer}}',
    };
    const metrics: Record<string, number>[] = [];
    const result = await trainGrpo({
      config: { ...base, reward: grader },
      policy: sft,
      prompts,
      runtime,
      hooks: { onMetrics: (_, values) => void metrics.push(values) },
    });
    const after = await meanGroundTruth(runtime, result.model, held, [1, 2]);
    console.log(JSON.stringify({ grader: grader.type, before, after, last: metrics.at(-1) }));
    expect(after).toBeGreaterThan(before + 0.1);
    expect(metrics[11][rewardPartMetric('close')]).toBeCloseTo(metrics[11][GrpoMetrics.reward], 10);
  }, 600_000);

  test('refuses a missing reward', async () => {
    await expect(
      trainGrpo({ config: { reward: 'reward_model' }, policy: sft, prompts: ppoPrompts(4), runtime }),
    ).rejects.toThrow("reward 'reward_model' needs a reward model");
  });
});
